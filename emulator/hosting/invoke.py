"""InvokeEndpoint and InvokeEndpointWithResponseStream: routing, forwarding, error mapping (spec §3.3, §3.7).

A request picks a variant by weight (or TargetVariant), an instance round-robin, and is posted to
the model's containers (`hosting.fleet`). A container's non-2xx reply, timeout or absence
becomes SageMaker's ModelError (HTTP 424) naming the container and the endpoint's log group. Each
invocation is counted in the endpoint metrics and, when sampled, written to data capture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sagemaker_emulator.hosting.fleet import (
    ContainerReplyError,
    ServingError,
    ServingInstance,
    TargetModelError,
    open_stream,
)

from .errors import InvocationInvalid, ModelError, ModelStreamError, ServiceUnavailable, Throttled
from .live import ConcurrencyExceeded, LiveEndpoint, VariantFleet

HEADERS = (("Accept", "Accept"), ("CustomAttributes", "X-Amzn-SageMaker-Custom-Attributes"),
           ("InferenceId", "X-Amzn-SageMaker-Inference-Id"), ("TargetModel", "X-Amzn-SageMaker-Target-Model"))


class Invoker:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    # -- choosing where a request goes ----------------------------------------------------------
    def route(self, region: str, account: str, name: str, params: dict[str, Any]
              ) -> tuple[LiveEndpoint, VariantFleet, ServingInstance]:
        live = self.engine.live(region, name)
        if live is None:
            raise InvocationInvalid(f"Endpoint {name} of account {account} not found.")
        target = params.get("TargetVariant")
        variant = live.choose(target)
        if variant is None:
            raise InvocationInvalid(f"Variant {target} not found for endpoint {name}.")
        fleet = variant.fleet
        hostname = params.get("TargetContainerHostname")
        if fleet.mode == "Direct":
            names = [c.name for c in fleet.containers]
            if not hostname:
                raise InvocationInvalid(f"Endpoint {name} uses direct invocation mode: TargetContainerHostname is "
                                 f"required (one of {', '.join(names)}).")
            if hostname not in names:
                raise InvocationInvalid(f"TargetContainerHostname {hostname} is not a container of endpoint {name} "
                                 f"(containers: {', '.join(names)}).")
        elif hostname:
            raise InvocationInvalid(f"TargetContainerHostname can only be used with endpoints in direct invocation "
                             f"mode; endpoint {name} is not.")
        multi_model = any(c.multi_model for c in fleet.containers)
        if params.get("TargetModel") and not multi_model:
            raise InvocationInvalid(f"Endpoint {name} is not a multi-model endpoint and does not support the "
                             "TargetModel header.")
        if multi_model and not params.get("TargetModel"):
            raise InvocationInvalid(f"Endpoint {name} is a multi-model endpoint: the TargetModel header is required.")
        if variant.serverless is not None and not variant.instances:
            try:
                self.engine.ensure_serverless(live, variant)
            except ServingError as exc:
                raise ServiceUnavailable(f"The serverless endpoint {name} could not start: {exc}") from None
        try:
            instance = variant.pick()
        except ConcurrencyExceeded as exc:
            raise Throttled(f"Endpoint {name} is already serving its MaxConcurrency of {exc.limit} concurrent "
                            f"invocations (variant {variant.name}); retry with backoff.") from None
        if instance is None:
            raise ServiceUnavailable(f"Endpoint {name} has no instance of variant {variant.name} in service.")
        return live, variant, instance

    @staticmethod
    def forward_headers(params: dict[str, Any]) -> dict[str, str]:
        headers = {"Content-Type": params.get("ContentType") or "application/octet-stream"}
        for key, header in HEADERS:
            if params.get(key):
                headers[header] = params[key]
        return headers

    # -- InvokeEndpoint -------------------------------------------------------------------------
    def invoke(self, region: str, account: str, name: str, params: dict[str, Any],
               timeout: float | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        timeout = timeout or self.engine.services.config.model_timeout_seconds
        live, variant, instance = self.route(region, account, name, params)
        body = params.get("Body") or b""
        model_started = time.perf_counter()
        model_seconds = None
        try:
            reply = variant.fleet.invoke(instance, body, self.forward_headers(params), timeout,
                                         params.get("TargetContainerHostname"), params.get("TargetModel"))
            model_seconds = time.perf_counter() - model_started
        except ContainerReplyError as exc:
            self._count(live, variant, started, time.perf_counter() - model_started, exc.status)
            raise model_error(exc, region, account, name) from None
        except TargetModelError as exc:
            raise InvocationInvalid(str(exc)) from None
        finally:
            variant.release(instance)
        self._count(live, variant, started, model_seconds, 200)
        if live.capture is not None and live.capture.sampled():
            live.capture.record(variant.name, params.get("InferenceId"), params.get("ContentType"), body,
                                reply.content_type, reply.body)
        return {"Body": reply.body, "ContentType": reply.content_type, "InvokedProductionVariant": variant.name,
                "CustomAttributes": reply.custom_attributes}

    def _count(self, live: LiveEndpoint, variant: VariantFleet, started: float, model_seconds: float | None,
               status: int) -> None:
        total = time.perf_counter() - started
        model_us = model_seconds * 1e6 if model_seconds is not None else None
        overhead_us = max(total - (model_seconds or 0), 0) * 1e6
        error = 4 if 400 <= status < 500 else 5 if status >= 500 or status == 0 else None
        self.engine.metrics.record(live.region, live.name, variant.name, len(variant.instances), model_us,
                                   overhead_us, error)

    # -- InvokeEndpointWithResponseStream --------------------------------------------------------
    def invoke_stream(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        live, variant, instance = self.route(region, account, name, params)
        try:
            reply, chunks = open_stream(variant.fleet, instance, params.get("Body") or b"",
                                        self.forward_headers(params),
                                        self.engine.services.config.model_timeout_seconds,
                                        params.get("TargetContainerHostname"))
        except ContainerReplyError as exc:
            variant.release(instance)
            self._count(live, variant, started, time.perf_counter() - started, exc.status)
            raise model_error(exc, region, account, name) from None

        def events() -> Iterator[dict[str, Any]]:
            try:
                for chunk in chunks:
                    yield {"PayloadPart": {"Bytes": chunk}}
            except ContainerReplyError as exc:
                code = "ModelInvocationTimeExceeded" if exc.timed_out else "StreamBroken"
                message = "The model stopped sending data (model timeout)." if exc.timed_out else exc.message
                raise ModelStreamError(message, code) from None
            finally:
                variant.release(instance)
                self._count(live, variant, started, time.perf_counter() - started, 200)

        return {"Body": events(), "ContentType": reply.content_type, "InvokedProductionVariant": variant.name,
                "CustomAttributes": reply.custom_attributes}


def model_error(exc: ContainerReplyError, region: str, account: str, endpoint: str) -> ModelError:
    """SageMaker's ModelError (HTTP 424) for a container's reply."""
    log_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
    container = exc.container
    if exc.timed_out:
        original = (f"Your invocation timed out while waiting for a response from container {container}. Review "
                    "the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.")
    else:
        original = exc.message
    kind = "client" if 400 <= exc.status < 500 else "server"
    message = f'Received {kind} error ({exc.status}) from {container} with message "{original}". See {log_arn} ' \
              "for more information."
    return ModelError(message, exc.status, original, log_arn, client_side=kind == "client")
