"""The durable queue of accepted InvokeEndpointAsync requests (one `AsyncInvocation` row each)."""

from __future__ import annotations

import json
from typing import Any

from .models import AsyncInvocation
from .resources import now


def add(region: str, endpoint: str, inference_id: str, request: dict[str, Any]) -> int:
    """Store an accepted request (committed before the caller answers 202); returns its queue id."""
    return AsyncInvocation.create(region=region, endpoint=endpoint, inference_id=inference_id,
                                  request=json.dumps(request), accepted=now()).id


def done(queue_id: int) -> None:
    AsyncInvocation.delete().where(AsyncInvocation.id == queue_id).execute()


def pending() -> list[tuple[int, str, str, dict[str, Any]]]:
    """Every request not yet answered, oldest first: (queue id, region, endpoint, request)."""
    return [(row.id, row.region, row.endpoint, json.loads(row.request))
            for row in AsyncInvocation.select().order_by(AsyncInvocation.id)]
