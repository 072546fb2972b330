"""Run an emulator server in a subprocess: what the pytest plugin, our tests and benchmarks share.

A subprocess (not a thread) so that tests see exactly what users see, moto's global state stays
out of the test process, and a test can restart or kill -9 the server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from sagemaker_emulator.config import owner_id

from .base import ServerBase, server_client  # noqa: F401  (server_client: part of this module's API)

_URL = re.compile(r"listening on (http://\S+)")


class EmulatorServer(ServerBase):
    """A `sagemaker-emulator serve` process on a free loopback port."""

    def __init__(self, data_dir: str | os.PathLike | None = None, region: str = "us-east-1",
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, region, "sm-emulator-")
        self.owner = owner_id(self.data_dir)  # the owner label of this server's containers
        self.extra_args = list(extra_args)
        self.env = env
        self.process: subprocess.Popen | None = None
        self.endpoint_url = ""
        self.output: list[str] = []

    def start(self, timeout: float = 60) -> EmulatorServer:
        cmd = [sys.executable, "-m", "sagemaker_emulator", "serve", "--port", "0", "--data-dir", str(self.data_dir),
               "--region", self.region, *self.extra_args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, **(self.env or {})})
        found = threading.Event()

        def pump() -> None:  # keep reading so the server never blocks on a full pipe
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                match = _URL.search(line)
                if match and not found.is_set():
                    self.endpoint_url = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout) or not self.endpoint_url:
            self.stop()
            raise RuntimeError("the emulator did not start:\n" + "\n".join(self.output[-40:]))
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.endpoint_url + "/_emulator/health", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, kill: bool = False, timeout: float = 30) -> None:
        """Stop the server: SIGTERM (graceful) or SIGKILL (crash)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> EmulatorServer:
        self.stop()
        return self.start()



REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "sagemaker-emulator-base:py311"


def build_test_image(name: str, context: Path, base: str = BASE_IMAGE) -> str:
    """docker build a test image (tests/images/<x>) on the offline base image, only when missing.

    The tag is a hash of the build context (and of `base`'s image id when it is not the base image),
    so editing a test image's files rebuilds it instead of silently reusing a stale one. Returns the tag.
    """
    import hashlib

    digest = hashlib.sha256()
    if base != BASE_IMAGE:  # an image built on another one (a stand-in) is stale when that one is rebuilt
        digest.update(subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", base], capture_output=True,
                                     text=True, check=True).stdout.encode())
    for path in sorted(p for p in Path(context).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    tag = f"{name}:{digest.hexdigest()[:12]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        subprocess.run(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context)],
                       check=True, timeout=600, capture_output=True)
    return tag
