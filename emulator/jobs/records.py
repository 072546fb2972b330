"""Job documents as SageMaker shows them: statuses, secondary-status transitions, timing fields.

The job threads and the API handlers both change job rows; every change goes through
`storage.resources.update` so the two never overwrite each other, and through `JobRecord.edit`,
the one place job and endpoint statuses are written, which publishes each committed status change
on the event bus (`emulator.events`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sagemaker_emulator.events import change_of
from sagemaker_emulator.storage import resources

TERMINAL = ("Completed", "Failed", "Stopped")


def transition(document: dict[str, Any], status: str, message: str, when: float | None = None) -> None:
    """Move `SecondaryStatus`, keeping `SecondaryStatusTransitions` as SageMaker does: the same
    status only updates the current entry's StatusMessage; a new status closes it and appends."""
    when = when if when is not None else resources.now()
    history = document.setdefault("SecondaryStatusTransitions", [])
    if history and history[-1]["Status"] == status:
        history[-1]["StatusMessage"] = message
    else:
        if history and "EndTime" not in history[-1]:
            history[-1]["EndTime"] = when
        history.append({"Status": status, "StartTime": when, "StatusMessage": message})
    if status in TERMINAL or status in ("Stopped", "MaxRuntimeExceeded", "MaxWaitTimeExceeded"):
        history[-1]["EndTime"] = when
    document["SecondaryStatus"] = status
    document["LastModifiedTime"] = when


def elapsed_seconds(start: float | None, end: float) -> int:
    """SageMaker's TrainingTimeInSeconds: whole seconds, at least 1."""
    if start is None:
        return 1
    return max(1, math.ceil(end - start))


class JobRecord:
    """Convenient, atomic edits of one job's stored document.

    `status_field` is the primary status member (TrainingJobStatus, ProcessingJobStatus, ...);
    `events` (the EventBus) hears every committed change of it (or of SecondaryStatus).
    """

    def __init__(self, kind: str, region: str, name: str, status_field: str, events: Any = None) -> None:
        self.kind, self.region, self.name, self.status_field = kind, region, name, status_field
        self.events = events

    def read(self) -> dict[str, Any] | None:
        row = resources.get(self.kind, self.region, self.name)
        return row.document if row else None

    def edit(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        """Apply `change` atomically; returns the new document (None if the job was deleted).

        With `events`, a status change is published once the edit's transaction has committed, so the
        edit must then not run inside a transaction of the caller's (a savepoint, committed later)."""
        result: dict[str, Any] = {}
        before: dict[str, Any] = {}

        def mutate(document: dict[str, Any]) -> str:
            before.update(status=document.get(self.status_field), SecondaryStatus=document.get("SecondaryStatus"))
            change(document)
            document["LastModifiedTime"] = resources.now()
            result.update(document)
            return document[self.status_field]

        row = resources.update(self.kind, self.region, self.name, mutate)
        if row is None:
            return None
        if self.events is not None:  # the transaction is committed: subscribers read the new status
            event = change_of(self.kind, self.region, self.name, row.arn,
                              {self.status_field: before["status"], "SecondaryStatus": before["SecondaryStatus"]},
                              result)
            if event is not None:
                self.events.publish(event)
        return result

    def status(self) -> str | None:
        document = self.read()
        return document.get(self.status_field) if document else None
