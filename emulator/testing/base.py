"""What both test servers share: a data dir (a temporary one by default), boto3 clients, `with`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig


def server_client(endpoint_url: str, region: str, service: str, **kwargs: Any) -> Any:
    """A boto3 client for an emulator at `endpoint_url`, with dummy credentials and few retries."""
    kwargs.setdefault("region_name", region)
    kwargs.setdefault("config", BotoConfig(retries={"max_attempts": 2, "mode": "standard"}))
    return boto3.client(service, endpoint_url=endpoint_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", **kwargs)


class ServerBase:
    """Subclasses implement `start()` (returning self, with `endpoint_url` set) and `stop()`."""

    endpoint_url = ""

    def __init__(self, data_dir: str | os.PathLike | None, region: str, prefix: str) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix=prefix)
        self.data_dir = Path(data_dir) if data_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.region = region

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop, then remove the temporary data dir (a given one is kept)."""
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def reset(self, aws: bool = False) -> dict:
        """POST /_emulator/reset: SageMaker state back to a fresh server's (`aws`: moto's and S3's too)."""
        import json
        import urllib.request

        url = f"{self.endpoint_url}/_emulator/reset" + ("?aws=1" if aws else "")
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=120) as reply:
            return json.loads(reply.read())

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client bound to this server, with dummy credentials and few retries."""
        return server_client(self.endpoint_url, self.region, service, **kwargs)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
