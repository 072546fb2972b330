"""AddTags, ListTags, DeleteTags for every resource the emulator stores (looked up by ARN)."""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.errors import ResourceLimitExceeded, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import common

MAX_TAGS = 50


def _resource(arn: str) -> Resource:
    row = resources.get_by_arn(arn)
    if row is None:
        raise ValidationError(f"Resource {arn} does not exist.")
    return row


def add_tags(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _resource(params["ResourceArn"])
    existing = {tag["Key"] for tag in resources.tags_of(row)}
    added = {tag["Key"] for tag in params["Tags"]} - existing
    if len(existing) + len(added) > MAX_TAGS:
        raise ResourceLimitExceeded(
            f"A resource can have at most {MAX_TAGS} tags; {params['ResourceArn']} would have "
            f"{len(existing) + len(added)}.")
    resources.put_tags(row, params["Tags"])
    return {"Tags": params["Tags"]}


def list_tags(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.offset_page(resources.tags_of(_resource(params["ResourceArn"])), params, "Tags", default_limit=50)


def delete_tags(ctx: RequestContext, params: dict[str, Any]) -> None:
    resources.remove_tags(_resource(params["ResourceArn"]), params["TagKeys"])
