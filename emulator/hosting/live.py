"""What an endpoint is running right now: its variants' fleets and the instances that serve.

Invocations read a `LiveEndpoint` without locks beyond a snapshot: an update builds a whole new
`LiveEndpoint` and swaps it in, so a request keeps the fleet it started on (old containers are
removed only once their in-flight requests are done).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sagemaker_emulator.hosting.fleet import ModelFleet, ServingInstance

DRAIN_SECONDS = 65.0  # longest an in-flight request can take (60 s model timeout) plus slack


class ConcurrencyExceeded(Exception):
    """A serverless variant is already serving its MaxConcurrency invocations."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"MaxConcurrency {limit} reached")
        self.limit = limit


@dataclass
class VariantFleet:
    """One production variant: its prepared model and its running instances."""

    name: str
    weight: float
    fleet: ModelFleet
    config: dict[str, Any]
    instances: list[ServingInstance] = field(default_factory=list)
    serverless: dict[str, Any] | None = None
    last_used: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fleet_lock: threading.Lock = field(default_factory=threading.Lock)  # serverless cold starts
    _turn: int = 0

    def pick(self) -> ServingInstance | None:
        """Round-robin over the instances serving now, marking the chosen one busy.

        A serverless variant already serving MaxConcurrency requests refuses another (ConcurrencyExceeded).
        """
        with self.lock:
            instances = self.instances
            if not instances:
                return None
            if self.serverless is not None:
                limit = int(self.serverless.get("MaxConcurrency") or 200)
                if sum(i.inflight for i in instances) >= limit:
                    raise ConcurrencyExceeded(limit)
            self._turn = (self._turn + 1) % len(instances)
            chosen = instances[self._turn]
            chosen.inflight += 1
            self.last_used = time.time()
            return chosen

    def release(self, instance: ServingInstance) -> None:
        with self.lock:
            instance.inflight -= 1
            self.last_used = time.time()

    def wait_idle(self, instances: list[ServingInstance], timeout: float = DRAIN_SECONDS) -> None:
        """Until none of `instances` has a request in flight (they are already out of rotation)."""
        deadline = time.time() + timeout
        while time.time() < deadline and any(i.inflight > 0 for i in instances):
            time.sleep(0.02)


@dataclass
class LiveEndpoint:
    region: str
    name: str
    arn: str
    config_name: str
    deployment: str
    variants: dict[str, VariantFleet] = field(default_factory=dict)
    capture: Any = None  # DataCapture | None
    async_config: dict[str, Any] | None = None

    def choose(self, target: str | None) -> VariantFleet | None:
        """TargetVariant, else a variant drawn with probability weight / sum of weights."""
        if target:
            return self.variants.get(target)
        if len(self.variants) == 1:  # most endpoints: nothing to draw
            return next(iter(self.variants.values()))
        choices = list(self.variants.values())
        weights = [v.weight for v in choices]
        if sum(weights) <= 0:
            return choices[0]
        return random.choices(choices, weights=weights)[0]

    def instances(self) -> list[ServingInstance]:
        return [i for v in self.variants.values() for i in v.instances]
