"""Progress of long transfers, for users watching a job that is still `Downloading`/`Uploading`.

A download of a multi-GB channel can take minutes; SageMaker shows it as a secondary status and
the emulator shows it in logs. Callers get structured `Progress` snapshots through an optional
callback (throttled, so a 1 MB chunk size does not mean a callback storm) and a periodic INFO line
on the `sagemaker_emulator.staging` logger.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("sagemaker_emulator.staging")

# A transfer still running logs an INFO line this often (seconds); the line at the end is INFO only for
# transfers that took LOG_FINISH_SECONDS or moved LOG_FINISH_BYTES (DEBUG otherwise, so small jobs stay quiet).
LOG_INTERVAL = float(os.environ.get("SAGEMAKER_EMULATOR_PROGRESS_LOG_SECONDS", "5"))
LOG_FINISH_SECONDS = 2.0
LOG_FINISH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Progress:
    """A snapshot of one staging operation (download, upload, delete, pipe, extract)."""

    operation: str
    uri: str
    objects_done: int
    objects_total: int | None
    bytes_done: int
    bytes_total: int | None
    current: str | None = None
    finished: bool = False

    def describe(self) -> str:
        objects = f"{self.objects_done}/{self.objects_total}" if self.objects_total is not None \
            else str(self.objects_done)
        size = f"{_human(self.bytes_done)}/{_human(self.bytes_total)}" if self.bytes_total is not None \
            else _human(self.bytes_done)
        state = "done" if self.finished else "in progress"
        return f"{self.operation} {self.uri}: {objects} objects, {size} ({state})"


ProgressCallback = Callable[[Progress], None]


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


class ProgressReporter:
    """Accumulates counts for one operation and forwards them to the callback and the log."""

    def __init__(self, operation: str, uri: str, *, objects_total: int | None = None,
                 bytes_total: int | None = None, callback: ProgressCallback | None = None,
                 callback_interval: float = 0.5, log_interval: float | None = None) -> None:
        self.operation = operation
        self.uri = uri
        self.objects_total = objects_total
        self.bytes_total = bytes_total
        self.objects_done = 0
        self.bytes_done = 0
        self.current: str | None = None
        self._lock = threading.Lock()  # boto3's transfer manager reports bytes from worker threads
        self._callback = callback
        self._callback_interval = callback_interval
        self._log_interval = LOG_INTERVAL if log_interval is None else log_interval
        now = time.monotonic()
        self._last_callback = now
        self._last_log = now
        self._started = now
        self._logged = False  # an in-progress line was logged: the end is logged too

    def snapshot(self, finished: bool = False) -> Progress:
        return Progress(self.operation, self.uri, self.objects_done, self.objects_total, self.bytes_done,
                        self.bytes_total, self.current, finished)

    def add_bytes(self, n: int, current: str | None = None) -> None:
        with self._lock:
            self.bytes_done += n
            if current is not None:
                self.current = current
            self._emit(force=False)

    def object_done(self, current: str | None = None) -> None:
        with self._lock:
            self.objects_done += 1
            if current is not None:
                self.current = current
            logger.debug("%s %s: finished %s", self.operation, self.uri, self.current)
            self._emit(force=True)

    def finish(self) -> Progress:
        with self._lock:
            snap = self.snapshot(finished=True)
        if self._callback:
            self._callback(snap)
        took = time.monotonic() - self._started
        if self.objects_done or self.bytes_done:
            long = took >= LOG_FINISH_SECONDS or self.bytes_done >= LOG_FINISH_BYTES or self._logged
            logger.log(logging.INFO if long else logging.DEBUG, "%s in %.1fs", snap.describe(), took)
        return snap

    def _emit(self, force: bool) -> None:
        now = time.monotonic()
        if self._callback and (force or now - self._last_callback >= self._callback_interval):
            self._last_callback = now
            self._callback(self.snapshot())
        if now - self._last_log >= self._log_interval:
            self._last_log = now
            self._logged = True
            logger.info("%s", self.snapshot().describe())
