"""Metrics from log lines (AlgorithmSpecification.MetricDefinitions), as SageMaker extracts them.

Each regex is searched in every log line as CloudWatch shows it (a TAB as `#011`, which AWS's own
algorithm definitions expect), else as written; the first capture group must parse as a float. The
last value per metric becomes FinalMetricDataList; every datapoint is kept for CloudWatch and handed
to the training engine's metric listeners.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Datapoint:
    name: str
    value: float
    timestamp: float
    host: str


@dataclass
class MetricExtractor:
    definitions: list[dict]
    _compiled: list[tuple[str, re.Pattern]] = field(default_factory=list)
    points: list[Datapoint] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for definition in self.definitions:
            try:
                self._compiled.append((definition["Name"], re.compile(definition["Regex"])))
            except re.error as exc:
                log.warning("metric %s: regex %r does not compile (%s); ignored",
                            definition["Name"], definition["Regex"], exc)

    def feed(self, line: str, timestamp: float, host: str) -> list[Datapoint]:
        """Datapoints found in one log line (also remembered)."""
        found = []
        shown = line.replace("\t", "#011")  # CloudWatch shows a TAB as #011, and AWS's regexes expect that
        for name, pattern in self._compiled:
            match = pattern.search(shown) or (pattern.search(line) if shown != line else None)
            if not match:
                continue
            try:
                value = float(match.group(1) if match.groups() else match.group(0))
            except (ValueError, TypeError, IndexError):
                continue
            found.append(Datapoint(name, value, timestamp, host))
        if found:
            with self._lock:
                self.points.extend(found)
        return found

    def final(self) -> list[dict]:
        """FinalMetricDataList: the last value of each metric, in definition order."""
        last: dict[str, Datapoint] = {}
        with self._lock:
            for point in self.points:
                last[point.name] = point
        order = [name for name, _ in self._compiled]
        return [{"MetricName": name, "Value": last[name].value, "Timestamp": last[name].timestamp}
                for name in order if name in last]
