"""An emulator server in this process on a given container runtime: engine-logic tests on FakeRuntime.

`EmulatorServer` (a subprocess) is what users see and what container tests use; this one shares
the test's process so a test can script a `FakeRuntime` and look at it while the engines drive it::

    with InProcessServer(FakeRuntime(scripts={"img": Script(lines=["hi"], exit_code=0)})) as server:
        sm = server.client("sagemaker")
        ...  # create_training_job with TrainingImage "img"; server.runtime.containers shows what ran

Only one per process at a time (moto's state and the database binding are process-wide).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sagemaker_emulator.config import Config

from .base import ServerBase


class InProcessServer(ServerBase):
    def __init__(self, runtime: Any, data_dir: str | Path | None = None, region: str = "us-east-1",
                 **config: Any) -> None:
        super().__init__(data_dir, region, "sm-emulator-inproc-")
        config.setdefault("workspace", "bind")  # a given runtime: DOCKER_HOST says nothing about it
        self.config = Config(host="127.0.0.1", port=0, data_dir=self.data_dir, region=region,
                             container_access=False, **config)
        self.runtime = runtime
        self.endpoint_url = ""
        self.app: Any = None
        self._server: Any = None

    @property
    def services(self) -> Any:
        return self.app.services

    def start(self) -> InProcessServer:
        from sagemaker_emulator.server.app import create_app
        from sagemaker_emulator.server.http_server import make_server

        self.app = create_app(self.config, runtime=self.runtime)
        self._server = make_server("127.0.0.1", 0, self.app)
        self.endpoint_url = self.config.self_url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, name="inprocess-server", daemon=True).start()
        self.app.services.start_background()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self.app.services.close()
            self._server = None

    def abandon(self) -> None:
        """Stop answering HTTP but leave the services as they are (no shutdown of jobs or endpoints): what a
        kill -9 leaves behind, for tests of re-adoption by a new server on the same data dir."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

