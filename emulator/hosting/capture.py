"""DataCaptureConfig: sampled request/response records written to S3 in SageMaker's capture layout.

Records are JSON lines (`captureData.endpointInput/endpointOutput` with observedContentType, mode,
data, encoding; `eventMetadata` with eventId, inferenceId, inferenceTime; `eventVersion` "0") in
objects keyed `<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-SSS>-<uuid>.jsonl`.
They are buffered and written every `capture_flush_seconds` (SageMaker writes every few minutes)
and when the endpoint is updated, deleted or the server stops.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator import staging
from sagemaker_emulator.jobs.data import JobData

log = logging.getLogger(__name__)

DEFAULT_CSV = ["text/csv"]
DEFAULT_JSON = ["application/json"]


class DataCapture:
    def __init__(self, services: Any, region: str, endpoint: str, config: dict[str, Any]) -> None:
        self.services, self.region, self.endpoint = services, region, endpoint
        self.percentage = float(config.get("InitialSamplingPercentage", 100))
        modes = {option["CaptureMode"] for option in config.get("CaptureOptions") or []}
        self.capture_input = bool(modes & {"Input", "InputAndOutput"}) or not modes
        self.capture_output = bool(modes & {"Output", "InputAndOutput"}) or not modes
        header = config.get("CaptureContentTypeHeader") or {}
        self.csv_types = {t.lower() for t in header.get("CsvContentTypes") or DEFAULT_CSV}
        self.json_types = {t.lower() for t in header.get("JsonContentTypes") or DEFAULT_JSON}
        self.destination = staging.as_folder(config["DestinationS3Uri"])
        self.data = JobData(services, region)  # one S3 client for every flush
        self._pending: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"capture:{endpoint}", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        return random.uniform(0, 100) < self.percentage

    def _encode(self, content_type: str | None, body: bytes, mode: str) -> dict[str, Any]:
        base = (content_type or "").split(";", 1)[0].strip().lower()
        if base in self.csv_types or base in self.json_types:
            try:
                return {"observedContentType": content_type, "mode": mode, "data": body.decode("utf-8"),
                        "encoding": "CSV" if base in self.csv_types else "JSON"}
            except UnicodeDecodeError:
                pass
        return {"observedContentType": content_type, "mode": mode, "data": base64.b64encode(body).decode(),
                "encoding": "BASE64"}

    def record(self, variant: str, inference_id: str | None, request_type: str | None, request: bytes,
               response_type: str | None, response: bytes) -> None:
        data: dict[str, Any] = {}
        if self.capture_input:
            data["endpointInput"] = self._encode(request_type, request, "INPUT")
        if self.capture_output:
            data["endpointOutput"] = self._encode(response_type, response, "OUTPUT")
        metadata = {"eventId": str(uuid.uuid4()),
                    "inferenceTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        if inference_id:
            metadata["inferenceId"] = inference_id
        line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
        with self._lock:
            self._pending.setdefault(variant, []).append(line)

    def _loop(self) -> None:
        while not self._stop.wait(self.services.config.capture_flush_seconds):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        store = self.data.store
        now = datetime.now(timezone.utc)
        for variant, lines in pending.items():
            key = (f"{self.endpoint}/{variant}/{now:%Y/%m/%d/%H}/"
                   f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl")
            try:
                store.put_bytes(("\n".join(lines) + "\n").encode(), staging.join_uri(self.destination, key))
            except staging.StagingError as exc:
                log.warning("endpoint %s: could not write %d capture records: %s", self.endpoint, len(lines), exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.flush()
