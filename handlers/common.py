"""Helpers every SageMaker handler module shares: ARNs, lookups with AWS's wording, listing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sagemaker_emulator.events import STATUS_FIELDS, change_of
from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource


def arn(ctx: RequestContext, kind: str, name: str) -> str:
    """`arn:aws:sagemaker:<region>:<account>:<kind>/<name>`, name lower-cased as SageMaker does."""
    return f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:{kind}/{name.lower()}"


def find(ctx: RequestContext, kind: str, name: str) -> Resource | None:
    return resources.get(kind, ctx.region, name)


def find_named(ctx: RequestContext, kind: str, value: str) -> Resource | None:
    """A resource by name or by ARN (the `...NameOrArn` members), of `kind` only."""
    if value.startswith("arn:"):
        row = resources.get_by_arn(value)
        return row if row is not None and row.kind == kind else None
    return find(ctx, kind, value)


def require(ctx: RequestContext, kind: str, name: str, noun: str,
            error: Callable[[str], Exception] = ValidationError) -> Resource:
    """The resource, or the error SageMaker gives: `Could not find model "<arn>".`"""
    row = find_named(ctx, kind, name)
    if row is None:
        raise error(f'Could not find {noun} "{name if name.startswith("arn:") else arn(ctx, kind, name)}".')
    return row


def list_query(params: dict[str, Any], default_sort: str = "CreationTime",
               default_order: str = "Descending", status_after_limit: bool = False) -> resources.ListQuery:
    """Translate the List* members every SageMaker list operation shares."""
    return resources.ListQuery(
        name_contains=params.get("NameContains"),
        created_after=params.get("CreationTimeAfter"),
        created_before=params.get("CreationTimeBefore"),
        modified_after=params.get("LastModifiedTimeAfter"),
        modified_before=params.get("LastModifiedTimeBefore"),
        status=params.get("StatusEquals"),
        sort_by=params.get("SortBy") or default_sort,
        descending=(params.get("SortOrder") or default_order) == "Descending",
        limit=params.get("MaxResults") or 100,
        token=params.get("NextToken"),
        status_after_limit=status_after_limit,
    )


def list_page(ctx: RequestContext, kind: str, params: dict[str, Any], result_key: str,
              summary: Callable[[Resource], dict], *, status_after_limit: bool = False,
              **defaults: str) -> dict[str, Any]:
    """One page of summaries under `result_key`, with NextToken when more remain.

    Every List* filters, then takes MaxResults, except where an operation documents otherwise
    (`status_after_limit`: ListTrainingJobs takes MaxResults jobs, then keeps those in StatusEquals).
    """
    return page_of(ctx, kind, list_query(params, status_after_limit=status_after_limit, **defaults), result_key,
                   summary)


def page_of(ctx: RequestContext, kind: str, query: resources.ListQuery, result_key: str,
            summary: Callable[[Resource], dict]) -> dict[str, Any]:
    """`list_page` for a query the caller has refined (a name prefix, a status of its own)."""
    try:
        rows, token = resources.page(kind, ctx.region, query)
    except resources.InvalidToken:
        raise ValidationError("The pagination token is invalid or does not belong to this request.") from None
    out: dict[str, Any] = {result_key: [summary(row) for row in rows]}
    if token:
        out["NextToken"] = token
    return out


def offset_page(items: list[Any], params: dict[str, Any], key: str, default_limit: int = 100) -> dict[str, Any]:
    """A page of a list held in memory or in one document (a resource's tags, a card's versions):
    NextToken is the offset of the next item."""
    token = params.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise ValidationError("The pagination token is invalid or does not belong to this request.") from None
    if start < 0 or start > len(items):
        raise ValidationError("The pagination token is invalid or does not belong to this request.")
    limit = params.get("MaxResults") or default_limit
    out: dict[str, Any] = {key: items[start:start + limit]}
    if start + limit < len(items):
        out["NextToken"] = str(start + limit)
    return out


def create(ctx: RequestContext, kind: str, name: str, document: dict[str, Any], noun: str, *,
           status: str | None = None, tags: list[dict] | None = None,
           duplicate: Callable[[str], Exception] | None = None, resource_arn: str | None = None) -> Resource:
    """Store a new resource; a taken name gets `Cannot create already existing <noun> "<arn>".`
    `resource_arn`: an ARN of another form than `<kind>/<name>` (stored lower-cased, as every ARN)."""
    resource_arn = resource_arn.lower() if resource_arn else arn(ctx, kind, name)
    try:
        row = resources.create(kind, ctx.region, name, resource_arn, document, status=status,
                               tags=tags or [], created=document.get("CreationTime"))
    except resources.AlreadyExists:
        if duplicate is not None:
            raise duplicate(resource_arn) from None
        raise ValidationError(f'Cannot create already existing {noun} "{resource_arn}".') from None
    _published(ctx, row, None, document)
    return row


def delete(ctx: RequestContext, row: Resource) -> None:
    """Remove a resource (its tags go with it); jobs and endpoints publish their deletion."""
    document = row.document if row.kind in STATUS_FIELDS else None
    resources.delete(row)
    _published(ctx, row, document, None)


def _published(ctx: RequestContext, row: Resource, before: dict | None, after: dict | None) -> None:
    """Tell the event bus of a job's or endpoint's creation or deletion (after the commit)."""
    change = change_of(row.kind, row.region, row.name, row.arn, before, after)
    if change is not None:
        ctx.services.events.publish(change)


def job_not_found(name: str) -> ValidationError:
    """What Describe/Stop of a missing processing or transform job answer."""
    return ValidationError(f"Could not find requested job with name {name}")


def require_job(ctx: RequestContext, kind: str, name: str,
                missing: Callable[[str], Exception] = job_not_found) -> Resource:
    """A job by name, or the error its Describe/Stop answers for a missing one (`missing(name)`)."""
    row = find(ctx, kind, name)
    if row is None:
        raise missing(name)
    return row


def stop_job(ctx: RequestContext, kind: str, name: str, noun: str, engine: Any,
             missing: Callable[[str], Exception] = job_not_found) -> None:
    """Stop*Job: only an InProgress job can be stopped; the engine moves it to Stopping."""
    row = require_job(ctx, kind, name, missing)
    if row.status != "InProgress":
        raise ValidationError(f"The request was rejected because the {noun} is in status {row.status}.")
    engine.stop(ctx.region, name)


def job_summary(row: Resource, prefix: str, document_keys: tuple[str, ...]) -> dict[str, Any]:
    """A List*Jobs summary: `<prefix>Name/Arn/Status`, the times, and `document_keys` when set."""
    doc = row.document
    out = {f"{prefix}Name": row.name, f"{prefix}Arn": row.arn, "CreationTime": row.creation_time,
           "LastModifiedTime": row.last_modified_time, f"{prefix}Status": row.status}
    out.update({key: doc[key] for key in document_keys if doc.get(key) is not None})
    return out


def delete_job(ctx: RequestContext, kind: str, name: str, title: str) -> None:
    """Delete*Job: a finished job only (ResourceInUse otherwise); ResourceNotFound if missing."""
    from sagemaker_emulator.jobs.records import TERMINAL
    from sagemaker_emulator.protocol.errors import ResourceInUse, ResourceNotFound

    row = find(ctx, kind, name)
    if row is None:
        raise ResourceNotFound(f"{title} {name} does not exist.")
    if row.status not in TERMINAL:
        raise ResourceInUse(f"{title} {name} is in status {row.status}; only Completed, Failed or Stopped "
                            "jobs can be deleted.")
    delete(ctx, row)
