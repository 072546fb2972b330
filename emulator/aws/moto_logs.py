"""Log events that moto's services write land in the emulator's CloudWatch Logs.

Why: the Logs API on our port is the emulator's own (handlers/logs.py), so moto's in-memory logs
backend is never read. Yet moto's services write into it from inside their own code: EventBridge
rules whose target is a log group (S3 -> EventBridge -> Logs), Batch jobs, moto's Lambda. Without
this bridge those events were written where nobody looks, or failed because the log group (created
through our API) does not exist in moto. The bridge replaces the four write methods moto's services
call on its LogsBackend with writes to our store, keeping moto's errors (a missing group is
ResourceNotFoundException, as on AWS).
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Route moto's internal log writes to storage/logs.py (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.models import LogsBackend

    from sagemaker_emulator.storage import logs

    def _group(backend: LogsBackend, name: str) -> Any:
        group = logs.get_group(backend.region_name, name)
        if group is None:
            raise ResourceNotFoundException()
        return group

    def create_log_stream(self: LogsBackend, log_group_name: str, log_stream_name: str) -> None:
        group = _group(self, log_group_name)
        try:
            logs.create_stream(group, log_stream_name)
        except logs.AlreadyExists:
            from moto.logs.exceptions import ResourceAlreadyExistsException

            raise ResourceAlreadyExistsException() from None

    def ensure_log_group(self: LogsBackend, log_group_name: str) -> None:
        logs.ensure_group(self.region_name, log_group_name)

    def ensure_log_stream(self: LogsBackend, log_group_name: str, log_stream_name: str) -> None:
        _group(self, log_group_name)
        logs.ensure_stream(self.region_name, log_group_name, log_stream_name)

    def put_log_events(self: LogsBackend, log_group_name: str, log_stream_name: str,
                       log_events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        group = _group(self, log_group_name)
        if logs.get_stream(group, log_stream_name) is None:
            raise ResourceNotFoundException("The specified log stream does not exist.")
        logs.append(self.region_name, log_group_name, log_stream_name,
                    [(int(event["timestamp"]), str(event["message"])) for event in log_events])
        return "", {}

    LogsBackend.create_log_stream = create_log_stream  # type: ignore[method-assign]
    LogsBackend.ensure_log_group = ensure_log_group  # type: ignore[method-assign,assignment]
    LogsBackend.ensure_log_stream = ensure_log_stream  # type: ignore[method-assign]
    LogsBackend.put_log_events = put_log_events  # type: ignore[method-assign]
    _installed = True
