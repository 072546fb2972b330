"""Publishing metrics to the embedded CloudWatch (moto's, on our own port), as SageMaker does.

Training metrics (MetricDefinitions) and endpoint metrics (namespace AWS/SageMaker) both go
through here, so users read them with GetMetricStatistics/GetMetricData on the same endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from .clients import self_client

log = logging.getLogger(__name__)

BATCH = 500


def put_metric_data(services: Any, region: str, namespace: str, data: list[dict[str, Any]]) -> None:
    """PutMetricData in batches; failures are logged, never raised (metrics must not fail a job)."""
    if not data or not services.config.self_url:
        return
    client = self_client("cloudwatch", services.config.self_url, region)
    try:
        for start in range(0, len(data), BATCH):
            client.put_metric_data(Namespace=namespace, MetricData=data[start:start + BATCH])
    except Exception:
        log.exception("could not publish %d metric datapoints to %s", len(data), namespace)
