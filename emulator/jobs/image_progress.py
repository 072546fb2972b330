"""A job's view of a stand-in image build: its log stream gets the build's progress, its status says why
it waits, and the wait ends when the job's stopping condition would (framework_images.resolve)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sagemaker_emulator.runtime.framework_images import BuildObserver

from .logsink import LogSink

log = logging.getLogger(__name__)


def stopping_deadline(job: dict[str, Any] | None) -> float | None:
    """Start time + StoppingCondition.MaxRuntimeInSeconds (epoch seconds), None without a limit."""
    if not job:
        return None
    limit = (job.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    if not limit:
        return None
    start = job.get("TrainingStartTime") or job.get("ProcessingStartTime") or job.get("TransformStartTime")
    return float(start or time.time()) + float(limit)


class JobBuildObserver(BuildObserver):
    """Writes notes and build output to `<stream>-<epoch>` of the job's log group (created on first use)."""

    def __init__(self, region: str, group: str, stream: str, on_building: Callable[[str], Any] | None = None) -> None:
        self.region, self.group, self.stream = region, group, stream
        self.on_building = on_building
        self._sink: LogSink | None = None
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            if self._sink is None:
                self._sink = LogSink(self.region, self.group, f"{self.stream}-{int(time.time())}")
            self._sink.write(time.time(), text)

    def note(self, text: str) -> None:
        super().note(text)
        self._write(text)

    def building(self, uri: str, image: str) -> None:
        super().building(uri, image)
        if self.on_building is not None:
            self.on_building(uri)
        self._write(f"Building the local stand-in {image} for {uri}")

    def line(self, text: str) -> None:
        self._write(text)

    def close(self) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink.close()

