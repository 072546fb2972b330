"""Per-variant invocation metrics in CloudWatch namespace AWS/SageMaker (dimensions EndpointName, VariantName).

Invocations are counted in memory and published as aggregated datapoints (StatisticValues) every
`metrics_flush_seconds`, stamped with the minute they belong to, like SageMaker's one-minute
metrics; GetMetricStatistics/GetMetricData on the emulator's port read them back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator.aws.cloudwatch import put_metric_data

NAMESPACE = "AWS/SageMaker"
MAX_PENDING = 50_000  # invocations queued before the recording thread aggregates them itself


@dataclass
class _Stat:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def statistic_values(self) -> dict[str, float]:
        return {"SampleCount": float(self.count), "Sum": self.total, "Minimum": self.low, "Maximum": self.high}


@dataclass
class _Bucket:
    stats: dict[str, _Stat] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.stats.setdefault(name, _Stat()).add(value)


UNITS = {"Invocations": "None", "ModelLatency": "Microseconds", "OverheadLatency": "Microseconds",
         "Invocation4XXErrors": "None", "Invocation5XXErrors": "None", "InvocationsPerInstance": "None"}


class EndpointMetrics:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._buckets: dict[tuple[str, str, str, int], _Bucket] = {}
        self._pending: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts: dict[tuple[str, str, str], int] = {}  # invocations per variant, ever: the scaler's deltas
        self._count_lock = threading.Lock()

    def record(self, region: str, endpoint: str, variant: str, instances: int, model_us: float | None,
               overhead_us: float, error_class: int | None) -> None:
        """One invocation: `error_class` is 4 or 5 when the model answered 4xx/5xx (or failed).

        Only queued here (an append needs no lock); `flush` does the arithmetic, off the request path.
        """
        self._pending.append((region, endpoint, variant, time.time(), instances, model_us, overhead_us,
                              error_class))
        key = (region, endpoint, variant)
        with self._count_lock:
            self._counts[key] = self._counts.get(key, 0) + 1
        if len(self._pending) > MAX_PENDING:  # a long flush interval must not hoard memory
            with self._lock:
                self._aggregate()
        self._ensure_thread()

    def invocations(self, region: str, endpoint: str, variant: str) -> int:
        """How many invocations the variant has had since the server started (autoscaling's metric)."""
        with self._count_lock:
            return self._counts.get((region, endpoint, variant), 0)

    def _aggregate(self) -> None:
        pending = self._pending
        while True:
            try:
                region, endpoint, variant, stamp, instances, model_us, overhead_us, error_class = pending.popleft()
            except IndexError:
                return
            bucket = self._buckets.setdefault((region, endpoint, variant, int(stamp) // 60 * 60), _Bucket())
            bucket.add("Invocations", 1)
            bucket.add("InvocationsPerInstance", 1 / max(instances, 1))
            if model_us is not None:
                bucket.add("ModelLatency", model_us)
            bucket.add("OverheadLatency", overhead_us)
            bucket.add("Invocation4XXErrors", 1 if error_class == 4 else 0)
            bucket.add("Invocation5XXErrors", 1 if error_class == 5 else 0)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="endpoint-metrics", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.services.config.metrics_flush_seconds):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            self._aggregate()
            buckets, self._buckets = self._buckets, {}
        by_region: dict[str, list[dict[str, Any]]] = {}
        for (region, endpoint, variant, minute), bucket in buckets.items():
            stamp = datetime.fromtimestamp(minute, timezone.utc)
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            for name, stat in bucket.stats.items():
                if name == "Invocations":  # a count: each invocation is one, summed
                    values = {"SampleCount": float(stat.count), "Sum": stat.total, "Minimum": 1.0, "Maximum": 1.0}
                else:
                    values = stat.statistic_values()
                by_region.setdefault(region, []).append({"MetricName": name, "Dimensions": dims, "Timestamp": stamp,
                                                         "StatisticValues": values, "Unit": UNITS[name]})
        for region, data in by_region.items():
            put_metric_data(self.services, region, NAMESPACE, data)

    def close(self) -> None:
        self._stop.set()
        self.flush()
