"""A daemon thread that runs one step at a time, sleeping until the step says it is next due.

The time-driven engines (monitoring schedules, autoscaling) share it: `wake` cuts the sleep short
when something changed (a new schedule, a new policy), `shutdown` ends the loop and waits briefly
for the running step. A step that raises is logged and retried after `idle` seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundLoop:
    def __init__(self, name: str, step: Callable[[], float], idle: float = 60.0) -> None:
        self.name = name
        self._step = step
        self._idle = idle
        self._wake = threading.Event()
        self.closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self) -> None:
        self.closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self.closing.is_set():
            try:
                delay = self._step()
            except Exception:
                log.exception("%s: a step failed", self.name)
                delay = self._idle
            self._wake.wait(max(0.05, delay))
            self._wake.clear()
