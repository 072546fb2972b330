"""InvokeEndpointAsync (spec §3.8): the request is queued, its input read from S3, the result written to S3.

The call answers 202 at once with the InferenceId and the output/failure locations; a worker
pool later reads `InputLocation`, invokes the endpoint like InvokeEndpoint (same routing, metrics
and capture) with InvocationTimeoutSeconds, and writes the model's reply to
`<S3OutputPath>/<id>.out` or the error to `<S3FailurePath>/<id>-error.out`.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sagemaker_emulator import staging
from sagemaker_emulator.jobs.data import JobData

from .errors import HostingError, InvocationInvalid

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 900
DEFAULT_TTL = 21600
WORKERS = 8


class AsyncInference:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="async-invoke")
        self._data: dict[str, JobData] = {}  # one S3 client per region, not one per request

    def submit(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        live = self.engine.live(region, name)
        if live is None:
            raise InvocationInvalid(f"Endpoint {name} of account {account} not found.")
        if not live.async_config:
            raise InvocationInvalid(f"Endpoint {name} is not configured for asynchronous inference: its endpoint "
                             "configuration has no AsyncInferenceConfig.")
        inference_id = params.get("InferenceId") or str(uuid.uuid4())
        output_config = live.async_config.get("OutputConfig") or {}
        base = staging.as_folder(output_config["S3OutputPath"])
        if params.get("S3OutputPathExtension"):
            base = staging.as_folder(staging.join_uri(base, params["S3OutputPathExtension"]))
        output = staging.join_uri(base, params.get("Filename") or f"{inference_id}.out")
        failure_base = staging.as_folder(output_config.get("S3FailurePath") or output_config["S3OutputPath"])
        failure = staging.join_uri(failure_base, f"{inference_id}-error.out")
        deadline = time.time() + int(params.get("RequestTTLSeconds") or DEFAULT_TTL)
        request = {key: params.get(key) for key in ("ContentType", "Accept", "CustomAttributes")}
        request["InferenceId"] = inference_id
        self._pool.submit(self._run, region, account, name, params["InputLocation"], request, output, failure,
                          float(params.get("InvocationTimeoutSeconds") or DEFAULT_TIMEOUT), deadline)
        return {"InferenceId": inference_id, "OutputLocation": output, "FailureLocation": failure}

    def _run(self, region: str, account: str, name: str, input_location: str, request: dict[str, Any],
             output: str, failure: str, timeout: float, deadline: float) -> None:
        store = self._data.setdefault(region, JobData(self.engine.services, region)).store
        try:
            if time.time() > deadline:
                raise InvocationInvalid("The request expired (RequestTTLSeconds) before it was processed.")
            try:
                body = store.get_bytes(input_location, max_bytes=1 << 30)
            except staging.StagingError as exc:
                raise InvocationInvalid(f"Could not read the input {input_location}: {exc}") from None
            reply = self.engine.invoker.invoke(region, account, name, {**request, "Body": body}, timeout=timeout)
            store.put_bytes(reply["Body"], output)
        except HostingError as err:
            self._write_failure(store, failure, err.message)
        except Exception as exc:  # never lose a request silently
            log.exception("async invocation of %s failed", name)
            self._write_failure(store, failure, f"InternalFailure: {exc}")

    @staticmethod
    def _write_failure(store: staging.ObjectStore, failure: str, message: str) -> None:
        try:
            store.put_bytes(message.encode(), failure)
        except staging.StagingError:
            log.exception("could not write the async failure record %s", failure)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
