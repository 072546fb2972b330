"""Queries over `Resource` rows: create, fetch, update, delete, and keyset-paginated listing.

This is where uniqueness and paging live, so every resource type (models, endpoint configs, jobs,
endpoints) gets the same semantics. Errors are storage-level; handlers word them as AWS does.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from peewee import Field, IntegrityError, Tuple

from .database import database_proxy as db
from .models import Relation, Resource, Tag


class AlreadyExists(Exception):
    """A resource of that kind and name (or ARN) is already stored."""


class InvalidToken(Exception):
    """The NextToken does not belong to this listing."""


def now() -> float:
    return round(time.time(), 3)


def create(kind: str, region: str, name: str, arn: str, document: dict[str, Any], *,
           status: str | None = None, tags: Iterable[dict] = (), created: float | None = None) -> Resource:
    """Store a new resource (and its tags) atomically; AlreadyExists if the name or ARN is taken."""
    created = created if created is not None else now()
    try:
        with db.atomic():
            row = Resource.create(kind=kind, region=region, name=name, arn=arn, status=status,
                                  creation_time=created, last_modified_time=created,
                                  data=json.dumps(document))
            put_tags(row, tags)
    except IntegrityError as exc:
        raise AlreadyExists(arn) from exc
    return row


def get(kind: str, region: str, name: str) -> Resource | None:
    return Resource.get_or_none((Resource.kind == kind) & (Resource.region == region) & (Resource.name == name))


def get_by_arn(arn: str) -> Resource | None:
    return Resource.get_or_none(Resource.arn == arn.lower())


def save(row: Resource, document: dict[str, Any], *, status: str | None = None,
         touched: float | None = None) -> None:
    """Replace the stored document (and status), bumping last_modified_time."""
    row.document = document
    if status is not None:
        row.status = status
    row.last_modified_time = touched if touched is not None else now()
    row.save()


def delete(row: Resource) -> None:
    row.delete_instance()  # tags go with it (ON DELETE CASCADE)


def put_tags(row: Resource, tags: Iterable[dict]) -> None:
    for tag in tags:
        (Tag.insert(resource=row, key=tag["Key"], value=tag.get("Value", ""))
         .on_conflict(conflict_target=[Tag.resource, Tag.key], preserve=[Tag.value]).execute())


def tags_of(row: Resource) -> list[dict[str, str]]:
    return [{"Key": t.key, "Value": t.value} for t in row.tags.order_by(Tag.id)]


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    """Keeps each IN (...) well under SQLite's bound-variable limit."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def tags_of_many(ids: Iterable[int]) -> dict[int, list[dict[str, str]]]:
    """`tags_of` for many resources in a few queries: resource id -> its tags (absent: none)."""
    out: dict[int, list[dict[str, str]]] = {}
    for chunk in _chunks(list(ids)):
        rows: Any = (Tag.select(Tag.resource, Tag.key, Tag.value).where(Tag.resource.in_(chunk))
                     .order_by(Tag.id).tuples())
        for resource_id, key, value in rows:
            out.setdefault(resource_id, []).append({"Key": key, "Value": value})
    return out


def tagged(region: str, arn_prefix: str) -> list[tuple[str, list[dict[str, str]]]]:
    """(ARN, tags) of every resource of `region` with at least one tag and an ARN under `arn_prefix`,
    by ARN: the Resource Groups Tagging API's view of our store (one query)."""
    found: dict[str, list[dict[str, str]]] = {}
    query = (Tag.select(Tag.key, Tag.value, Resource.arn).join(Resource)
             .where((Resource.region == region) & Resource.arn.startswith(arn_prefix))
             .order_by(Resource.arn, Tag.id).tuples())
    rows: Iterable[tuple[str, str, str]] = cast(Any, query)
    for key, value, arn in rows:
        found.setdefault(arn, []).append({"Key": key, "Value": value})
    return list(found.items())


def remove_tags(row: Resource, keys: Iterable[str]) -> None:
    Tag.delete().where((Tag.resource == row) & (Tag.key.in_(list(keys)))).execute()


@dataclass
class ListQuery:
    """The filters, order and page every SageMaker List* operation shares."""

    name_contains: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    status: str | None = None
    sort_by: str = "CreationTime"  # Name | CreationTime | Status
    descending: bool = True
    limit: int = 100
    token: str | None = None
    # ListTrainingJobs: take `limit` rows ignoring `status`, then filter them (its documented order)
    status_after_limit: bool = False
    name_prefix: str | None = None  # e.g. "<group>/": the versions of one model package group
    name_has_slash: bool | None = None  # True: only names with a "/" (versioned packages); False: only without
    ids: list[int] | None = None  # only these rows (e.g. the children of one parent)


_SORT_COLUMNS: dict[str, Field] = {"Name": Resource.name, "CreationTime": Resource.creation_time,
                                   "Status": Resource.status}


def page(kind: str, region: str, q: ListQuery) -> tuple[list[Resource], str | None]:
    """One page of `kind` resources; the token is the last row's (sort key, id), so pages stay
    stable while rows are added or removed between calls."""
    column = _SORT_COLUMNS.get(q.sort_by, Resource.creation_time)
    query = Resource.select().where((Resource.kind == kind) & (Resource.region == region))
    if q.name_contains:
        query = query.where(Resource.name.contains(q.name_contains))
    if q.name_prefix:
        query = query.where(Resource.name.startswith(q.name_prefix))
    if q.ids is not None:
        query = query.where(Resource.id.in_(q.ids))
    if q.name_has_slash is not None:
        query = query.where(Resource.name.contains("/") if q.name_has_slash else ~Resource.name.contains("/"))
    if q.created_after is not None:
        query = query.where(Resource.creation_time > q.created_after)
    if q.created_before is not None:
        query = query.where(Resource.creation_time < q.created_before)
    if q.modified_after is not None:
        query = query.where(Resource.last_modified_time > q.modified_after)
    if q.modified_before is not None:
        query = query.where(Resource.last_modified_time < q.modified_before)
    if q.status is not None and not q.status_after_limit:
        query = query.where(Resource.status == q.status)
    if q.token:
        key, last_id = _decode_token(q.token, kind, q.sort_by, q.descending)
        if q.descending:
            query = query.where(Tuple(column, Resource.id) < Tuple(key, last_id))
        else:
            query = query.where(Tuple(column, Resource.id) > Tuple(key, last_id))
    order = (column.desc(), Resource.id.desc()) if q.descending else (column.asc(), Resource.id.asc())
    rows = list(query.order_by(*order).limit(q.limit + 1))
    next_token = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        last = rows[-1]
        key = {"Name": last.name, "CreationTime": last.creation_time, "Status": last.status}[
            q.sort_by if q.sort_by in _SORT_COLUMNS else "CreationTime"]
        next_token = _encode_token(kind, q.sort_by, q.descending, key, last.id)
    if q.status is not None and q.status_after_limit:
        rows = [row for row in rows if row.status == q.status]
    return rows, next_token


def _encode_token(kind: str, sort_by: str, descending: bool, key: Any, last_id: int) -> str:
    raw = json.dumps([kind, sort_by, descending, key, last_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str, kind: str, sort_by: str, descending: bool) -> tuple[Any, int]:
    try:
        t_kind, t_sort, t_desc, key, last_id = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidToken(token) from exc
    if (t_kind, t_sort, t_desc) != (kind, sort_by, descending) or not isinstance(last_id, int):
        raise InvalidToken(token)
    return key, last_id


def update(kind: str, region: str, name: str, mutate: Any) -> Resource | None:
    """Read-modify-write one resource's document under an IMMEDIATE transaction.

    `mutate(document)` edits the dict in place and may return a new status. Job threads and API
    handlers (Stop*, Update*) both write job rows; taking the write lock before reading makes
    their updates serialise instead of overwriting each other.
    """
    with db.atomic("IMMEDIATE"):
        row = get(kind, region, name)
        if row is None:
            return None
        document = row.document
        status = mutate(document)
        save(row, document, status=status)
        return row


def all_with_status(kind: str, statuses: Iterable[str]) -> list[Resource]:
    """Every resource of `kind` (any region) in one of `statuses`: what a restart must re-attach."""
    return list(Resource.select().where((Resource.kind == kind) & (Resource.status.in_(list(statuses)))))


def all_of(kind: str, region: str | None = None) -> list[Resource]:
    """Every resource of `kind` (of one region, or of all), oldest first: the small kinds listed whole."""
    query = Resource.select().where(Resource.kind == kind)
    if region is not None:
        query = query.where(Resource.region == region)
    return list(query.order_by(Resource.creation_time, Resource.id))


def statuses(arns: Iterable[str]) -> dict[str, str | None]:
    """The stored status of each of `arns` that exists, keyed as given (ARNs are matched lower-cased):
    what a subscriber of lifecycle events re-reads after a restart. One indexed query per 500 ARNs."""
    wanted: dict[str, list[str]] = {}
    for arn in arns:
        wanted.setdefault(arn.lower(), []).append(arn)
    keys = list(wanted)
    out: dict[str, str | None] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows: Iterable[tuple[str, str | None]] = cast(Any, (
            Resource.select(Resource.arn, Resource.status).where(Resource.arn.in_(chunk)).tuples()))
        for arn, status in rows:
            for given in wanted[arn]:
                out[given] = status
    return out


# -- relations (schema v2) ---------------------------------------------------------------------------
def relate(parent: Resource, child: Resource, kind: str) -> None:
    """Record that `child` belongs to `parent` as `kind` (e.g. "tuning-job/training-job"); idempotent."""
    Relation.insert(parent=parent, child=child, kind=kind).on_conflict_ignore().execute()


def unrelate(parent: Resource, child: Resource, kind: str) -> None:
    Relation.delete().where((Relation.parent == parent) & (Relation.child == child) & (Relation.kind == kind)).execute()


def children(parent: Resource, kind: str) -> list[Resource]:
    """The `kind` children of `parent`, oldest first: one range of the (parent, kind, child) index."""
    rows: Iterable[Resource] = children_query(parent, kind)
    return list(rows)


def children_query(parent: Resource, kind: str) -> Any:
    """The query behind `children` (also what tests EXPLAIN to see the index is used)."""
    return (Resource.select().join(Relation, on=(Relation.child == Resource.id))
            .where((Relation.parent == parent) & (Relation.kind == kind)).order_by(Relation.child))


def related_many(ids: Iterable[int], kind: str, *, to_parents: bool) -> dict[int, list[Resource]]:
    """For many resources at once, their `kind` parents (to_parents) or children: id -> rows, oldest first."""
    mine, other = (Relation.child, Relation.parent) if to_parents else (Relation.parent, Relation.child)
    out: dict[int, list[Resource]] = {}
    for chunk in _chunks(list(ids)):
        linked: Iterable[Resource] = (
            Resource.select(Resource, mine.alias("anchor")).join(Relation, on=(other == Resource.id))
            .where((mine.in_(chunk)) & (Relation.kind == kind)).order_by(other).objects())
        for row in linked:
            out.setdefault(getattr(row, "anchor"), []).append(row)  # noqa: B009 (a selected alias, not a field)
    return out


def parent_of(child: Resource, kind: str) -> Resource | None:
    """The parent `child` belongs to as `kind`, if any (the (child, kind) index)."""
    return (Resource.select().join(Relation, on=(Relation.parent == Resource.id))
            .where((Relation.child == child) & (Relation.kind == kind)).first())


# -- timed status transitions (Feature Store's Creating -> Created, Deleting -> gone) -----------------
def advance_status(kind: str, region: str, status: str, new_status: str, *, created_before: float) -> int:
    """Every `kind` row in `status` created before `created_before` moves to `new_status` (one UPDATE)."""
    return (Resource.update(status=new_status)
            .where((Resource.kind == kind) & (Resource.region == region) & (Resource.status == status)
                   & (Resource.creation_time <= created_before)).execute())


def purge_status(kind: str, region: str, status: str, *, modified_before: float) -> list[str]:
    """Delete the `kind` rows in `status` last modified before `modified_before`; returns their ARNs."""
    where = ((Resource.kind == kind) & (Resource.region == region) & (Resource.status == status)
             & (Resource.last_modified_time <= modified_before))
    arns = [row.arn for row in Resource.select(Resource.arn).where(where)]
    if arns:
        Resource.delete().where(where).execute()
    return arns
