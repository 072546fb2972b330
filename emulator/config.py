"""Configuration: command-line flags over environment variables over defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "SAGEMAKER_EMULATOR_"
DEFAULT_PORT = 5000


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


@dataclass
class Config:
    """Everything the server needs to know; built once at start-up."""

    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", str(DEFAULT_PORT))))
    data_dir: Path = field(default_factory=lambda: Path(
        _env("DATA_DIR", str(Path.home() / ".sagemaker-emulator"))).expanduser())
    account_id: str = field(default_factory=lambda: _env("ACCOUNT_ID", "123456789012"))
    region: str = field(default_factory=lambda: _env("REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")))
    # Largest control-plane request body accepted; refused from Content-Length before it is read.
    max_request_bytes: int = 16 * 1024 * 1024
