"""The package layout: the three source folders install as one `sagemaker_emulator` package.

Generic top-level names such as `handlers` and `storage` would collide with other distributions
in site-packages; pyproject.toml maps the folders under the distribution's own namespace instead.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"sagemaker_emulator": "emulator", "sagemaker_emulator.handlers": "handlers",
           "sagemaker_emulator.storage": "storage"}


def _packages_on_disk() -> set[str]:
    found = set()
    for package, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == FOLDERS
    assert set(config["packages"]) == _packages_on_disk()


def test_the_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    wheel = next(tmp_path.glob("sagemaker_emulator-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"sagemaker_emulator"}
    assert "sagemaker_emulator/handlers/training_jobs.py" in names
    assert "sagemaker_emulator/storage/models.py" in names
