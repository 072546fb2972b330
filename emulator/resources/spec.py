"""One declaration per long-tail resource, and what botocore's model tells about it.

A `Spec` says only what the model cannot: the ARN's resource type, which members identify the
resource (its path: `DomainId/UserProfileName`), which are generated (`DomainId = d-...`), its
lifecycle (which status each operation moves it through), its parents, and a few rules. Everything
else (the operations, the ARN and status members, the time members, the List result key and filters,
the errors each operation may answer) is read from the model by `Model`, so a declaration stays a
few lines and a new member AWS adds to Describe needs nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from botocore.model import OperationModel, Shape

from sagemaker_emulator.protocol.service import service_model

# Lifecycles: operation verb -> (status while it happens, status after it; None = the resource is gone).
# Names are matched to each status enum ignoring case and underscores (CompilationJob's INPROGRESS).
Lifecycle = dict[str, tuple[str | None, str | None]]
SERVICE: Lifecycle = {"Create": ("Pending", "InService"), "Update": ("Updating", "InService"),
                      "Delete": ("Deleting", None), "Stop": ("Stopping", "Stopped"), "Start": ("Pending", "InService")}
CREATING: Lifecycle = {"Create": ("Creating", "InService"), "Update": ("Updating", "InService"),
                       "Delete": ("Deleting", None)}
CREATED: Lifecycle = {"Create": ("Creating", "Created"), "Update": ("Updating", "Updated"),
                      "Delete": ("Deleting", None)}
JOB: Lifecycle = {"Create": ("InProgress", "Completed"), "Stop": ("Stopping", "Stopped"), "Delete": (None, None)}
STATIC: Lifecycle = {}

VERBS = ("Create", "Describe", "List", "Update", "Delete", "Stop", "Start")
CREATED_MEMBERS = ("CreationTime", "CreatedTime", "CreateTime", "CreationTimestamp", "CreatedAt", "CreateDate",
                   "RegistrationTime")
MODIFIED_MEMBERS = ("LastModifiedTime", "LastModifiedTimestamp", "LastUpdatedTime", "LastModifiedAt",
                    "LastUpdateTime", "LastUpdatedDate")


def _norm(value: str) -> str:
    return value.replace("_", "").lower()


def plural_list_op(noun: str, operations: set[str]) -> str | None:
    for name in (f"List{noun}s", f"List{noun}es", f"List{noun[:-1]}ies", f"List{noun}"):
        if name in operations:
            return name
    return None


@dataclass(frozen=True)
class Spec:
    """A long-tail resource. `noun` names its operations (Create<noun>, Describe<noun>, List<noun>s, ...).

    path: the members whose values identify it, in ARN order (`a|b`: either member); default: the
    required members of Describe's input. generated: members the emulator makes up at create
    (value prefix -> `<prefix><12 random>`). counter: a path member numbered 1, 2, ... within its
    parent (ImageVersion's Version); when a lookup omits it, the latest is meant. version: a member
    that Update increments, keeping the earlier documents (ModelCardVersion). parents: nouns of the
    specs whose resources must exist first (`A|B`: either); a parent with children cannot be deleted.
    title: display-name member searched by NameContains when the path is a generated id.
    delete_when/update_when/stop_when: the statuses those operations require (None: any not in flux).
    defaults: extra Describe members computed at create (ctx, document) -> dict (members not set already).
    records_only: what AWS runs that nothing runs here (the README's table says so).
    """

    noun: str
    kind: str
    lifecycle: Lifecycle = field(default_factory=dict)
    path: tuple[str, ...] = ()
    generated: dict[str, str] = field(default_factory=dict)
    counter: str | None = None
    version: str | None = None
    parents: tuple[str, ...] = ()
    title: str | None = None
    ops: dict[str, str] = field(default_factory=dict)  # verb -> operation name where it is not <Verb><noun>
    delete_when: tuple[str, ...] | None = None
    update_when: tuple[str, ...] | None = None
    stop_when: tuple[str, ...] | None = None
    start_when: tuple[str, ...] | None = None
    defaults: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    records_only: str = ""
    status_member: str | None = None
    renames: dict[str, str] = field(default_factory=dict)  # request member -> Describe member
    wrapped: str | None = None  # Describe answers {<wrapped>: document} (Workteam, Workforce)
    cascade: bool = False  # Delete removes the children too (DeleteImage removes its versions)
    # the ARN's resource part where it is not <kind>/<path>: {Member} (lower-cased unless an enum),
    # {_id} 12 random lower-case characters, {_ID} upper-case (`cluster/{_id}`, `partner-app/app-{_ID}`)
    arn: str | None = None
    # AWS's own not-found message where it is not `<Noun> "<name>" does not exist.` (NotebookInstance's
    # Describe/Stop/Delete answer ValidationException "RecordNotFound")
    not_found_message: str | None = None
    # a lookup member that names a child by one of its aliases (ImageVersion's Alias): Create takes
    # them as `<alias>es`, Update as `<alias>esToAdd` / `<alias>esToDelete`; unique within the parent
    alias: str | None = None
    # members recomputed after an Update has written the request's (the same form as `defaults`)
    on_update: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None


class Model:
    """What botocore's SageMaker model says about one Spec's operations and shapes."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.service = service_model("sagemaker")

    @cached_property
    def operations(self) -> dict[str, str]:
        """verb -> operation name, for the verbs the model has for this noun."""
        names = set(self.service.operation_names)
        found: dict[str, str] = {}
        for verb in VERBS:
            name = self.spec.ops.get(verb) or (plural_list_op(self.spec.noun, names) if verb == "List"
                                               else f"{verb}{self.spec.noun}")
            if name and name in names:
                found[verb] = name
        return found

    def op(self, verb: str) -> OperationModel:
        return self.service.operation_model(self.operations[verb])

    @cached_property
    def describe_members(self) -> dict[str, Shape]:
        out = self.op("Describe").output_shape if "Describe" in self.operations else None
        if out is not None and self.spec.wrapped:
            out = out.members[self.spec.wrapped]
        return dict(out.members) if out is not None else {}

    @cached_property
    def path(self) -> tuple[str, ...]:
        if self.spec.path:
            return self.spec.path
        return tuple(self.op("Describe").input_shape.required_members)

    @cached_property
    def arn_member(self) -> str | None:
        """The member that carries the resource's ARN in Describe (else in Create's answer)."""
        names = (f"{self.spec.noun}Arn", "Arn")
        found = next((n for n in names if n in self.describe_members), None)
        return found or self.create_arn_member

    @cached_property
    def create_arn_member(self) -> str | None:
        shape = self.op("Create").output_shape if "Create" in self.operations else None
        members = list(shape.members) if shape is not None else []
        return next((n for n in (f"{self.spec.noun}Arn", "Arn", *members) if n in members and n.endswith("Arn")), None)

    @cached_property
    def status_member(self) -> str | None:
        if self.spec.status_member:
            return self.spec.status_member
        for name in (f"{self.spec.noun}Status", "Status"):
            shape = self.describe_members.get(name)
            if shape is not None and getattr(shape, "enum", None):
                return name
        return None

    def status(self, wanted: str | None) -> str | None:
        """The status enum's spelling of `wanted` (None when the enum has no such value)."""
        if wanted is None or self.status_member is None:
            return None
        for value in self.describe_members[self.status_member].enum:
            if _norm(value) == _norm(wanted):
                return value
        return None

    def step(self, verb: str) -> tuple[str | None, str | None, bool]:
        """(status during, status after, gone after) of `verb` in this resource's lifecycle."""
        during, after = self.spec.lifecycle.get(verb, (None, None))
        gone = verb == "Delete"
        return self.status(during), self.status(after), gone

    def time_member(self, candidates: tuple[str, ...]) -> str | None:
        return next((name for name in candidates if name in self.describe_members), None)

    @cached_property
    def end_members(self) -> list[str]:
        """Timestamp members a finished job sets (CompilationEndTime, EndTime, ...)."""
        return [name for name, shape in self.describe_members.items()
                if shape.type_name == "timestamp" and name.endswith("EndTime")]

    def declares(self, verb: str, code: str) -> bool:
        return verb in self.operations and any(e.name == code for e in self.op(verb).error_shapes)

    def list_default(self, member: str) -> str | None:
        """The default the List operation's documentation states for `member` (SortBy, SortOrder):
        the first of its enum values after the word "default" ("The default is Ascending.")."""
        shape = self.op("List").input_shape.members.get(member) if "List" in self.operations else None
        if shape is None or not getattr(shape, "enum", None):
            return None
        text = re.sub(r"<[^>]+>", "", shape.documentation or "")
        start = text.lower().find("default")
        if start < 0:
            return None
        rest = _norm(text[start:])
        found = [(rest.find(_norm(value)), value) for value in shape.enum if _norm(value) in rest]
        return min(found)[1] if found else None

    @cached_property
    def list_key(self) -> tuple[str, Shape] | None:
        if "List" not in self.operations:
            return None
        for name, shape in self.op("List").output_shape.members.items():
            if shape.type_name == "list":
                return name, shape.member
        return None
