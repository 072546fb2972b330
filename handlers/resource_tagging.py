"""The Resource Groups Tagging API over our SageMaker resources and moto's other services.

GetResources, GetTagKeys and GetTagValues answer one listing: our tagged SageMaker resources (tags in
our store, handlers/tags.py) followed by moto's resources of every other service. TagResources and
UntagResources send a SageMaker ARN to our AddTags/DeleteTags (through `services.sagemaker.call`, so
AWS's tag rules apply) and any other ARN to moto. The remaining operations of the API are moto's.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sagemaker_emulator.aws import moto_tagging
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources


class InvalidParameter(AwsError):
    code = "InvalidParameterException"


def _resource_type(arn: str) -> str:
    """`sagemaker:endpoint` from `arn:aws:sagemaker:<region>:<account>:endpoint/<name>`."""
    parts = arn.split(":", 5)
    return f"{parts[2]}:{parts[5].split('/', 1)[0]}" if len(parts) == 6 else parts[2]


def _ours(ctx: RequestContext, params: dict[str, Any]) -> list[tuple[str, list[dict[str, str]]]]:
    matches = moto_tagging.matcher(params.get("TagFilters") or [])
    types = params.get("ResourceTypeFilters") or []
    arns = {a.lower() for a in params.get("ResourceARNList") or []}
    return [(arn, tags) for arn, tags in resources.tagged(ctx.region, moto_tagging.SAGEMAKER_ARN)
            if matches({t["Key"]: t["Value"] for t in tags}) and moto_tagging.type_matches(_resource_type(arn), types)
            and (not arns or arn in arns)]


def _page(items: list, token: str | None, size: int, what: str) -> tuple[list, str | None]:
    """Offset pages over a listing recomputed per call; the token names the listing it belongs to."""
    start = 0
    if token:
        try:
            decoded = json.loads(base64.b64decode(token.encode(), validate=True))
            start, kind = int(decoded["o"]), decoded["k"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidParameter("The specified pagination token is not valid.") from None
        if kind != what or not 0 <= start <= len(items):
            raise InvalidParameter("The specified pagination token is not valid.")
    end = start + size
    following = base64.b64encode(json.dumps({"o": end, "k": what}).encode()).decode() if end < len(items) else None
    return items[start:end], following


def get_resources(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    per_page = params.get("ResourcesPerPage", 50)
    if not 1 <= per_page <= 100:
        raise InvalidParameter("ResourcesPerPage must be between 1 and 100")
    tags_per_page = params.get("TagsPerPage", 100)
    if not 100 <= tags_per_page <= 500:
        raise InvalidParameter("TagsPerPage must be between 100 and 500")
    if params.get("ResourceARNList") and (params.get("TagFilters") or params.get("ResourceTypeFilters")):
        raise InvalidParameter("Specify ResourceARNList or TagFilters/ResourceTypeFilters, not both.")
    listing = [{"ResourceARN": arn, "Tags": tags} for arn, tags in _ours(ctx, params)]
    listing += [{"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                for arn, tags in moto_tagging.moto_resources(
                    ctx.account_id, ctx.region, params.get("TagFilters") or [],
                    params.get("ResourceTypeFilters") or [], params.get("ResourceARNList") or [])]
    page, token = _page(listing, params.get("PaginationToken"), per_page, "resources")
    return {"ResourceTagMappingList": page, "PaginationToken": token or ""}


def _all_tags(ctx: RequestContext) -> list[dict[str, str]]:
    ours = [{t["Key"]: t["Value"] for t in tags}
            for _, tags in resources.tagged(ctx.region, moto_tagging.SAGEMAKER_ARN)]
    return ours + moto_tagging.moto_tags(ctx.account_id, ctx.region)


def get_tag_keys(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    keys = sorted({key for tags in _all_tags(ctx) for key in tags})
    page, token = _page(keys, params.get("PaginationToken"), 500, "keys")
    return {"TagKeys": page, "PaginationToken": token or ""}


def get_tag_values(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    key = params["Key"]
    values = sorted({tags[key] for tags in _all_tags(ctx) if key in tags})
    page, token = _page(values, params.get("PaginationToken"), 500, f"values:{key}")
    return {"TagValues": page, "PaginationToken": token or ""}


def _ours_or_moto(arns: list[str]) -> tuple[list[str], list[str]]:
    ours = [a for a in arns if a.startswith(moto_tagging.SAGEMAKER_ARN)]
    return ours, [a for a in arns if a not in ours]


def _region_of(ctx: RequestContext, arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else ctx.region


def _each_of_ours(ctx: RequestContext, arns: list[str], operation: str, extra: dict[str, Any]) -> dict[str, Any]:
    failed: dict[str, Any] = {}
    for arn in arns:
        try:
            ctx.services.sagemaker.call(operation, {"ResourceArn": arn, **extra}, region=_region_of(ctx, arn))
        except AwsError as err:
            failed[arn] = {"StatusCode": err.status, "ErrorCode": "InvalidParameterException"
                           if err.status < 500 else "InternalServiceException", "ErrorMessage": err.message}
    return failed


def tag_resources(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ours, theirs = _ours_or_moto(params["ResourceARNList"])
    tags = [{"Key": k, "Value": v} for k, v in params["Tags"].items()]
    failed = _each_of_ours(ctx, ours, "AddTags", {"Tags": tags})
    failed.update(moto_tagging.moto_tag(ctx.account_id, ctx.region, theirs, params["Tags"]))
    return {"FailedResourcesMap": failed}


def untag_resources(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ours, theirs = _ours_or_moto(params["ResourceARNList"])
    failed = _each_of_ours(ctx, ours, "DeleteTags", {"TagKeys": params["TagKeys"]})
    failed.update(moto_tagging.moto_untag(ctx.account_id, ctx.region, theirs, params["TagKeys"]))
    return {"FailedResourcesMap": failed}
