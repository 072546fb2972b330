"""Lineage groups: DescribeLineageGroup, ListLineageGroups, GetLineageGroupPolicy.

AWS has no API to create one. "SageMaker supports only one default lineage group per account" and
"creates the default lineage group whenever a lineage entity is created in your account" (Cross-Account
Lineage Tracking); its name in AWS's example policy is `sagemaker-default-lineage-group`. `ensure` is the
one way in, for that default group and for any other part of the emulator that creates a group on the
user's behalf (pipelines). A group's resource policy comes from AWS RAM sharing, which is not emulated,
so GetLineageGroupPolicy answers the group's ARN with no ResourcePolicy.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.errors import ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import common

KIND = "lineage-group"
DEFAULT = "sagemaker-default-lineage-group"


def ensure(ctx: RequestContext, name: str = DEFAULT, display_name: str | None = None,
           description: str | None = None) -> str:
    """The lineage group `name` of the request's region, created when missing; its ARN. Idempotent and
    safe against a concurrent create."""
    row = common.find(ctx, KIND, name)
    if row is not None:
        return row.arn
    now = resources.now()
    document: dict[str, Any] = {"LineageGroupName": name, "LineageGroupArn": common.arn(ctx, KIND, name),
                                "DisplayName": display_name or name, "CreationTime": now, "LastModifiedTime": now,
                                "CreatedBy": {}, "LastModifiedBy": {}}
    if description:
        document["Description"] = description
    try:
        return common.create(ctx, KIND, name, document, "lineage group").arn
    except ValidationError:  # created meanwhile
        found = common.find(ctx, KIND, name)
        if found is None:
            raise
        return found.arn


def _group(ctx: RequestContext, name_or_arn: str) -> Resource:
    return common.require(ctx, KIND, name_or_arn, "lineage group", error=ResourceNotFound)


def describe_lineage_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _group(ctx, params["LineageGroupName"]).document


def list_lineage_groups(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    query = common.list_query({**params, "CreationTimeAfter": params.get("CreatedAfter"),
                               "CreationTimeBefore": params.get("CreatedBefore")})
    members = ("LineageGroupArn", "LineageGroupName", "DisplayName", "CreationTime", "LastModifiedTime")
    return common.page_of(ctx, KIND, query, "LineageGroupSummaries",
                          lambda row: {k: row.document[k] for k in members if k in row.document})


def get_lineage_group_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"LineageGroupArn": _group(ctx, params["LineageGroupName"]).arn}
