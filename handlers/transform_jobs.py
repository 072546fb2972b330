"""Batch transform jobs: Create/Describe/List/StopTransformJob (there is no DeleteTransformJob).

The handler checks and stores the job and hands it to the transform engine, which runs it in the
background; every later change of the job (status, times, failure reason) is the engine's.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.jobs.transform import jsonpath
from sagemaker_emulator.protocol.errors import ResourceInUse, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common

KIND = "transform-job"
NOUN = "transform job"
MAX_PAYLOAD_MB = 100


def _check(params: dict[str, Any]) -> None:
    source = params["TransformInput"]["DataSource"].get("S3DataSource")
    if not source:
        raise ValidationError("TransformInput.DataSource.S3DataSource is required.")
    if source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
        raise ValidationError(f"S3DataType {source['S3DataType']} is not supported for batch transform; "
                              "use S3Prefix or ManifestFile.")
    payload = params.get("MaxPayloadInMB")
    if payload is not None and payload > MAX_PAYLOAD_MB:
        raise ValidationError(f"MaxPayloadInMB must be at most {MAX_PAYLOAD_MB}, not {payload}.")
    concurrency = params.get("MaxConcurrentTransforms")
    if payload and concurrency and payload * concurrency > MAX_PAYLOAD_MB:
        raise ValidationError(f"MaxConcurrentTransforms ({concurrency}) x MaxPayloadInMB ({payload}) must not "
                              f"exceed {MAX_PAYLOAD_MB}.")
    processing = params.get("DataProcessing") or {}
    for member in ("InputFilter", "OutputFilter"):
        try:
            jsonpath.parse(processing.get(member))
        except jsonpath.FilterError as exc:
            raise ValidationError(f"DataProcessing.{member}: {exc}") from None
    if jsonpath.is_active(processing) and jsonpath.format_of(params["TransformInput"].get("ContentType")) is None:
        raise ValidationError("DataProcessing requires TransformInput.ContentType text/csv, application/json or "
                              "application/jsonlines.")


def create_transform_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check(params)
    name = params["TransformJobName"]
    common.require(ctx, "model", params["ModelName"], "model")
    document = {key: value for key, value in params.items() if key != "Tags"}
    document["TransformInput"] = {"CompressionType": "None", "SplitType": "None", **params["TransformInput"]}
    if "AssembleWith" not in document["TransformOutput"]:
        document["TransformOutput"] = {**document["TransformOutput"], "AssembleWith": "None"}
    document.update(TransformJobArn=common.arn(ctx, KIND, name), TransformJobStatus="InProgress",
                    CreationTime=resources.now())
    common.create(ctx, KIND, name, document, NOUN, status="InProgress", tags=params.get("Tags"),
                  duplicate=lambda arn: ResourceInUse(f"Job name must be unique within an AWS account and region, "
                                                      f"and a job with this name already exists ({arn})"))
    ctx.services.transform.submit(ctx.region, name)
    return {"TransformJobArn": document["TransformJobArn"]}


def describe_transform_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.require_job(ctx, KIND, params["TransformJobName"]).document


def list_transform_jobs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, KIND, params, "TransformJobSummaries", lambda row: common.job_summary(
        row, "TransformJob", ("TransformEndTime", "FailureReason")))


def stop_transform_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.stop_job(ctx, KIND, params["TransformJobName"], "transform job", ctx.services.transform)
