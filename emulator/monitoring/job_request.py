"""One monitoring run as the CreateProcessingJob request Model Monitor makes for it.

A schedule names its job either inline (MonitoringScheduleConfig.MonitoringJobDefinition) or by a
DataQuality/ModelQuality/ModelBias/ModelExplainability job definition; `definition_of` brings both
to the inline form. `processing_request` then follows the analyzer contract (docs "Container Contract
Inputs"): the captured data of the window staged under the input's LocalPath in the capture layout
(`<endpoint>/<variant>/yyyy/mm/dd/hh/`, one input per hour folder), the baseline files, and the
variables dataset_format, dataset_source, output_path, start_time, end_time,
publish_cloudwatch_metrics, sagemaker_endpoint_name, sagemaker_monitoring_schedule_name,
baseline_constraints and baseline_statistics. The outputs go under
`<S3Uri>/<endpoint>/<schedule>/yyyy/mm/dd/hh`, the folder the SDK's list_executions() reads.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator.staging import uris as staging

from .schedule import iso

BASELINE_DIR = "/opt/ml/processing/baseline"
GROUND_TRUTH_DIR = "/opt/ml/processing/groundtruth"
CONFIG_DIR = "/opt/ml/processing/input/config"
MAX_INPUTS = 10  # ProcessingInputs' limit in the model
APP_MEMBERS = ("ImageUri", "ContainerEntrypoint", "ContainerArguments")
TYPES = ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")
CAPTURE_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}


class NoData(Exception):
    """The window holds no captured data: the run fails as AWS's does ("Job inputs had no data")."""


def definition_of(type_name: str, described: dict[str, Any]) -> dict[str, Any]:
    """A Describe<Type>JobDefinition answer in MonitoringJobDefinition's form."""
    app = dict(described.get(f"{type_name}AppSpecification") or {})
    job_input = described.get(f"{type_name}JobInput") or {}
    inputs = [{k: v} for k, v in job_input.items() if k in ("EndpointInput", "BatchTransformInput")]
    environment = dict(app.pop("Environment", None) or {})
    if app.get("ProblemType"):
        environment.setdefault("problem_type", app["ProblemType"])
    return {"BaselineConfig": described.get(f"{type_name}BaselineConfig") or {},
            "MonitoringInputs": inputs,
            "MonitoringOutputConfig": described.get(f"{type_name}JobOutputConfig") or {},
            "MonitoringResources": described.get("JobResources") or {},
            "MonitoringAppSpecification": app,
            "StoppingCondition": described.get("StoppingCondition"),
            "Environment": environment,
            "NetworkConfig": described.get("NetworkConfig"),
            "RoleArn": described["RoleArn"],
            "_GroundTruthS3Uri": (job_input.get("GroundTruthS3Input") or {}).get("S3Uri")}


def input_of(definition: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(EndpointInput or BatchTransformInput, its members) of a definition's one monitoring input."""
    first: dict[str, Any] = (definition.get("MonitoringInputs") or [{}])[0]
    for member, value in first.items():
        return member, dict(value or {})
    return None, {}


def _s3_input(name: str, uri: str, local: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
    source = source or {}
    return {"InputName": name, "S3Input": {
        "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": source.get("S3InputMode") or "File",
        "S3DataDistributionType": source.get("S3DataDistributionType") or "FullyReplicated"}}


def hour_folders(keys: list[str], prefix: str, start: float, end: float) -> list[str]:
    """The `<variant>/yyyy/mm/dd/hh` folders under `prefix` (relative keys) whose hour overlaps [start, end)."""
    found: set[str] = set()
    for key in keys:
        parts = key[len(prefix):].strip("/").split("/")
        if len(parts) < 6:
            continue
        try:
            hour = datetime(int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]), tzinfo=timezone.utc)
        except ValueError:
            continue
        if hour.timestamp() < end and hour.timestamp() + 3600 > start:
            found.add("/".join(parts[:5]))
    return sorted(found)


def _coarsen(folders: list[str], room: int) -> list[str]:
    """Fewer prefixes when the hours do not fit in the inputs left: whole days (then variants)."""
    for cut in (4, 3, 2, 1):
        if len(folders) <= room:
            break
        folders = sorted({"/".join(f.split("/")[:cut]) for f in folders})
    return folders


def _format_of(source: dict[str, Any]) -> dict[str, Any]:
    fmt = source.get("DatasetFormat") or {}
    if "Csv" in fmt:
        return {"csv": {"header": bool((fmt["Csv"] or {}).get("Header", True))}}
    if "Json" in fmt:
        return {"json": {"line": bool((fmt["Json"] or {}).get("Line", True))}}
    if "Parquet" in fmt:
        return {"parquet": {}}
    return CAPTURE_FORMAT


def processing_request(*, name: str, schedule: str, definition: dict[str, Any], scheduled: float,
                       window: tuple[float, float], capture_keys: list[str] | None,
                       capture_uri: str | None) -> dict[str, Any]:
    """The CreateProcessingJob request of one run. `capture_keys`: the keys under `capture_uri`
    (`<DestinationS3Uri>/<endpoint>`) for an endpoint input; raises NoData when none is in the window."""
    source_member, source = input_of(definition)
    local = source.get("LocalPath") or "/opt/ml/processing/input"
    endpoint = source.get("EndpointName") if source_member == "EndpointInput" else None
    environment: dict[str, str] = {
        "dataset_format": json.dumps(_format_of(source) if source_member == "BatchTransformInput" else CAPTURE_FORMAT),
        "dataset_source": local, "start_time": iso(window[0]), "end_time": iso(window[1]),
        "publish_cloudwatch_metrics": "Disabled", "sagemaker_monitoring_schedule_name": schedule}
    inputs: list[dict[str, Any]] = []
    baseline = definition.get("BaselineConfig") or {}
    for member, folder, file_name, variable in (("ConstraintsResource", "constraints", "constraints.json",
                                                 "baseline_constraints"),
                                                ("StatisticsResource", "stats", "statistics.json",
                                                 "baseline_statistics")):
        uri = (baseline.get(member) or {}).get("S3Uri")
        if uri:
            inputs.append(_s3_input(folder, uri, f"{BASELINE_DIR}/{folder}"))
            environment[variable] = f"{BASELINE_DIR}/{folder}/{uri.rstrip('/').rsplit('/', 1)[-1] or file_name}"
    if definition.get("_GroundTruthS3Uri"):
        inputs.append(_s3_input("groundtruth_input", definition["_GroundTruthS3Uri"], GROUND_TRUTH_DIR))
    app = definition.get("MonitoringAppSpecification") or {}
    if app.get("ConfigUri"):
        inputs.append(_s3_input("analysis_config", app["ConfigUri"], CONFIG_DIR))
    if endpoint:
        environment["sagemaker_endpoint_name"] = endpoint
        keys = capture_keys or []
        prefix = staging.parse_uri(capture_uri).key.rstrip("/") + "/" if capture_uri else ""
        folders = _coarsen(hour_folders(keys, prefix, *window), MAX_INPUTS - len(inputs))
        if not folders:
            raise NoData("Job inputs had no data")
        base = (capture_uri or "").rstrip("/")
        inputs[:0] = [_s3_input(f"input_{i}", f"{base}/{folder}", f"{local}/{endpoint}/{folder}", source)
                      for i, folder in enumerate(folders, 1)]
    elif source_member == "BatchTransformInput":
        inputs.insert(0, _s3_input("input_1", source["DataCapturedDestinationS3Uri"], local, source))
    stamp = datetime.fromtimestamp(scheduled, timezone.utc).strftime("%Y/%m/%d/%H")
    outputs = []
    for i, output in enumerate((definition.get("MonitoringOutputConfig") or {}).get("MonitoringOutputs") or [], 1):
        s3 = output["S3Output"]
        uri = "/".join(p for p in (s3["S3Uri"].rstrip("/"), endpoint, schedule, stamp) if p)
        outputs.append({"OutputName": f"result_{i}" if i > 1 else "result", "S3Output": {
            "S3Uri": uri, "LocalPath": s3["LocalPath"], "S3UploadMode": s3.get("S3UploadMode") or "EndOfJob"}})
        if i == 1:
            environment["output_path"] = s3["LocalPath"]
    environment.update(definition.get("Environment") or {})
    request: dict[str, Any] = {
        "ProcessingJobName": name, "RoleArn": definition["RoleArn"],
        "ProcessingResources": definition.get("MonitoringResources") or {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
        "AppSpecification": {k: app[k] for k in APP_MEMBERS if app.get(k)},
        "Environment": environment, "ProcessingInputs": inputs[:MAX_INPUTS]}
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": outputs, **({"KmsKeyId": kms} if (
            kms := (definition.get("MonitoringOutputConfig") or {}).get("KmsKeyId")) else {})}
    for member in ("StoppingCondition", "NetworkConfig"):
        if definition.get(member):
            request[member] = definition[member]
    return request
