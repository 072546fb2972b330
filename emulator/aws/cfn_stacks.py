"""Stack-level CloudFormation behaviour for our SageMaker resources, wrapped around moto's Stack.

moto's stacks create synchronously and let a failing resource's exception escape CreateStack; they
delete in no particular order and update only resources whose template text changed. CloudFormation
instead (and so here, for `AWS::SageMaker::*`):
- a failed create marks the resource CREATE_FAILED with the reason, rolls the stack back (deleting
  what was made, newest first) and ends ROLLBACK_COMPLETE; CreateStack itself succeeds;
- a delete removes resources in reverse dependency order (an Endpoint before its EndpointConfig
  before its Model);
- an update re-evaluates every resource that refers to one that changed (a replaced EndpointConfig
  gets a new name, so the Endpoint that names it is updated), creates replacements before it deletes
  what they replace, and a failure restores the previous template and resources
  (UPDATE_ROLLBACK_COMPLETE);
- CreateStack/UpdateStack/DeleteStack answer at once and the work runs in the stack's worker thread
  (cfn_async.py), with an event per resource as it starts and ends.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from sagemaker_emulator.aws import cfn_async, moto_state
from sagemaker_emulator.aws.cfn_sagemaker import ProvisionFailed, SageMakerResource
from sagemaker_emulator.aws.cfn_types import TYPES

log = logging.getLogger(__name__)

_local = threading.local()  # the stack operation in progress on this thread (moto runs it in-request)


class _Operation:
    def __init__(self) -> None:
        self.replaced: list[SageMakerResource] = []   # old resources to delete once the update succeeds
        self.created: list[SageMakerResource] = []    # replacements made by this update (undone on failure)
        self.failure: ProvisionFailed | None = None   # moto retries a failed update; we do not


def _refs(node: Any) -> set[str]:
    """Logical ids a template node refers to (Ref, Fn::GetAtt, Fn::Sub's ${X} and ${X.Attr})."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str):
                    found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                found |= _refs(value[1] if isinstance(value, list) and len(value) > 1 else None)
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def dependencies(resources: dict[str, Any]) -> dict[str, set[str]]:
    """logical id -> the logical ids (of this template) it needs first."""
    deps: dict[str, set[str]] = {}
    for logical, body in resources.items():
        depends = body.get("DependsOn") or []
        wanted = _refs(body.get("Properties")) | set([depends] if isinstance(depends, str) else depends)
        deps[logical] = {d for d in wanted if d in resources and d != logical}
    return deps


def dependency_order(resources: dict[str, Any], among: Iterable[str] | None = None) -> list[str]:
    """`among` (default: all) ordered so that each comes after what it needs; cycles keep template order."""
    deps = dependencies(resources)
    wanted = list(resources) if among is None else [n for n in resources if n in set(among)]
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: frozenset[str]) -> None:
        if name in seen or name in path:
            return
        for dep in sorted(deps.get(name, ())):
            visit(dep, path | {name})
        seen.add(name)
        order.append(name)

    for name in wanted:
        visit(name, frozenset())
    return [n for n in order if n in set(wanted)]


def _ours(resource_map: Any) -> dict[str, SageMakerResource]:
    return {k: v for k, v in resource_map._parsed_resources.items() if isinstance(v, SageMakerResource)}


def _event(stack: Any, logical_id: str, physical_id: str, resource_type: str, status: str,
           reason: str | None = None) -> None:
    from moto.cloudformation.models import Event

    stack.events.append(Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                              physical_resource_id=physical_id, resource_type=resource_type,
                              resource_status=status, resource_status_reason=reason, resource_properties=None))


def _set_status(stack: Any, status: str, reason: str | None = None) -> None:
    stack.status = status
    stack.stack_status_reason = reason
    stack._add_stack_event(status, resource_status_reason=reason)


def _delete_ours(stack: Any, resource_map: Any) -> None:
    """Delete this stack's SageMaker resources, dependents first; moto deletes the rest after."""
    template = resource_map._resource_json_map
    ours = _ours(resource_map)
    for logical in reversed(dependency_order(template, ours)):
        if template[logical].get("DeletionPolicy") == "Retain":
            resource_map._parsed_resources.pop(logical, None)
            continue
        resource = ours[logical]
        resource.delete("", resource.region)
        resource_map._parsed_resources.pop(logical, None)
        _event(stack, logical, resource.physical_resource_id, resource.cf_resource_type, "DELETE_COMPLETE")


def _forget_resources(stack: Any) -> None:
    """A rolled-back or deleted stack has no resources and outputs left: moto's maps are lazy, so reading
    them (DescribeStacks' outputs, ListStackResources) would otherwise create the resources again."""
    from moto.cloudformation.parsing import OutputMap

    stack.resource_map._resource_json_map = {}
    stack.resource_map._parsed_resources = {k: v for k, v in stack.resource_map._parsed_resources.items()
                                            if not hasattr(v, "logical_resource_id")}
    stack.output_map = OutputMap(stack.resource_map, {}, stack.stack_id)


def _failure_of(stack: Any, exc: Exception) -> ProvisionFailed:
    """A failure of moto's own (a resource of another service, a template moto cannot resolve) as a
    resource failure: the first resource, in dependency order, the stack has not made yet."""
    if isinstance(exc, ProvisionFailed):
        return exc
    log.warning("stack %s: %s: %s", stack.name, type(exc).__name__, exc)
    rmap = stack.resource_map
    template = rmap._resource_json_map or {}
    logical = next((k for k in dependency_order(template) if k not in rmap._parsed_resources), stack.name)
    kind = (template.get(logical) or {}).get("Type", "AWS::CloudFormation::Stack")
    return ProvisionFailed(logical, kind, str(exc) or type(exc).__name__)


def _rollback_create(stack: Any, failure: ProvisionFailed | None, reason: str | None = None) -> None:
    """ROLLBACK_IN_PROGRESS -> (delete what was made, newest first) -> ROLLBACK_COMPLETE or ROLLBACK_FAILED."""
    if failure is not None:
        _event(stack, failure.logical_id, failure.physical_id, failure.resource_type, "CREATE_FAILED",
               failure.reason)
        reason = f"The following resource(s) failed to create: [{failure.logical_id}]. Rollback requested by user."
    _set_status(stack, "ROLLBACK_IN_PROGRESS", reason)
    try:
        _delete_ours(stack, stack.resource_map)
        stack.resource_map.delete()  # moto's own resources of the stack
    except Exception as exc:  # a resource that will not go: as CloudFormation, the stack says so
        log.warning("stack %s: rollback incomplete: %s", stack.name, exc)
        _set_status(stack, "ROLLBACK_FAILED", f"{reason} Rollback failed: {exc}")
        return
    _forget_resources(stack)
    _set_status(stack, "ROLLBACK_COMPLETE", reason)


def update_resource(original: SageMakerResource, props: dict[str, Any]) -> SageMakerResource:
    """In-place Update<noun> when only updatable properties changed; otherwise a replacement (deleted
    once the stack update succeeds). Unchanged resolved properties are a no-op."""
    op: _Operation | None = getattr(_local, "operation", None)
    if op is not None and op.failure is not None:
        raise op.failure
    try:
        return _update(original, props, op)
    except ProvisionFailed as failure:
        if op is not None:
            op.failure = failure
        raise


def _update(original: SageMakerResource, props: dict[str, Any], op: _Operation | None) -> SageMakerResource:
    spec, logical = original.spec, original.logical_resource_id
    tags = [t for t in original.request.get("Tags", []) if t["Key"].startswith("aws:cloudformation:")]
    request = SageMakerResource.request_of(spec, logical, original.cf_resource_type, props)
    keep_name = spec.name is not None and spec.name not in request and spec.name in original.request
    if keep_name and spec.name is not None:
        request[spec.name] = original.request[spec.name]
    if "Tags" in original.request:
        user = request.get("Tags") or []
        keys = {t.get("Key") for t in user}
        request["Tags"] = list(user) + [t for t in tags if t["Key"] not in keys]
    compared = {k: v for k, v in request.items() if k not in ("ClientRequestToken", "ClientToken")}
    before = {k: v for k, v in original.request.items() if k not in ("ClientRequestToken", "ClientToken")}
    changed = {k for k in set(compared) | set(before) if compared.get(k) != before.get(k)}
    cfn_changed = {k for k in spec.cfn_only if props.get(k) is not None}
    if not changed and not cfn_changed:
        return original
    if changed <= spec.updatable and (changed <= {"Tags"} or f"Update{spec.noun}" in _operations()):
        return _in_place(original, request, props, changed)
    if original.named and spec.name is not None and request.get(spec.name) == original.request.get(spec.name):
        raise ProvisionFailed(logical, original.cf_resource_type,
                              "CloudFormation cannot update a stack when a custom-named resource requires "
                              f"replacing. Rename {request[spec.name]} and update the stack again.",
                              original.physical_resource_id)
    fresh = SageMakerResource.provision(original.cf_resource_type, logical, original.region, props, tags)
    if op is not None:
        op.created.append(fresh)
        op.replaced.append(original)
    else:
        original.delete("", original.region)
    return fresh


def _operations() -> set[str]:
    from sagemaker_emulator.aws.cfn_sagemaker import services

    return set(services().sagemaker.model.operation_names)


def _in_place(original: SageMakerResource, request: dict[str, Any], props: dict[str, Any],
              changed: set[str]) -> SageMakerResource:
    from sagemaker_emulator.aws.cfn_sagemaker import _call, _input_members
    from sagemaker_emulator.protocol.errors import AwsError

    spec = original.spec
    key = spec.request_key(original.attrs)
    arn = next((v for k, v in original.attrs.items() if k == f"{spec.noun}Arn"), None)
    try:
        if changed - {"Tags"}:
            update = f"Update{spec.noun}"
            body = spec.to_update({**original.attrs, **props, **request}) if spec.to_update else dict(request)
            members = _input_members(update)
            body = {k: v for k, v in {**body, **key}.items() if k in members}
            _call(update, body, original.region)
        if "Tags" in changed and arn:
            old = {t["Key"]: t["Value"] for t in original.request.get("Tags", [])}
            new = {t["Key"]: t["Value"] for t in request.get("Tags", [])}
            gone = [k for k in old if k not in new]
            if gone:
                _call("DeleteTags", {"ResourceArn": arn, "TagKeys": gone}, original.region)
            if new:
                _call("AddTags", {"ResourceArn": arn, "Tags": [{"Key": k, "Value": v} for k, v in new.items()]},
                      original.region)
    except AwsError as err:
        raise ProvisionFailed(original.logical_resource_id, original.cf_resource_type, err.message,
                              original.physical_resource_id) from None
    original.request = request
    original._wait(spec)
    if spec.noun == "Endpoint":
        _check_endpoint_update(original)
    return original


def _check_endpoint_update(endpoint: SageMakerResource) -> None:
    """SageMaker keeps a failed update's endpoint InService on its old config, with a FailureReason."""
    wanted = endpoint.request.get("EndpointConfigName")
    if wanted and endpoint.attrs.get("EndpointConfigName") != wanted:
        reason = endpoint.attrs.get("FailureReason") or f"The endpoint did not move to {wanted}."
        raise ProvisionFailed(endpoint.logical_resource_id, endpoint.cf_resource_type, reason,
                              endpoint.physical_resource_id)


# ----- the wrappers around moto's Stack and ResourceMap ---------------------------------------------

def _with_dependents(original: Any) -> Any:
    @functools.wraps(original)
    def build_resource_diff(self: Any, other_template: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
        diff = original(self, other_template, parameters)
        new = other_template.get("Resources") or {}
        touched = set(diff["Modify"]) | set(diff["Add"])
        deps = dependencies(new)
        grew = True
        while grew:  # everything of ours that refers, directly or not, to a touched resource
            grew = False
            for name, needs in deps.items():
                if name in self._resource_json_map and name not in touched and needs & touched \
                        and new[name].get("Type") in TYPES:
                    touched.add(name)
                    diff["Modify"].append(name)
                    grew = True
        diff["Modify"] = dependency_order(new, diff["Modify"])
        return diff

    return build_resource_diff


def _sync_seconds() -> float:
    from sagemaker_emulator.aws.cfn_sagemaker import services

    return services().config.cfn_sync_seconds


def _create_resources(original: Any) -> Any:
    @functools.wraps(original)
    def create_resources(self: Any) -> None:
        if not cfn_async.involves_ours(self.template_dict):
            original(self)  # a stack of moto's alone: as moto runs it
            return
        self.status = "CREATE_IN_PROGRESS"

        def create() -> None:
            try:
                original(self)
            except Exception as exc:
                _rollback_create(self, _failure_of(self, exc))

        cfn_async.submit(self, create, _sync_seconds())

    return create_resources


def _update_stack(original: Any) -> Any:
    """CloudFormationBackend.update_stack: refused while the stack is busy, in the background if it involves ours."""
    @functools.wraps(original)
    def update_stack(self: Any, name: str, template: str, role_arn: str | None, parameters: list[dict[str, Any]],
                     tags: dict[str, str] | None) -> Any:
        from moto.cloudformation.exceptions import ValidationError
        from moto.cloudformation.models import Stack

        stack = self.get_stack(name)
        if stack.status.endswith("_IN_PROGRESS") or stack.status in ("UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE"):
            raise ValidationError(stack.stack_id, message=f"Stack:{stack.stack_id} is in {stack.status} state "
                                                          "and can not be updated.")
        if not cfn_async.involves_ours(stack.template_dict, Stack.parse_template(template) if template else None):
            return original(self, name, template, role_arn, parameters, tags)
        resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
        stack.status = "UPDATE_IN_PROGRESS"  # moto's Stack.update adds the event
        cfn_async.submit(stack, lambda: stack.update(template, role_arn, parameters=resolved, tags=tags),
                         _sync_seconds())
        return stack

    return update_stack


def _delete_stack(original: Any) -> Any:
    """CloudFormationBackend.delete_stack in the background for a stack that involves ours. A stack whose
    delete failed stays listed under its name (DELETE_FAILED), as on AWS; moto would move it to the deleted."""
    @functools.wraps(original)
    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        stack = self.stacks.get(name_or_stack_id) or next(
            (s for s in self.stacks.values() if s.name == name_or_stack_id), None)
        if stack is None or not (cfn_async.involves_ours(stack.template_dict) or cfn_async.busy(stack.stack_id)):
            original(self, name_or_stack_id)
            return
        if stack.status == "DELETE_IN_PROGRESS":
            return
        if not cfn_async.busy(stack.stack_id):  # else it shows once the running operation has ended
            _set_status(stack, "DELETE_IN_PROGRESS", "User Initiated")

        cfn_async.submit(stack, functools.partial(_delete_now, self, stack), _sync_seconds())

    return delete_stack


def _delete_now(backend: Any, stack: Any) -> None:
    """moto's delete_stack in an order without gaps: the stack stays listed under its name until it is
    DELETE_COMPLETE (then only by its id); after DELETE_FAILED it stays."""
    try:
        exports = [export.name for export in stack.exports]
    except Exception:  # an export that no longer resolves (its resource failed) has nothing to remove
        exports = []
    stack.delete()
    if stack.status == "DELETE_COMPLETE":
        backend.deleted_stacks[stack.stack_id] = stack
        backend.stacks.pop(stack.stack_id, None)
        for name in exports:
            backend.exports.pop(name, None)


def _lazy_item(original: Any) -> Any:
    """ResourceMap.__getitem__: another thread only reads what the stack's worker has made (it would create
    it otherwise); in the worker, our resources get CREATE_IN_PROGRESS / CREATE_COMPLETE events."""
    @functools.wraps(original)
    def getitem(self: Any, key: str) -> Any:
        if cfn_async.foreign(self.stack_id):
            if key in self._parsed_resources:
                return self._parsed_resources[key]
            raise KeyError(key)
        stack = cfn_async.current_stack()
        body = self._resource_json_map.get(key) if key not in self._parsed_resources else None
        kind = body.get("Type") if isinstance(body, dict) else None
        ours = stack is not None and kind in TYPES
        if ours:
            _event(stack, key, "", str(kind), "CREATE_IN_PROGRESS")
        made = original(self, key)
        if ours:
            _event(stack, key, getattr(made, "physical_resource_id", ""), str(kind), "CREATE_COMPLETE")
            moto_state.changed("cloudformation")  # a kill -9 from here on still knows the resource
        return made

    return getitem


def _lazy_iter(original: Any) -> Any:
    @functools.wraps(original)
    def iterate(self: Any) -> Any:
        if cfn_async.foreign(self.stack_id):
            parsed = self._parsed_resources
            return iter([k for k in list(self._resource_json_map) if k in parsed])
        return original(self)

    return iterate


def _outputs(original: property) -> property:
    """Stack.outputs: none while an operation is in progress (AWS shows them once the stack is complete; moto
    would resolve them from resources the worker has not made yet). Decided by the status, which the worker
    sets last: a client that saw *_COMPLETE reads the outputs."""
    def outputs(self: Any) -> Any:
        return None if str(self.status).endswith("_IN_PROGRESS") else original.fget(self)  # type: ignore[misc]

    return property(outputs)


def recover() -> None:
    """After a restart, settle stacks moto's snapshot holds *_IN_PROGRESS (their worker died with the process):
    a create is rolled back (what it made is deleted), a delete runs again, an update ends UPDATE_ROLLBACK_FAILED
    (its rollback state died too; DeleteStack still works from there)."""
    from moto.cloudformation.models import cloudformation_backends

    for by_region in list(cloudformation_backends.values()):
        for backend in list(by_region.values()):
            for stack in list(backend.stacks.values()):
                _recover(backend, stack)


def _recover(backend: Any, stack: Any) -> None:
    status = stack.status
    if not status.endswith("_IN_PROGRESS") or cfn_async.busy(stack.stack_id):
        return
    log.warning("stack %s was %s when the emulator stopped", stack.name, status)
    if status in ("CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"):
        reason = "The emulator restarted while the stack was being created. Rollback requested by the emulator."
        cfn_async.submit(stack, lambda: _rollback_create(stack, None, reason))
    elif status == "DELETE_IN_PROGRESS":
        cfn_async.submit(stack, functools.partial(_delete_now, backend, stack))
    else:
        _set_status(stack, "UPDATE_ROLLBACK_FAILED",
                    "The emulator restarted while the stack was being updated; it could not roll the update back.")
        moto_state.changed("cloudformation")


def _stack_update(original: Any) -> Any:
    @functools.wraps(original)
    def update(self: Any, template: str, role_arn: str | None = None, parameters: Any = None,
               tags: Any = None) -> None:
        rmap = self.resource_map
        saved = (self.template, self.template_dict, dict(rmap._parsed_resources), rmap._resource_json_map,
                 rmap._template, rmap.input_parameters)
        before = set(rmap._parsed_resources)
        op = _local.operation = _Operation()
        try:
            original(self, template, role_arn, parameters, tags)
        except Exception as exc:
            if not isinstance(exc, ProvisionFailed) and cfn_async.current_stack() is None:
                raise  # a stack of moto's alone, updated in the request: moto's error for the caller
            _rollback_update(self, _failure_of(self, exc), op, saved, before)
            return
        finally:
            _local.operation = None
        for old in op.replaced:  # cleanup phase: what the replacements replaced
            try:
                old.delete("", old.region)
            except ProvisionFailed as exc:
                log.warning("stack %s: could not delete replaced %s: %s", self.name, old.physical_resource_id, exc)

    return update


def _rollback_update(stack: Any, failure: ProvisionFailed, op: _Operation, saved: tuple, before: set) -> None:
    _event(stack, failure.logical_id, failure.physical_id, failure.resource_type, "UPDATE_FAILED", failure.reason)
    reason = f"The following resource(s) failed to update: [{failure.logical_id}]."
    _set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
    rmap = stack.resource_map
    added = [r for k, r in _ours(rmap).items() if k not in before]
    for resource in reversed(op.created + added):
        try:
            resource.delete("", resource.region)
        except ProvisionFailed as exc:
            log.warning("stack %s: rollback could not delete %s: %s", stack.name, resource.physical_resource_id, exc)
    (stack.template, stack.template_dict, parsed, rmap._resource_json_map, rmap._template,
     rmap.input_parameters) = saved
    rmap._parsed_resources.clear()
    rmap._parsed_resources.update(parsed)
    stack.output_map = stack._create_output_map()
    _set_status(stack, "UPDATE_ROLLBACK_COMPLETE", reason)


def _delete(original: Any) -> Any:
    """moto's Stack.delete (event, ResourceMap.delete, DELETE_COMPLETE) with ours deleted first, in order."""
    @functools.wraps(original)
    def delete(self: Any) -> None:
        if self.status != "DELETE_IN_PROGRESS":  # DeleteStack already said so when it runs in the background
            _set_status(self, "DELETE_IN_PROGRESS", "User Initiated")
        try:
            _delete_ours(self, self.resource_map)
            self.resource_map.delete()  # moto's own resources of the stack
        except Exception as exc:
            if not isinstance(exc, ProvisionFailed) and cfn_async.current_stack() is None:
                raise
            failure = _failure_of(self, exc)
            _event(self, failure.logical_id, failure.physical_id, failure.resource_type, "DELETE_FAILED",
                   failure.reason)
            _set_status(self, "DELETE_FAILED", f"The following resource(s) failed to delete: [{failure.logical_id}].")
            return
        _set_status(self, "DELETE_COMPLETE")
        _forget_resources(self)

    return delete


_installed = False


def install() -> None:
    """Wrap moto's Stack, ResourceMap and CloudFormationBackend methods above, once."""
    global _installed
    if _installed:
        return
    from moto.cloudformation.models import CloudFormationBackend, Stack
    from moto.cloudformation.parsing import ResourceMap

    ResourceMap.build_resource_diff = _with_dependents(ResourceMap.build_resource_diff)  # type: ignore[method-assign]
    ResourceMap.__getitem__ = _lazy_item(ResourceMap.__getitem__)  # type: ignore[method-assign]
    ResourceMap.__iter__ = _lazy_iter(ResourceMap.__iter__)  # type: ignore[method-assign]
    Stack.create_resources = _create_resources(Stack.create_resources)  # type: ignore[method-assign]
    Stack.update = _stack_update(Stack.update)  # type: ignore[method-assign]
    Stack.delete = _delete(Stack.delete)  # type: ignore[method-assign]
    Stack.outputs = _outputs(Stack.__dict__["outputs"])  # type: ignore[method-assign,assignment]
    CloudFormationBackend.update_stack = _update_stack(CloudFormationBackend.update_stack)  # type: ignore[method-assign]
    CloudFormationBackend.delete_stack = _delete_stack(CloudFormationBackend.delete_stack)  # type: ignore[method-assign]
    _installed = True


