"""A model package's ValidationSpecification, run for real: one batch transform job per profile.

For each ValidationProfile a model is created from the package's InferenceSpecification containers
and its TransformJobDefinition runs as a transform job, all through the in-process call path (the
same validation and engines a client gets). The package is InProgress meanwhile, then Completed if
every job completed, else Failed with the reason. The model and jobs are named
`<group>-<version>-validation-<n>-<suffix>`; the models are deleted afterwards, the jobs stay (AWS
shows them too). A restart while a validation runs leaves the package InProgress (not recovered).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from sagemaker_emulator.jobs.records import TERMINAL
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

log = logging.getLogger(__name__)

KIND = "model-package"
POLL_SECONDS = 1.0


def start(services: Any, region: str, name: str) -> threading.Thread:
    thread = threading.Thread(target=_run, args=(services, region, name), daemon=True,
                              name=f"validate-{name}")
    thread.start()
    return thread


def _prefix(name: str) -> str:
    return name.replace("/", "-")[:40].strip("-")


def _run(services: Any, region: str, name: str) -> None:
    sm = services.sagemaker
    row = resources.get(KIND, region, name)
    if row is None:
        return
    package = row.document
    spec = package["ValidationSpecification"]
    containers = [{k: c[k] for k in ("Image", "ModelDataUrl", "Environment") if k in c}
                  for c in package["InferenceSpecification"]["Containers"]]
    results: dict[str, tuple[str, str | None]] = {}
    for index, profile in enumerate(spec["ValidationProfiles"], start=1):
        base = f"{_prefix(name)}-validation-{index}-{uuid.uuid4().hex[:6]}"
        try:
            model = {"ModelName": base, "ExecutionRoleArn": spec["ValidationRole"]}
            model.update({"PrimaryContainer": containers[0]} if len(containers) == 1 else {"Containers": containers})
            sm.call("CreateModel", model, region=region)
            try:
                job = {**profile["TransformJobDefinition"], "TransformJobName": base, "ModelName": base}
                sm.call("CreateTransformJob", job, region=region)
                status, reason = _wait(sm, region, base)
            finally:
                sm.call("DeleteModel", {"ModelName": base}, region=region)
        except AwsError as err:
            status, reason = "Failed", err.message
        except Exception as exc:  # a bug of ours: the package fails, the thread does not die silently
            log.exception("validation of %s broke", name)
            status, reason = "Failed", f"Internal error: {exc}"
        results[profile["ProfileName"]] = (status, reason)
    _finish(region, name, results)


def _wait(sm: Any, region: str, job: str) -> tuple[str, str | None]:
    while True:
        got = sm.call("DescribeTransformJob", {"TransformJobName": job}, region=region)
        if got["TransformJobStatus"] in TERMINAL:
            return got["TransformJobStatus"], got.get("FailureReason")
        time.sleep(POLL_SECONDS)


def _finish(region: str, name: str, results: dict[str, tuple[str, str | None]]) -> None:
    def mutate(doc: dict) -> str | None:
        statuses = []
        for profile, (status, reason) in results.items():
            entry = {"Name": profile, "Status": "Completed" if status == "Completed" else "Failed"}
            if status != "Completed":
                entry["FailureReason"] = f"Transform job {status}: {reason or 'no reason given'}"
            statuses.append(entry)
        doc["ModelPackageStatusDetails"] = {"ValidationStatuses": statuses}
        doc["ModelPackageStatus"] = "Completed" if all(s["Status"] == "Completed" for s in statuses) else "Failed"
        doc["LastModifiedTime"] = resources.now()
        return doc.get("ModelApprovalStatus")

    resources.update(KIND, region, name, mutate)
