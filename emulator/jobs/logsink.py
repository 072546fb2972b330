"""Container output -> CloudWatch Logs rows, as it is produced.

Lines are buffered for a fraction of a second and written in one transaction per batch, so a
chatty container costs a handful of SQLite writes per second instead of one per line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from peewee import OperationalError

from sagemaker_emulator.storage import logs

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
MAX_BATCH = 1000
OPEN_ATTEMPTS = 10


class LogSink:
    """Writes (epoch seconds, line) pairs to one log stream; `on_line` sees each line first."""

    def __init__(self, region: str, group: str, stream: str,
                 on_line: Callable[[float, str], None] | None = None) -> None:
        self.region, self.group, self.stream = region, group, stream
        self.on_line = on_line
        self._pending: list[tuple[int, str]] = []
        self._recent: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        logs.ensure_stream(region, group, stream)
        self._thread = threading.Thread(target=self._loop, name=f"logs:{stream}", daemon=True)
        self._thread.start()

    def write(self, timestamp: float, line: str, _stream: str = "stdout") -> None:
        if self.on_line is not None:
            try:
                self.on_line(timestamp, line)
            except Exception:  # a metric regex must never stop log capture
                log.exception("log line hook failed")
        with self._lock:
            self._recent.append(line)
            self._pending.append((int(timestamp * 1000), line))
            if len(self._pending) >= MAX_BATCH:
                self._wake.set()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            try:
                logs.append(self.region, self.group, self.stream, batch)
            except Exception:
                log.exception("could not store %d log lines of %s", len(batch), self.stream)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self._flush()
        self._flush()

    def recent(self, count: int) -> list[str]:
        """The last `count` lines seen (for failure reasons that quote the log)."""
        with self._lock:
            return list(self._recent)[-count:]

    def close(self) -> None:
        """Flush everything still pending; idempotent."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._thread.join(timeout=10)


def open_sink(region: str, group: str, stream: str, on_line: Callable[[float, str], None] | None = None) -> LogSink:
    """A LogSink, retried while SQLite says "database is locked".

    storage.logs creates a missing stream with a read-then-write transaction, which SQLite refuses
    at once when another writer got in between (many hosts of a job start at the same moment).
    """
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return LogSink(region, group, stream, on_line=on_line)
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")
