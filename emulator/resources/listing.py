"""List<noun>s for every declared resource: filters read from the List operation's input shape.

The members every SageMaker List shares (time ranges, StatusEquals, SortBy/SortOrder, MaxResults,
NextToken) go to the shared keyset pager (handlers/common.page_of); the rest are matched against
the stored documents: `<Member>Equals` and plain members by equality (DomainIdEquals, ImageName,
EndpointName), `<Member>Contains` and NameContains by substring. Rows are settled first, so a
StatusEquals filter sees the status a Describe would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sagemaker_emulator.handlers import common
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage.models import Resource

from .engine import not_found, settle
from .spec import Model

Check = Callable[[Resource, dict], bool]


def _contains(member: str, value: Any, fallback: bool = False) -> Check:
    return lambda row, doc: str(value) in str(doc.get(member, row.name if fallback else ""))


def _equals(member: str, value: Any) -> Check:
    return lambda row, doc: doc.get(member) == value

SHARED = {"MaxResults", "NextToken", "SortOrder"}


def _sort(value: str | None) -> str:
    lowered = (value or "").lower()
    return "Name" if "name" in lowered else "Status" if "status" in lowered else "CreationTime"


def _filters(model: Model, params: dict[str, Any]) -> tuple[dict[str, Any], list[Check]]:
    """(members for common.list_query, predicates over (row, document))."""
    shape = model.op("List").input_shape
    shared: dict[str, Any] = {}
    checks: list[Check] = []
    name_member = model.spec.title or model.path[-1].split("|")[0]
    summary = model.list_key[1] if model.list_key else None
    summary_members = set(summary.members) if summary is not None and summary.type_name == "structure" else set()
    for member, value in params.items():
        kind = shape.members[member].type_name if member in shape.members else None
        if member in SHARED:
            shared[member] = value
        elif member == "SortBy":
            shared["SortBy"] = _sort(value)
        elif kind == "timestamp":
            side = "After" if "After" in member else "Before"
            shared[("LastModifiedTime" if "Modified" in member else "CreationTime") + side] = value
        elif member == "StatusEquals" or (member.endswith("StatusEquals") and model.status_member
                                          and member[:-6] == model.status_member):
            shared["StatusEquals"] = value
        elif member == "NameContains":
            checks.append(_contains(name_member, value, fallback=True))
        elif member.endswith("Contains"):
            checks.append(_contains(member[:-8], value))
        elif member.endswith("Equals"):
            checks.append(_equals(member[:-6], value))
        elif member in model.describe_members or member in summary_members:
            checks.append(_equals(member, value))
    return shared, checks


def list_resources(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if model.list_key is None:
        return {}
    result_key, summary_shape = model.list_key
    _check_parent(model, ctx, params)
    shared, checks = _filters(model, params)
    # the defaults each List documents; undocumented: ascending (as ListModelCards and ListNotebookInstances)
    shared.setdefault("SortBy", _sort(model.list_default("SortBy")))
    order = model.list_default("SortOrder") or "Ascending"
    shared.setdefault("SortOrder", "Ascending" if order.lower().startswith("asc") else "Descending")
    ids = []
    for stored in Resource.select().where((Resource.kind == model.spec.kind) & (Resource.region == ctx.region)):
        row = settle(model, stored)
        if row is not None and all(check(row, row.document) for check in checks):
            ids.append(row.id)
    query = common.list_query(shared)
    query.ids = ids
    members = list(summary_shape.members) if summary_shape.type_name == "structure" else []
    # a summary member named longer than the Describe one (MonitoringJobDefinitionName: JobDefinitionName)
    renamed = {m: k for m in members if m not in model.describe_members
               for k in model.describe_members if len(k) > 6 and m.endswith(k)}

    def summary(row: Resource) -> Any:
        doc = row.document
        if not members:  # a list of names or ARNs
            return doc.get(model.arn_member or "", row.arn) if summary_shape.type_name == "string" else doc
        return {m: doc[renamed.get(m, m)] for m in members if renamed.get(m, m) in doc}

    return common.page_of(ctx, model.spec.kind, query, result_key, summary)


def _check_parent(model: Model, ctx: RequestContext, params: dict[str, Any]) -> None:
    """A List scoped to a parent (ListImageVersions' ImageName) answers not-found for a missing parent."""
    from .catalog import MODELS
    from .engine import path_of

    required = set(model.op("List").input_shape.required_members)
    for alternatives in model.spec.parents:
        for noun in alternatives.split("|"):
            parent = MODELS[noun]
            if not required or not set(parent.path) <= required:
                continue
            name = path_of(parent, params)
            if name is not None and common.find(ctx, parent.spec.kind, name) is None:
                raise not_found(model, "List", f'{noun} "{name}" does not exist.')
