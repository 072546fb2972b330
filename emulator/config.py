"""Configuration: command-line flags over environment variables over defaults."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "SAGEMAKER_EMULATOR_"
DEFAULT_PORT = 5000


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _flag(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


def load_image_map(value: str) -> dict[str, str]:
    """An image map is JSON `{"<image as requested>": "<local image>"}`, inline or in a file."""
    if not value:
        return {}
    text = value if value.lstrip().startswith("{") else Path(value).expanduser().read_text()
    mapping = json.loads(text)
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError("the image map must be a JSON object of image name -> local image name")
    return mapping


def _signature_credentials(value: str) -> dict[str, str]:
    from .protocol.sigv4 import parse_credentials

    return parse_credentials(value)


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
    # Requested image (ECR URI or name) -> local image; see emulator/images.py.
    image_map: dict[str, str] = field(default_factory=lambda: load_image_map(_env("IMAGE_MAP", "")))
    # Try `docker pull` for images not present locally (needs a reachable registry).
    pull_images: bool = field(default_factory=lambda: _flag("PULL_IMAGES", False))
    # SIGTERM -> SIGKILL grace for StopTrainingJob / MaxRuntimeInSeconds (AWS: 120 s).
    stop_grace_seconds: float = field(default_factory=lambda: float(_env("STOP_GRACE_SECONDS", "120")))
    # Cap each container's CPU and memory at its instance type's size.
    limit_resources: bool = field(default_factory=lambda: _flag("LIMIT_RESOURCES", False))
    # Which S3 serves this port: "disk" (ours, durable: emulator/aws/s3, under <data dir>/s3) or "moto"
    # (moto's in-memory S3, emptied by every restart).
    s3_backend: str = field(default_factory=lambda: _env("S3_BACKEND", "disk"))
    # fsync every S3 body and commit before answering (survives a power cut); off, an acknowledged
    # object survives a crash or kill -9 of the emulator, which is what the kernel's copy guarantees.
    s3_fsync: bool = field(default_factory=lambda: _flag("S3_FSYNC", False))
    # How often at most moto's services (IAM, SQS, CloudWatch, ...) are snapshotted to <data dir>/moto
    # after a change (aws/moto_state.py); 0 = never (their state then dies with the process).
    moto_snapshot_seconds: float = field(default_factory=lambda: float(_env("MOTO_SNAPSHOT_SECONDS", "0.5")))
    # S3 endpoint the emulator reads inputs from and writes outputs to; default: its own (moto's).
    s3_endpoint_url: str | None = field(default_factory=lambda: _env("S3_ENDPOINT_URL", "") or None)
    # Our own URL once the server is bound (set by the CLI).
    # Endpoints: how often per-variant CloudWatch metrics and data-capture files are written (AWS:
    # metrics per minute, capture files every few minutes); serverless idle time before the
    # container is stopped.
    metrics_flush_seconds: float = field(default_factory=lambda: float(_env("METRICS_FLUSH_SECONDS", "10")))
    capture_flush_seconds: float = field(default_factory=lambda: float(_env("CAPTURE_FLUSH_SECONDS", "5")))
    serverless_idle_seconds: float = field(default_factory=lambda: float(_env("SERVERLESS_IDLE_SECONDS", "300")))
    # Application Auto Scaling's metric period for SageMaker variants (AWS: one minute); its alarms need 3
    # (scale out) or 15 (scale in) periods in a row.
    autoscaling_period_seconds: float = field(
        default_factory=lambda: float(_env("AUTOSCALING_PERIOD_SECONDS", "60")))
    # Health-check window of a serving container when its variant sets no
    # ContainerStartupHealthCheckTimeoutInSeconds (the developer guide's 4 minutes).
    health_check_timeout_seconds: float = field(
        default_factory=lambda: float(_env("HEALTH_CHECK_TIMEOUT_SECONDS", "240")))
    # How long InvokeEndpoint waits for a container's answer (SageMaker: 60 s, then ModelError).
    model_timeout_seconds: float = field(default_factory=lambda: float(_env("MODEL_TIMEOUT_SECONDS", "60")))
    # SigV4 required (`--require-signature`): access key -> secret; empty = unsigned requests accepted.
    require_signature: dict[str, str] = field(default_factory=lambda: _signature_credentials(
        _env("REQUIRE_SIGNATURE", "")))
    self_url: str = ""
    # Listen on the Docker bridge gateway too, so job containers can call S3 & co. (off: they cannot).
    container_access: bool = field(default_factory=lambda: _flag("CONTAINER_ACCESS", True))
    # Where job containers reach us (the Docker bridge gateway listener; set by the CLI).
    container_url: str = ""
    # The Docker engine: unix:///path or tcp://host:port; empty = DOCKER_HOST, else the local socket.
    docker_host: str = field(default_factory=lambda: _env("DOCKER_HOST", ""))
    # How job and model directories reach containers: "bind" (host bind mounts) or "copy" (copied in
    # and out through the engine API: works with an engine on another host); empty = bind for a local
    # engine, copy for a tcp:// one.
    workspace: str = field(default_factory=lambda: _env("WORKSPACE", ""))
    # How long CreateStack/UpdateStack/DeleteStack of a stack with SageMaker resources wait for the stack
    # operation before answering (aws/cfn_async.py); 0 = answer at once, as CloudFormation does.
    cfn_sync_seconds: float = field(default_factory=lambda: float(_env("CFN_SYNC_SECONDS", "0")))
    # Long-tail resources (emulator/resources): seconds a transition (Pending -> InService, Deleting -> gone)
    # takes before a read shows its end state; 0 = at once.
    settle_seconds: float = field(default_factory=lambda: float(_env("SETTLE_SECONDS", "0")))
    # "docker" (containers run) or "none" (record-only: runtime/record_only.py; no container runs, jobs
    # complete at once, endpoints answer `canned_reply`)
    execution: str = field(default_factory=lambda: _env("EXECUTION", "docker"))
    canned_reply: str = field(default_factory=lambda: _env("CANNED_REPLY", '{"predictions": []}'))
    canned_content_type: str = field(default_factory=lambda: _env("CANNED_CONTENT_TYPE", "application/json"))

    def workspace_kind(self) -> str:
        """The workspace in force: the configured one, else copy for a tcp:// engine, bind for a local one."""
        if self.workspace:
            if self.workspace not in ("bind", "copy"):
                raise ValueError(f"workspace must be 'bind' or 'copy', not {self.workspace!r}")
            return self.workspace
        return "copy" if (self.docker_host or os.environ.get("DOCKER_HOST", "")).startswith("tcp://") else "bind"


def owner_id(data_dir: str | os.PathLike) -> str:
    """The label value that marks the containers of the emulator using `data_dir`.

    Stable across restarts on the same data dir (so a restart finds its own containers) and
    different for every data dir (so two emulators never touch each other's containers).
    """
    import hashlib

    return hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]

