"""The effective batch parameters of a transform job and its container environment (spec §4.1). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import records as rec

DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_CONCURRENCY = 1


@dataclass
class Settings:
    """The effective batch parameters: request > container's /execution-parameters > defaults."""

    concurrency: int
    max_payload_mb: int
    strategy: str

    @property
    def max_bytes(self) -> int:
        return rec.max_payload_bytes(self.max_payload_mb)


def effective_settings(job: dict[str, Any], container: dict[str, Any]) -> Settings:
    def number(value: Any) -> int | None:
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    concurrency = job.get("MaxConcurrentTransforms") or number(container.get("MaxConcurrentTransforms")) \
        or DEFAULT_CONCURRENCY
    payload = job.get("MaxPayloadInMB")
    if payload is None:
        payload = number(container.get("MaxPayloadInMB"))
    if payload is None:
        payload = DEFAULT_MAX_PAYLOAD_MB
    strategy = rec.normalize_strategy(job.get("BatchStrategy")) \
        or rec.normalize_strategy(container.get("BatchStrategy")) or rec.MULTI_RECORD
    return Settings(max(1, concurrency), max(0, payload), strategy)


def batch_environment(job: dict[str, Any]) -> dict[str, str]:
    """Request Environment plus the platform variables of spec §4.1 (the model's come from ModelFleet)."""
    env = dict(job.get("Environment") or {})
    env["SAGEMAKER_BATCH"] = "true"
    if job.get("TransformJobArn"):  # what the SDK's load_run() reads inside a transform job
        env["TRANSFORM_JOB_ARN"] = job["TransformJobArn"]
    if job.get("MaxPayloadInMB") is not None:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(job["MaxPayloadInMB"])
    if job.get("BatchStrategy"):
        env["SAGEMAKER_BATCH_STRATEGY"] = rec.env_strategy(job["BatchStrategy"])
    if job.get("MaxConcurrentTransforms"):
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(job["MaxConcurrentTransforms"])
    return env
