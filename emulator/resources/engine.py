"""The operations every declared resource gets: Create, Describe, List, Update, Delete, Stop, Start.

Each is one function over (spec, model, ctx, params). Storage is the shared `resource` table
(handlers/common.py: ARNs, unique names, tags, keyset pages) and `relation` for parents; nothing
here is specific to one resource. Statuses move through the spec's lifecycle: an operation writes
its "during" status, and the "after" status is due `settle_seconds` later (config; default 0, so a
Describe right after a Create already shows InService, as a waiter would see soon on AWS). Due
transitions are applied when the resource is next read, so no thread per resource is needed.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from sagemaker_emulator.handlers import common
from sagemaker_emulator.protocol.errors import (
    AwsError,
    ConflictError,
    ResourceInUse,
    ResourceNotFound,
    ValidationError,
)
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from .spec import CREATED_MEMBERS, MODIFIED_MEMBERS, Model

NEXT = "_Next"  # [status, due time, gone]: a transition not applied yet
ALIASES = "_Aliases"  # a child's aliases (Spec.alias)
VERSIONS = "_Versions"  # earlier documents of a versioned resource
TERMINAL = {"completed", "failed", "stopped", "deleted"}
_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


# -- errors as each operation's model declares them -------------------------------------------------
def not_found(model: Model, verb: str, message: str) -> AwsError:
    return ResourceNotFound(message) if model.declares(verb, "ResourceNotFound") else ValidationError(message)


def in_use(model: Model, verb: str, message: str) -> AwsError:
    if model.declares(verb, "ResourceInUse"):
        return ResourceInUse(message)
    if model.declares(verb, "ConflictException"):
        return ConflictError(message)
    return ValidationError(message)


# -- names, lookups, settling -----------------------------------------------------------------------
def _member_value(params: dict[str, Any], member: str) -> tuple[str, Any] | None:
    for name in member.split("|"):
        if params.get(name) not in (None, ""):
            return name, params[name]
    return None


def path_of(model: Model, params: dict[str, Any]) -> str | None:
    """The stored name: the path members' values joined by "/" (None when one is missing)."""
    values = []
    for member in model.path:
        found = _member_value(params, member)
        if found is None:
            return None
        values.append(str(found[1]))
    return "/".join(values)


def settle(model: Model, row: Resource) -> Resource | None:
    """Apply a due transition; None when it removed the resource."""
    doc = row.document
    pending = doc.get(NEXT)
    if not pending or pending[1] > resources.now():
        return row
    status, _due, gone = pending
    if gone:
        resources.delete(row)
        return None
    doc.pop(NEXT, None)
    _set_status(model, doc, status)
    resources.save(row, doc, status=status)
    return row


def _set_status(model: Model, doc: dict[str, Any], status: str | None) -> None:
    if status is None or model.status_member is None:
        return
    doc[model.status_member] = status
    if status.lower() in TERMINAL:
        for member in model.end_members:
            doc.setdefault(member, resources.now())


def _latest_child(model: Model, ctx: RequestContext, params: dict[str, Any]) -> Resource | None:
    parent = _parent_row(model, ctx, params)
    if parent is None:
        return None
    rows = [r for r in resources.children(parent, f"{parent.kind}/{model.spec.kind}")]
    return rows[-1] if rows else None


def siblings(model: Model, ctx: RequestContext, params: dict[str, Any]) -> list[Resource]:
    """The children of the parent `params` names (every version of an image), oldest first."""
    parent = _parent_row(model, ctx, params)
    return list(resources.children(parent, f"{parent.kind}/{model.spec.kind}")) if parent is not None else []


def _by_alias(model: Model, ctx: RequestContext, params: dict[str, Any], alias: str) -> Resource | None:
    """The child with `alias` (and the Version asked for, if one is)."""
    counter = model.spec.counter
    for row in siblings(model, ctx, params):
        if alias in row.document.get(ALIASES, []) and (
                counter is None or params.get(counter) in (None, row.document.get(counter))):
            return row
    return None


def _claim_aliases(model: Model, ctx: RequestContext, params: dict[str, Any], aliases: list[str],
                   verb: str, owner: str | None = None) -> None:
    """Refuse aliases another child of the same parent has already."""
    for row in siblings(model, ctx, params):
        taken = set(row.document.get(ALIASES, [])) & set(aliases)
        if taken and row.name != owner:
            raise in_use(model, verb, f"Alias {sorted(taken)[0]} is already used by {_title(model)} {row.name}.")


def lookup(model: Model, ctx: RequestContext, verb: str, params: dict[str, Any]) -> Resource | None:
    """The resource an operation's request names, by its path, by an ARN member, by an alias, or the
    latest version."""
    name = path_of(model, params)
    row = None
    alias = params.get(model.spec.alias) if model.spec.alias else None
    if alias:
        row = _by_alias(model, ctx, params, alias)
    elif name is not None and not name.startswith("arn:"):
        row = resources.get(model.spec.kind, ctx.region, name)
    elif name is not None:
        row = resources.get_by_arn(name)
    elif model.spec.counter and all(_member_value(params, m) for m in model.path if m != model.spec.counter):
        row = _latest_child(model, ctx, params)
    else:
        for member, value in params.items():
            if member.endswith(("Arn", "Identifier", "NameOrArn")) and isinstance(value, str) \
                    and value.startswith("arn:"):
                row = resources.get_by_arn(value)
                break
    if row is None or row.kind != model.spec.kind or row.region != ctx.region:
        return None
    return settle(model, row)


def require(model: Model, ctx: RequestContext, verb: str, params: dict[str, Any]) -> Resource:
    row = lookup(model, ctx, verb, params)
    if row is None:
        alias = params.get(model.spec.alias) if model.spec.alias else None
        shown = path_of(model, params) or next((v for k, v in params.items() if k.endswith("Arn")), "")
        if alias:
            shown = f"{shown or path_of(model, {**params, model.spec.counter or '': alias}) or alias} (alias)"
        raise not_found(model, verb, model.spec.not_found_message or f'{_title(model)} "{shown}" does not exist.')
    return row


def _title(model: Model) -> str:
    noun = model.spec.noun
    return "".join(" " + c if c.isupper() and i and not noun[i - 1].isupper() else c
                   for i, c in enumerate(noun)).strip()


# -- parents -----------------------------------------------------------------------------------------
def _parent_row(model: Model, ctx: RequestContext, params: dict[str, Any]) -> Resource | None:
    from .catalog import MODELS

    for alternatives in model.spec.parents:
        for noun in alternatives.split("|"):
            parent = MODELS[noun]
            name = path_of(parent, params)
            if name is not None:
                return resources.get(parent.spec.kind, ctx.region, name)
    return None


def _check_parents(model: Model, ctx: RequestContext, params: dict[str, Any]) -> list[Resource]:
    from .catalog import MODELS

    found = []
    for alternatives in model.spec.parents:
        row = None
        for noun in alternatives.split("|"):
            parent = MODELS[noun]
            name = path_of(parent, params)
            if name is not None:
                row = resources.get(parent.spec.kind, ctx.region, name)
                if row is not None and settle(parent, row) is not None:
                    break
                raise not_found(model, "Create", f'{_title(parent)} "{name}" does not exist.')
        if row is not None:
            found.append(row)
    return found


# -- the operations ----------------------------------------------------------------------------------
def _output(model: Model, verb: str, doc: dict[str, Any]) -> dict[str, Any]:
    shape = model.op(verb).output_shape
    if shape is None:
        return {}
    wrapped = model.spec.wrapped
    if wrapped is not None and wrapped in shape.members:
        return {wrapped: doc}
    return {m: doc[m] for m in shape.members if m in doc}


def _transition(model: Model, ctx: RequestContext, verb: str, doc: dict[str, Any]) -> tuple[str | None, bool]:
    """Write `verb`'s status into `doc`; returns the status to store now and whether the row goes now."""
    during, after, gone = model.step(verb)
    delay = ctx.services.config.settle_seconds if ctx.services is not None else 0
    if delay > 0 and (during is not None or gone):
        doc[NEXT] = [after, resources.now() + delay, gone]
        _set_status(model, doc, during)
        return during or doc.get(model.status_member or ""), False
    doc.pop(NEXT, None)
    final = after if after is not None else (None if gone else during)
    _set_status(model, doc, final)
    return final or doc.get(model.status_member or ""), gone


def create(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _output(model, "Create", store(model, ctx, params))


def store(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Validate parents and uniqueness, store the new resource; its Describe document."""
    spec = model.spec
    params = dict(params)
    for member, prefix in spec.generated.items():
        params.setdefault(member, new_id(prefix))
    parents = _check_parents(model, ctx, params)
    if spec.counter:
        params[spec.counter] = _next_number(parents[0] if parents else None, spec.kind)
    name = path_of(model, params)
    if name is None:
        raise ValidationError(f"{' and '.join(model.path)} must be given.")
    now = resources.now()
    doc = {k: v for k, v in params.items() if k in model.describe_members and k != "Tags"}
    doc.update({new: params[old] for old, new in spec.renames.items() if old in params})
    if spec.defaults is not None:  # derived members: they replace what the request said
        doc.update(spec.defaults(ctx, {**params, **doc}))
    for member, shape in model.describe_members.items():
        if member in ("CreatedBy", "LastModifiedBy") and shape.type_name == "structure":
            doc.setdefault(member, {})  # AWS's UserContext of a caller without a Studio profile
        elif shape.type_name == "timestamp" and member.endswith("StartTime") and _runs(model):
            doc.setdefault(member, now)
    resource_arn = _arn(model, ctx, name, {**params, **doc})
    for arn_member in (model.arn_member, model.create_arn_member):
        if arn_member is not None:
            doc[arn_member] = resource_arn
    for candidates, stamp in ((CREATED_MEMBERS, now), (MODIFIED_MEMBERS, now)):
        time_member = model.time_member(candidates)
        if time_member:
            doc[time_member] = stamp
    if spec.version:
        doc[spec.version] = 1
    if spec.alias:
        aliases = list(dict.fromkeys(params.get(f"{spec.alias}es") or []))
        _claim_aliases(model, ctx, params, aliases, "Create")
        doc[ALIASES] = aliases
    status, _gone = _transition(model, ctx, "Create", doc)

    def duplicate(arn: str) -> AwsError:
        return in_use(model, "Create", f'Cannot create a duplicate {_title(model)} "{arn}": it already exists.')

    row = common.create(ctx, spec.kind, name, doc, _title(model), status=status, tags=params.get("Tags"),
                        duplicate=duplicate, resource_arn=resource_arn)
    for parent in parents:
        resources.relate(parent, row, f"{parent.kind}/{spec.kind}")
    return doc


def _runs(model: Model) -> bool:
    """A job-like resource: it starts running at create (so its *StartTime is the creation time)."""
    during = model.spec.lifecycle.get("Create", (None, None))[0]
    return during is not None and during.lower() == "inprogress"


def _arn(model: Model, ctx: RequestContext, name: str, values: dict[str, Any]) -> str:
    template = model.spec.arn
    if template is None:
        return common.arn(ctx, model.spec.kind, name)
    shapes = model.describe_members
    fields = {k: (str(v) if getattr(shapes.get(k), "enum", None) else str(v).lower()) for k, v in values.items()}
    fields.update(_id=new_id(""), _ID=new_id("").upper())
    return f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:{template.format_map(fields)}"


def _next_number(parent: Resource | None, kind: str) -> int:
    if parent is None:
        return 1
    counter = f"_Next{kind}"

    def bump(doc: dict[str, Any]) -> None:
        doc[counter] = doc.get(counter, 0) + 1

    row = resources.update(parent.kind, parent.region, parent.name, bump)
    return row.document[counter] if row is not None else 1


def describe(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = require(model, ctx, "Describe", params)
    doc = row.document
    version = model.spec.version or ""
    wanted = params.get(version)
    if wanted is not None and wanted != doc.get(version):
        earlier = [d for d in doc.get(VERSIONS, []) if d.get(version) == wanted]
        if not earlier:
            raise not_found(model, "Describe", f'{_title(model)} "{row.name}" has no version {wanted}.')
        doc = earlier[0]
    return {model.spec.wrapped: doc} if model.spec.wrapped else doc


def _guard(model: Model, verb: str, row: Resource, allowed: tuple[str, ...] | None) -> None:
    """Refuse an operation while the resource is in flux or not in one of `allowed`. A job still InProgress
    (its Create not settled) can be stopped: that is what Stop<Job> is for."""
    doc = row.document
    status = row.status
    running = verb == "Stop" and status is not None and status == model.step("Create")[0] == model.status("InProgress")
    busy = (NEXT in doc and not running) or (status is not None and status.lower() in ("deleting", "stopping"))
    wanted = tuple(model.status(s) for s in allowed) if allowed is not None else None
    if busy or (wanted is not None and status not in wanted):
        raise in_use(model, verb, f'{_title(model)} "{row.name}" is in status {status}; '
                     f"{model.operations[verb]} needs {' or '.join(allowed or ('a settled status',))}.")


def update(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    spec = model.spec
    row = require(model, ctx, "Update", params)
    _guard(model, "Update", row, spec.update_when)
    path = {m for alternatives in model.path for m in alternatives.split("|")} | {spec.alias or ""}
    added = list(dict.fromkeys(params.get(f"{spec.alias}esToAdd") or [])) if spec.alias else []
    removed = set(params.get(f"{spec.alias}esToDelete") or []) if spec.alias else set()
    if added:
        _claim_aliases(model, ctx, {**row.document, **params}, added, "Update", owner=row.name)

    def mutate(doc: dict[str, Any]) -> str | None:
        if spec.alias and (added or removed):
            doc[ALIASES] = [a for a in doc.get(ALIASES, []) if a not in removed] + \
                [a for a in added if a not in doc.get(ALIASES, []) and a not in removed]
        if spec.version:
            earlier = {k: v for k, v in doc.items() if k not in (VERSIONS, NEXT)}
            doc.setdefault(VERSIONS, []).append(earlier)
            doc[spec.version] = doc.get(spec.version, 1) + 1
        for member, value in params.items():
            if member in path:
                continue
            if member in spec.renames:
                doc[spec.renames[member]] = value
            elif member in model.describe_members:
                doc[member] = value
            elif member.endswith("ForUpdate") and member[:-9] in model.describe_members and isinstance(value, dict):
                doc[member[:-9]] = {**(doc.get(member[:-9]) or {}), **value}
            elif member.startswith(("Disassociate", "Remove", "Delete")) and value is True:
                target = member.removeprefix("Disassociate").removeprefix("Remove").removeprefix("Delete")
                for key in [k for k in doc if target.rstrip("s") in k]:
                    doc.pop(key)
        if spec.on_update is not None:
            doc.update(spec.on_update(ctx, doc))
        stamp = model.time_member(MODIFIED_MEMBERS)
        if stamp:
            doc[stamp] = resources.now()
        status, _gone = _transition(model, ctx, "Update", doc)
        return status

    updated = resources.update(row.kind, row.region, row.name, mutate)
    return _output(model, "Update", updated.document if updated is not None else row.document)


def delete(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    spec = model.spec
    row = require(model, ctx, "Delete", params)
    _guard(model, "Delete", row, spec.delete_when)
    from .catalog import MODELS

    for child in MODELS.values():
        if any(spec.noun in alternatives.split("|") for alternatives in child.spec.parents):
            kids = resources.children(row, f"{spec.kind}/{child.spec.kind}")
            if kids and spec.cascade:
                for kid in kids:
                    common.delete(ctx, kid)
            elif kids:
                raise in_use(model, "Delete", f'{_title(model)} "{row.name}" still has {_title(child)}s; '
                             "delete them first.")
    doc = row.document
    out = _output(model, "Delete", doc)
    status, gone = _transition(model, ctx, "Delete", doc)
    if gone:
        common.delete(ctx, row)
    else:
        resources.save(row, doc, status=status)
    return out


def stop(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _move(model, ctx, "Stop", params, model.spec.stop_when)


def start(model: Model, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    during, after, _ = model.step("Stop")
    return _move(model, ctx, "Start", params, model.spec.start_when or ((after,) if after else None))


def _move(model: Model, ctx: RequestContext, verb: str, params: dict[str, Any],
          allowed: tuple[str, ...] | None) -> dict[str, Any]:
    row = require(model, ctx, verb, params)
    status = (row.status or "").lower()
    if allowed is None and verb == "Stop" and (status in TERMINAL or status == "stopping"):
        raise ValidationError(f'{_title(model)} "{row.name}" is in status {row.status} and cannot be stopped.')
    _guard(model, verb, row, allowed)

    def mutate(doc: dict[str, Any]) -> str | None:
        status, _gone = _transition(model, ctx, verb, doc)
        return status

    updated = resources.update(row.kind, row.region, row.name, mutate)
    return _output(model, verb, updated.document if updated is not None else row.document)
