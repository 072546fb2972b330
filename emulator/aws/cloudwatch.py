"""Publishing metrics to the embedded CloudWatch (moto's, on our own port), as SageMaker does.

Training metrics (MetricDefinitions) and endpoint metrics (namespace AWS/SageMaker) both go
through here, so users read them with GetMetricStatistics/GetMetricData on the same endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

log = logging.getLogger(__name__)

BATCH = 500
_clients: dict[tuple[str, str], Any] = {}


def _client(url: str, region: str) -> Any:
    """One client per (endpoint, region), made once: creating a botocore client costs tens of ms."""
    client = _clients.get((url, region))
    if client is None:
        client = _clients[(url, region)] = boto3.client(
            "cloudwatch", endpoint_url=url, region_name=region,
            aws_access_key_id="emulator", aws_secret_access_key="emulator")
    return client


def put_metric_data(services: Any, region: str, namespace: str, data: list[dict[str, Any]]) -> None:
    """PutMetricData in batches; failures are logged, never raised (metrics must not fail a job)."""
    if not data or not services.config.self_url:
        return
    client = _client(services.config.self_url, region)
    try:
        for start in range(0, len(data), BATCH):
            client.put_metric_data(Namespace=namespace, MetricData=data[start:start + BATCH])
    except Exception:
        log.exception("could not publish %d metric datapoints to %s", len(data), namespace)
