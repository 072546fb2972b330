"""An in-process emulator on a FakeRuntime: the real HTTP API, handlers, engines and embedded S3,
with scripted containers instead of Docker (runtime/fake.py), for engine-logic unit tests.

In-process (not a subprocess like testing.EmulatorServer) because the fake's containers live in
this process's memory: a test scripts them, watches their signals, and hands the same fake to a
second `FakeEmulator` on the same data dir to play "the server restarted while containers ran".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from sagemaker_emulator.config import Config
from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.server.app import EmulatorApp
from sagemaker_emulator.server.http_server import make_server
from sagemaker_emulator.services import Services


class Crashable:
    """A runtime wrapper whose every call blocks forever once `crash()` is called.

    What a kill -9 does to the old server's job threads, in-process: they never touch the runtime or
    the job records again, while the fake's containers go on running for the next server to adopt.
    """

    def __init__(self, runtime: FakeRuntime) -> None:
        self._runtime = runtime
        self._crashed = threading.Event()

    def crash(self) -> None:
        self._crashed.set()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._runtime, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._freeze_if_crashed()
            # callbacks too (a log stream's on_line): the fake calls them from its own threads
            args = tuple(self._guarded(a) if callable(a) else a for a in args)
            return value(*args, **kwargs)

        return call

    def _freeze_if_crashed(self) -> None:
        if self._crashed.is_set():
            threading.Event().wait()  # never returns: this thread is "dead"

    def _guarded(self, callback: Callable) -> Callable:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._freeze_if_crashed()
            return callback(*args, **kwargs)

        return guarded


class FakeEmulator:
    """Services(config, runtime=fake) behind the real WSGI app, on a free loopback port."""

    def __init__(self, data_dir: Path, runtime: Any, **config: Any) -> None:
        config.setdefault("container_access", False)
        config.setdefault("stop_grace_seconds", 2.0)
        self.config = Config(data_dir=Path(data_dir), port=0, **config)
        self.services = Services(self.config, runtime=runtime)
        self.app = EmulatorApp(self.services)
        self.server = make_server("127.0.0.1", 0, self.app)
        self.config.self_url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-emulator", daemon=True)
        self._thread.start()
        self.services.start_background()

    def client(self, service: str = "sagemaker"):
        return boto3.client(service, endpoint_url=self.config.self_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=BotoConfig(retries={"max_attempts": 1}))

    def stop_serving(self) -> None:
        """Stop answering HTTP (the listening socket closes); the services stay as they are."""
        self.server.shutdown()
        self.server.server_close()

    def close(self) -> None:
        """Graceful shutdown, as on SIGTERM: running jobs are stopped, then the database closes."""
        self.stop_serving()
        self.services.close()


def wait_for(probe: Callable[[], Any], timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll `probe` until it returns something truthy; that value, or AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {probe}")
        time.sleep(interval)
