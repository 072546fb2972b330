"""InvokeEndpointAsync (spec §3.8): the request is queued, its input read from S3, the result written to S3.

The call answers 202 once the request is stored in the database's queue (storage/async_invocations),
with the InferenceId and the output/failure locations; a worker pool later reads `InputLocation`,
invokes the endpoint like InvokeEndpoint (same routing, metrics and capture) with
InvocationTimeoutSeconds, writes the model's reply to `<S3OutputPath>/<id>.out` or the error to
`<S3FailurePath>/<id>-error.out`, publishes the notification of `NotificationConfig` (SNS), and
only then drops the request from the queue. A restart (or a kill -9) therefore loses nothing:
`recover()` hands every stored request to the pool again, each waiting until its endpoint serves
again. A request cut off in the middle by a kill -9 is processed again (at least once, never lost).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator import staging
from sagemaker_emulator.aws.clients import self_client
from sagemaker_emulator.jobs.data import JobData
from sagemaker_emulator.storage import async_invocations, resources

from .errors import HostingError, InvocationInvalid

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 900
DEFAULT_TTL = 21600
WORKERS = 8
MAX_NOTIFIED_RESPONSE = 128 * 1024  # IncludeInferenceResponseIn: "only if the response size is <= 128 KB"
_STARTING = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(seconds * 1000) % 1000:03d}Z"


class AsyncInference:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="async-invoke")
        self._data: dict[str, JobData] = {}  # one S3 client per region, not one per request
        self._closing = threading.Event()

    def submit(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        async_config = self._async_config(region, name)
        if async_config is None:
            raise InvocationInvalid(f"Endpoint {name} of account {account} not found.")
        if not async_config:
            raise InvocationInvalid(f"Endpoint {name} is not configured for asynchronous inference: its endpoint "
                             "configuration has no AsyncInferenceConfig.")
        inference_id = params.get("InferenceId") or str(uuid.uuid4())
        output_config = async_config.get("OutputConfig") or {}
        base = staging.as_folder(output_config["S3OutputPath"])
        if params.get("S3OutputPathExtension"):
            base = staging.as_folder(staging.join_uri(base, params["S3OutputPathExtension"]))
        output = staging.join_uri(base, params.get("Filename") or f"{inference_id}.out")
        failure_base = staging.as_folder(output_config.get("S3FailurePath") or output_config["S3OutputPath"])
        failure = staging.join_uri(failure_base, f"{inference_id}-error.out")
        received = time.time()
        request = {
            "account": account, "input": params["InputLocation"], "output": output, "failure": failure,
            "headers": {key: params.get(key) for key in ("ContentType", "Accept", "CustomAttributes")},
            "inference_id": inference_id, "received": received,
            "timeout": float(params.get("InvocationTimeoutSeconds") or DEFAULT_TIMEOUT),
            "deadline": received + int(params.get("RequestTTLSeconds") or DEFAULT_TTL),
            "notifications": output_config.get("NotificationConfig") or {},
        }
        queue_id = async_invocations.add(region, name, inference_id, request)  # committed before the 202
        self._pool.submit(self._run, queue_id, region, name, request)
        return {"InferenceId": inference_id, "OutputLocation": output, "FailureLocation": failure}

    def _async_config(self, region: str, name: str) -> dict[str, Any] | None:
        """The endpoint's AsyncInferenceConfig ({} if none), None if it does not serve. An endpoint being
        deployed again after a restart (SystemUpdating) queues requests, as on AWS: its config is read from
        the database, and the request waits in the queue until the endpoint serves."""
        live = self.engine.live(region, name)
        if live is not None:
            return live.async_config or {}
        row = resources.get("endpoint", region, name)
        if row is None or row.status != "SystemUpdating":
            return None
        config = resources.get("endpoint-config", region, row.document.get("EndpointConfigName", ""))
        return (config.document.get("AsyncInferenceConfig") or {}) if config is not None else None

    def recover(self) -> None:
        """After a restart: every accepted request not yet answered is processed (once its endpoint serves)."""
        waiting = async_invocations.pending()
        if waiting:
            log.info("resuming %d queued asynchronous invocations", len(waiting))
        for queue_id, region, name, request in waiting:
            self._pool.submit(self._run, queue_id, region, name, request)

    def _wait_serving(self, region: str, name: str, deadline: float) -> None:
        """Until the endpoint serves: after a restart it is being deployed again (SystemUpdating)."""
        while self.engine.live(region, name) is None and not self._closing.is_set():
            row = resources.get("endpoint", region, name)
            if row is None or row.status not in _STARTING or time.time() > deadline:
                return  # gone or failed: the invocation reports it
            self._closing.wait(0.5)

    def _run(self, queue_id: int, region: str, name: str, request: dict[str, Any]) -> None:
        if self._closing.is_set():
            return  # a graceful stop: the request stays queued for the next start
        store = self._data.setdefault(region, JobData(self.engine.services, region)).store
        reply: dict[str, Any] | None = None
        try:
            self._wait_serving(region, name, request["deadline"])
            if self._closing.is_set():
                return
            if time.time() > request["deadline"]:
                raise InvocationInvalid("The request expired (RequestTTLSeconds) before it was processed.")
            try:
                body = store.get_bytes(request["input"], max_bytes=1 << 30)
            except staging.StagingError as exc:
                raise InvocationInvalid(f"Could not read the input {request['input']}: {exc}") from None
            params = {**request["headers"], "InferenceId": request["inference_id"], "Body": body}
            reply = self.engine.invoker.invoke(region, request["account"], name, params, timeout=request["timeout"])
            store.put_bytes(reply["Body"], request["output"])
        except Exception as exc:
            if self._closing.is_set():
                return  # the fleet is going away with the server: the request stays queued
            if isinstance(exc, HostingError):
                self._fail(store, region, name, request, exc.message)
            else:  # never lose a request silently
                log.exception("async invocation of %s failed", name)
                self._fail(store, region, name, request, f"InternalFailure: {exc}")
        else:
            self._notify(region, name, request, "SuccessTopic", "SUCCESS_NOTIFICATION_TOPIC", reply)
        async_invocations.done(queue_id)

    def _fail(self, store: staging.ObjectStore, region: str, name: str, request: dict[str, Any],
              message: str) -> None:
        try:
            store.put_bytes(message.encode(), request["failure"])
        except staging.StagingError:
            log.exception("could not write the async failure record %s", request["failure"])
        self._notify(region, name, request, "ErrorTopic", "ERROR_NOTIFICATION_TOPIC", None, message)

    def _notify(self, region: str, name: str, request: dict[str, Any], topic_key: str, include_key: str,
                reply: dict[str, Any] | None, failure: str | None = None) -> None:
        """The SNS notification of AsyncInferenceConfig.OutputConfig.NotificationConfig, as SageMaker words it."""
        config = request.get("notifications") or {}
        topic = config.get(topic_key)
        url = self.engine.services.config.self_url
        if not topic or not url:
            return
        message: dict[str, Any] = {
            "awsRegion": region, "eventTime": _iso(time.time()), "receivedTime": _iso(request["received"]),
            "invocationStatus": "Failed" if failure is not None else "Completed",
            "requestParameters": {"contentType": request["headers"].get("ContentType") or "application/octet-stream",
                                  "endpointName": name, "inputLocation": request["input"]},
            "inferenceId": request["inference_id"], "eventVersion": "1.0", "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult"}
        if failure is not None:
            message["failureReason"] = failure
            message["responseParameters"] = {"contentType": "text/plain; charset=utf-8",
                                             "failureLocation": request["failure"]}
        else:
            assert reply is not None
            message["responseParameters"] = {"contentType": reply.get("ContentType") or "application/octet-stream",
                                             "outputLocation": request["output"]}
            body = reply.get("Body") or b""
            if include_key in (config.get("IncludeInferenceResponseIn") or []) and len(body) <= MAX_NOTIFIED_RESPONSE:
                message["responseBody"] = {"content": body.decode("utf-8", "replace"), "message": "",
                                           "encoding": "UTF-8"}
        topic_region = topic.split(":")[3] if topic.count(":") >= 5 else region
        try:
            self_client("sns", url, topic_region).publish(TopicArn=topic, Message=json.dumps(message))
        except Exception:
            log.warning("could not publish the async notification of %s to %s", request["inference_id"], topic,
                        exc_info=True)

    def close(self) -> None:
        self._closing.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
