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
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig

from sagemaker_emulator.config import owner_id

_URL = re.compile(r"listening on (http://\S+)")


def server_client(endpoint_url: str, region: str, service: str, **kwargs: object):
    """A boto3 client for an emulator at `endpoint_url`, with dummy credentials and few retries."""
    kwargs.setdefault("region_name", region)
    kwargs.setdefault("config", BotoConfig(retries={"max_attempts": 2, "mode": "standard"}))
    return boto3.client(service, endpoint_url=endpoint_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", **kwargs)


class EmulatorServer:
    """A `sagemaker-emulator serve` process on a free loopback port."""

    def __init__(self, data_dir: str | os.PathLike | None = None, region: str = "us-east-1",
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="sm-emulator-")
        self.data_dir = Path(data_dir) if data_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.owner = owner_id(self.data_dir)  # the owner label of this server's containers
        self.region = region
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

    def close(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def client(self, service: str, **kwargs: object):
        """A boto3 client bound to this server, with dummy credentials and few retries."""
        return server_client(self.endpoint_url, self.region, service, **kwargs)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "sagemaker-emulator-base:py311"


def build_test_image(name: str, context: Path, base: str = BASE_IMAGE) -> str:
    """docker build a test image (tests/images/<x>) on the offline base image, only when missing.

    The tag is a hash of the build context, so editing a test image's files rebuilds it instead of
    silently reusing a stale one. Returns the tag.
    """
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in Path(context).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    tag = f"{name}:{digest.hexdigest()[:12]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        subprocess.run(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context)],
                       check=True, timeout=600, capture_output=True)
    return tag
