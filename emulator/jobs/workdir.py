"""Per-job directories on the host, shown to the job's containers under /opt/ml by the workspace
(bind-mounted, or copied in and out: runtime/workspace.py).

Everything a job writes lives under `<data_dir>/jobs/<kind>/<region>/<name>/`, so one `rmtree`
cleans it and no container ever gets a host path outside its own job.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class JobDir:
    def __init__(self, data_dir: Path, kind: str, region: str, name: str) -> None:
        self.root = Path(data_dir) / "jobs" / kind / region / name

    def host(self, host_name: str) -> Path:
        """The directory of one host (`algo-1`, ...); created on demand."""
        path = self.root / host_name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def scratch(self, name: str) -> Path:
        path = self.root / "_scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def create(self) -> JobDir:
        if self.root.exists():  # a leftover of a deleted job with the same name
            shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
