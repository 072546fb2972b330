"""Processing jobs: Create/Describe/List/Stop/DeleteProcessingJob.

The handler stores the job and hands it to the processing engine, which runs it in the background;
every later change of the job (status, times, exit message) is the engine's.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.jobs.processing_config import LOCAL_PREFIX
from sagemaker_emulator.protocol.errors import ResourceInUse, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common

KIND = "processing-job"
NOUN = "processing job"


def _check_local_path(what: str, path: str | None, seen: dict[str, str]) -> None:
    if not path:
        raise ValidationError(f"{what}: LocalPath is required unless AppManaged is true.")
    if not path.startswith(LOCAL_PREFIX) or path.rstrip("/") == LOCAL_PREFIX.rstrip("/") or ".." in path.split("/"):
        raise ValidationError(f"{what}: LocalPath '{path}' must be an absolute path under {LOCAL_PREFIX}.")
    key = path.rstrip("/")
    if key in seen:
        raise ValidationError(f"{what}: LocalPath '{path}' is already used by {seen[key]}; each input and "
                              "output needs its own LocalPath.")
    seen[key] = what


def _unique(member: str, names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ValidationError(f"{member} values must be unique: {names}.")


def _check(params: dict[str, Any]) -> None:
    paths: dict[str, str] = {}
    inputs = params.get("ProcessingInputs") or []
    _unique("InputName", [item["InputName"] for item in inputs])
    for item in inputs:
        what = f"ProcessingInput '{item['InputName']}'"
        if item.get("DatasetDefinition"):
            raise ValidationError(f"{what}: DatasetDefinition (Athena/Redshift) is not supported by "
                                  "sagemaker-emulator; use S3Input.")
        s3 = item.get("S3Input")
        if not s3:
            raise ValidationError(f"{what} must specify S3Input.")
        if s3.get("S3CompressionType") == "Gzip" and s3.get("S3InputMode", "File") != "Pipe":
            raise ValidationError(f"{what}: S3CompressionType Gzip requires S3InputMode Pipe.")
        if not item.get("AppManaged"):
            _check_local_path(what, s3.get("LocalPath"), paths)
    outputs = (params.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    _unique("OutputName", [item["OutputName"] for item in outputs])
    for item in outputs:
        what = f"ProcessingOutput '{item['OutputName']}'"
        if item.get("FeatureStoreOutput"):
            raise ValidationError(f"{what}: FeatureStoreOutput is not supported by sagemaker-emulator; use S3Output.")
        if not item.get("S3Output"):
            raise ValidationError(f"{what} must specify S3Output.")
        if not item.get("AppManaged"):
            _check_local_path(what, item["S3Output"].get("LocalPath"), paths)


def _with_defaults(params: dict[str, Any]) -> dict[str, Any]:
    document = {key: value for key, value in params.items() if key != "Tags"}
    if params.get("ProcessingInputs"):
        document["ProcessingInputs"] = [
            {"AppManaged": False, **item,
             "S3Input": {"S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
                         "S3CompressionType": "None", **item["S3Input"]}}
            for item in params["ProcessingInputs"]]
    if params.get("ProcessingOutputConfig"):
        config = params["ProcessingOutputConfig"]
        document["ProcessingOutputConfig"] = {
            **config, "Outputs": [{"AppManaged": False, **item} for item in config["Outputs"]]}
    return document


def create_processing_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check(params)
    name = params["ProcessingJobName"]
    created = resources.now()
    document = _with_defaults(params)
    document.update(
        ProcessingJobArn=common.arn(ctx, KIND, name),
        ProcessingJobStatus="InProgress",
        CreationTime=created,
        LastModifiedTime=created,
    )
    arn = document["ProcessingJobArn"]
    common.create(ctx, KIND, name, document, NOUN, status="InProgress", tags=params.get("Tags"),
                  duplicate=lambda arn: ResourceInUse(
                      "Processing job names must be unique within an AWS account and region, and a processing "
                      f"job with this name already exists ({arn})"))
    ctx.services.processing.submit(ctx.region, name)
    return {"ProcessingJobArn": arn}


def describe_processing_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.require_job(ctx, KIND, params["ProcessingJobName"]).document


def list_processing_jobs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, KIND, params, "ProcessingJobSummaries", lambda row: common.job_summary(
        row, "ProcessingJob", ("ProcessingEndTime", "FailureReason", "ExitMessage")), default_order="Ascending")


def stop_processing_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.stop_job(ctx, KIND, params["ProcessingJobName"], "processing job", ctx.services.processing)


def delete_processing_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.delete_job(ctx, KIND, params["ProcessingJobName"], "Processing job")
