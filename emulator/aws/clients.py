"""boto3 clients of the emulator's own embedded services (CloudWatch, SNS, ...), for code inside it.

One client per (service, endpoint, region), made once: creating a botocore client costs tens of ms.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

_clients: dict[tuple[str, str, str], Any] = {}
_lock = threading.Lock()


def self_client(service: str, url: str, region: str) -> Any:
    """A client of `service` at our own `url` (services.config.self_url), with dummy credentials."""
    key = (service, url, region)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = boto3.client(
                    service, endpoint_url=url, region_name=region,
                    aws_access_key_id="emulator", aws_secret_access_key="emulator")
    return client
