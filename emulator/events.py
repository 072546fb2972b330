"""Lifecycle events: in-process notice of every status change of jobs and endpoints.

Features that start work on the user's behalf (a tuning job's training jobs, a pipeline's steps)
must learn when that work ends without polling the database. Every status write of a training,
processing or transform job or an endpoint goes through one place (`jobs.records.JobRecord.edit`,
plus creation and deletion in the handlers), which publishes a `StatusChange` here *after* its
transaction committed: a subscriber that reads the database sees the new status.

Each subscription has its own queue and dispatcher thread, so publishing never waits and a slow
subscriber delays only itself; it hears its events in the order they were published.

Memory does not survive a restart. A subscriber that waits for resources gives a `recover` hook:
`Services.start_background` runs it (in the subscriber's thread, before any later event) so it can
rebuild what it waits for from the database, e.g. with `EventBus.current_status(arns)`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sagemaker_emulator.storage import resources

log = logging.getLogger(__name__)

# The resource kinds whose status changes are published, and their Describe status member.
STATUS_FIELDS = {
    "training-job": "TrainingJobStatus",
    "processing-job": "ProcessingJobStatus",
    "transform-job": "TransformJobStatus",
    "endpoint": "EndpointStatus",
    "hyper-parameter-tuning-job": "HyperParameterTuningJobStatus",
}


@dataclass(frozen=True)
class StatusChange:
    """One committed status change.

    `previous` is None when the resource was just created; `status` is None when it was deleted.
    `secondary_status` / `previous_secondary_status` are the training job's SecondaryStatus (None
    for other kinds); a training event is published when either status changes.
    """

    kind: str
    region: str
    name: str
    arn: str
    previous: str | None
    status: str | None
    secondary_status: str | None = None
    previous_secondary_status: str | None = None
    time: float = field(default_factory=resources.now)

    @property
    def terminal(self) -> bool:
        from sagemaker_emulator.jobs.records import TERMINAL

        return self.kind != "endpoint" and self.status in TERMINAL


Callback = Callable[[StatusChange], None]
_RECOVER = object()
_CLOSE = object()


class Subscription:
    """One subscriber: its filter, its queue and the thread that delivers to it."""

    def __init__(self, callback: Callback, kinds: Iterable[str] | None, recover: Callable[[], None] | None,
                 name: str) -> None:
        self.callback = callback
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.recover = recover
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._deliver, name=f"events:{name}", daemon=True)
        self._thread.start()

    def wants(self, change: StatusChange) -> bool:
        return self.kinds is None or change.kind in self.kinds

    def put(self, item: object) -> None:
        self._queue.put(item)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(_CLOSE)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _deliver(self) -> None:
        while True:
            item = self._queue.get()
            if item is _CLOSE:
                return
            try:
                if item is _RECOVER:
                    if self.recover is not None:
                        self.recover()
                else:
                    self.callback(item)
            except Exception:  # a subscriber's bug must not stop its later events
                log.exception("event subscriber %s failed on %s", self._thread.name, item)


class EventBus:
    """The in-process bus on `Services` (`services.events`)."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callback, kinds: Iterable[str] | None = None,
                  recover: Callable[[], None] | None = None, name: str = "subscriber") -> Subscription:
        """Hear every StatusChange (of `kinds`, default all) from now on; `recover` runs on start-up."""
        subscription = Subscription(callback, kinds, recover, name)
        with self._lock:
            self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not subscription]
        subscription.close()

    def publish(self, change: StatusChange) -> None:
        """Queue `change` for every interested subscriber; never blocks. Call after the commit."""
        for subscription in self._subscriptions:  # a snapshot: subscribe() replaces the list
            if subscription.wants(change):
                subscription.put(change)

    def recover(self) -> None:
        """Start-up (after a restart): every subscriber's `recover` hook, in its own thread."""
        for subscription in self._subscriptions:
            subscription.put(_RECOVER)

    @staticmethod
    def current_status(arns: Iterable[str]) -> dict[str, str | None]:
        """The stored status of each of `arns` that exists (keyed as given); deleted ones are absent."""
        return resources.statuses(arns)

    def close(self) -> None:
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close()


def change_of(kind: str, region: str, name: str, arn: str, before: dict | None, after: dict | None
              ) -> StatusChange | None:
    """The StatusChange between two Describe documents of one resource, or None if its status did not move."""
    status_field = STATUS_FIELDS.get(kind)
    if status_field is None:
        return None
    previous = before.get(status_field) if before else None
    status = after.get(status_field) if after else None
    secondary = after.get("SecondaryStatus") if after and kind == "training-job" else None
    previous_secondary = before.get("SecondaryStatus") if before and kind == "training-job" else None
    if previous == status and secondary == previous_secondary:
        return None
    return StatusChange(kind, region, name, arn, previous, status, secondary, previous_secondary)
