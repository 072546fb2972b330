"""moto's CloudFormation provisions `AWS::SageMaker::*` resources in OUR store, not moto's.

moto resolves a template's resource type to a class through `get_model_map()` (a cached dict) and
calls the class's `create_from_cloudformation_json` / `update_from_cloudformation_json` and the
instance's `delete`. `install()` points every type of `cfn_types.TYPES` at `SageMakerResource`, a
provider that runs the operations through `services.sagemaker.call` (same validation and handlers
as the wire), waits out transitional statuses as CloudFormation's handlers do (in the stack's worker
thread, cfn_async.py), and answers `Ref` /
`Fn::GetAtt` from what Create and Describe returned. Stack-level behaviour moto lacks (rollback on a
failed create, reverse-order deletes, dependents of a replaced resource) is in `cfn_stacks.py`.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sagemaker_emulator.aws import cfn_async
from sagemaker_emulator.aws.cfn_types import FAILED, TRANSITIONAL, TYPES, CfnType
from sagemaker_emulator.protocol.errors import AwsError

if TYPE_CHECKING:
    from sagemaker_emulator.services import Services

log = logging.getLogger(__name__)

_services: Services | None = None
WAIT_SECONDS = 900.0  # an endpoint's containers may pull and load for a while; CFN waits up to hours


class ProvisionFailed(Exception):
    """A SageMaker resource of a stack failed; the stack records `reason` and rolls back."""

    def __init__(self, logical_id: str, resource_type: str, reason: str, physical_id: str = "") -> None:
        super().__init__(reason)
        self.logical_id, self.resource_type, self.reason, self.physical_id = \
            logical_id, resource_type, reason, physical_id


def services() -> Services:
    if _services is None:
        raise RuntimeError("cfn_sagemaker.install(services) was not called")
    return _services


def _call(op: str, params: dict[str, Any], region: str) -> dict[str, Any]:
    return services().sagemaker.call(op, params, region=region, internal={"caller": "cloudformation"})


def _not_found(err: AwsError) -> bool:
    text = err.message.lower()
    return err.code in ("ResourceNotFound", "ResourceNotFoundException") or (
        err.code == "ValidationException"
        and any(w in text for w in ("not find", "not exist", "not found", "recordnotfound")))


def _input_members(op: str) -> set[str]:
    return set(services().sagemaker.model.operation_model(op).input_shape.members)


def _has_op(op: str) -> bool:
    return op in services().sagemaker.model.operation_names


def generated_name(logical_id: str) -> str:
    """`<LogicalId>-<random>` within SageMaker's 63-character name pattern, as CloudFormation names them."""
    base = re.sub(r"[^A-Za-z0-9-]", "", logical_id)[:50].strip("-") or "Resource"
    suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    return f"{base}-{suffix}"


def _status_of(spec: CfnType, doc: dict[str, Any]) -> str | None:
    value = doc.get(f"{spec.noun}Status", doc.get("Status"))
    return value if isinstance(value, str) else None


class SageMakerResource:
    """One `AWS::SageMaker::*` resource of a stack, as moto's ResourceMap holds it."""

    def __init__(self, resource_type: str, logical_id: str, region: str, request: dict[str, Any],
                 attrs: dict[str, Any], named: bool) -> None:
        self.cf_resource_type = resource_type
        self.logical_resource_id = logical_id
        self.region = region
        self.request = request      # the resolved Create request, compared on update
        self.attrs = attrs          # Create's answer + Describe's document: what GetAtt reads
        self.named = named          # the template gave the name (replacement then needs a new one)
        self.deleted = False

    @property
    def spec(self) -> CfnType:
        return TYPES[self.cf_resource_type]

    @property
    def physical_resource_id(self) -> str:
        return str(self.attrs.get(self.spec.ref, ""))

    # ----- moto's CloudFormationModel surface -------------------------------------------------
    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::*"

    resource_type = ""  # set on the per-type subclasses install() registers

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        """What GetAtt may name: a member of the type's Create request or answer or of its Describe (botocore's
        shapes); moto checks the template's Outputs with this before creating anything."""
        spec = TYPES.get(cls.resource_type)
        if spec is None:
            return True
        model = services().sagemaker.model
        known: set[str] = set()
        for op in (f"Create{spec.noun}", f"Describe{spec.noun}"):
            if op in model.operation_names:
                operation = model.operation_model(op)
                for shape in (operation.input_shape, operation.output_shape):
                    known |= set(shape.members) if shape is not None else set()
        return attr in known

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, attr: str) -> Any:
        if attr not in self.attrs:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            raise UnformattedGetAttTemplateException()
        value = self.attrs[attr]
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> SageMakerResource:
        resource_type, logical_id = kwargs["ResourceType"], kwargs["LogicalId"]
        return SageMakerResource.provision(resource_type, logical_id, region_name,
                                           cloudformation_json.get("Properties") or {},
                                           stack_tags(kwargs.get("StackId", ""), logical_id),
                                           made=cfn_async.note_made)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: SageMakerResource, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> SageMakerResource:
        from sagemaker_emulator.aws import cfn_stacks

        return cfn_stacks.update_resource(original_resource, cloudformation_json.get("Properties") or {})

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        raise RuntimeError("SageMakerResource is deleted through its instance")  # moto calls delete() first

    def delete(self, account_id: str, region_name: str) -> None:
        if self.deleted:
            return
        spec = self.spec
        if spec.stop_before_delete:  # AWS refuses to delete an InService notebook instance; CFN stops it
            try:
                _call(f"Stop{spec.noun}", spec.request_key(self.attrs), self.region)
            except AwsError:
                pass  # already stopped, or gone: Delete below says which
            self._wait(spec)
        try:
            _call(f"Delete{spec.noun}", spec.request_key(self.attrs), self.region)
        except AwsError as err:
            if not _not_found(err):
                raise ProvisionFailed(self.logical_resource_id, self.cf_resource_type, err.message,
                                      self.physical_resource_id) from None
        self._wait(spec, gone=True)
        self.deleted = True

    # ----- provisioning ------------------------------------------------------------------------
    @classmethod
    def provision(cls, resource_type: str, logical_id: str, region: str, props: dict[str, Any],
                  tags: list[dict[str, str]], name: str | None = None,
                  made: Callable[[str, SageMakerResource], None] | None = None) -> SageMakerResource:
        """Create the resource and wait until it is usable; ProvisionFailed with AWS's reason otherwise.
        `made(logical_id, resource)` is told once it exists, before the wait."""
        spec = TYPES[resource_type]
        request = cls.request_of(spec, logical_id, resource_type, props)
        named = spec.name is not None and spec.name in request
        if spec.name is not None and not named and spec.generate_name:
            request[spec.name] = name or generated_name(logical_id)
        create = f"Create{spec.noun}"
        if "Tags" in _input_members(create):
            user = request.get("Tags") or []
            keys = {t.get("Key") for t in user}
            request["Tags"] = list(user) + [t for t in tags if t["Key"] not in keys]
        try:
            answer = _call(create, request, region)
        except AwsError as err:
            raise ProvisionFailed(logical_id, resource_type, err.message) from None
        resource = cls(resource_type, logical_id, region, request, {**request, **answer}, named)
        if made is not None:
            made(logical_id, resource)
        try:
            resource.refresh()
            resource._wait(spec)
        except ProvisionFailed:
            try:
                resource.delete("", region)  # CloudFormation's handler leaves nothing half-made behind
            except ProvisionFailed as exc:
                log.warning("could not delete the failed %s: %s", resource.physical_resource_id, exc)
            raise
        return resource

    @staticmethod
    def request_of(spec: CfnType, logical_id: str, resource_type: str, props: dict[str, Any]) -> dict[str, Any]:
        request = spec.to_request(dict(props)) if spec.to_request else dict(props)
        for key in spec.cfn_only:
            request.pop(key, None)
        members = _input_members(f"Create{spec.noun}")
        unknown = sorted(set(request) - members)
        if unknown:
            raise ProvisionFailed(logical_id, resource_type,
                                  f"Properties validation failed for resource {logical_id}: "
                                  f"Encountered unsupported properties: {unknown}")
        return request

    def refresh(self) -> None:
        """Describe's document into the attributes (ARNs, statuses, generated ids)."""
        describe = f"Describe{self.spec.noun}"
        if not _has_op(describe):
            return
        try:
            self.attrs.update(_call(describe, self.spec.request_key(self.attrs), self.region))
        except AwsError as err:
            raise ProvisionFailed(self.logical_resource_id, self.cf_resource_type, err.message,
                                  self.physical_resource_id) from None

    def _wait(self, spec: CfnType, gone: bool = False) -> None:
        """Poll Describe while the status is transitional (Creating, Updating, Deleting, ...)."""
        describe = f"Describe{spec.noun}"
        if not _has_op(describe):
            return
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                doc = _call(describe, spec.request_key(self.attrs), self.region)
            except AwsError as err:
                if gone and _not_found(err):
                    return
                raise ProvisionFailed(self.logical_resource_id, self.cf_resource_type, err.message,
                                      self.physical_resource_id) from None
            status = _status_of(spec, doc)
            if not gone:
                self.attrs.update(doc)
            if status in FAILED:
                reason = doc.get("FailureReason") or f"{spec.noun} {self.physical_resource_id} is {status}."
                raise ProvisionFailed(self.logical_resource_id, self.cf_resource_type, reason,
                                      self.physical_resource_id)
            if status not in TRANSITIONAL:  # (gone: a record-only resource Describe still finds)
                return
            if time.monotonic() > deadline:
                raise ProvisionFailed(self.logical_resource_id, self.cf_resource_type,
                                      f"Resource timed out waiting for {spec.noun} to leave status {status}.",
                                      self.physical_resource_id)
            cfn_async.check_interrupt()
            time.sleep(0.5)


def stack_tags(stack_id: str, logical_id: str) -> list[dict[str, str]]:
    """The tags CloudFormation puts on every taggable resource of a stack."""
    if not stack_id:
        return []
    name = stack_id.split(":stack/", 1)[-1].split("/", 1)[0]
    return [{"Key": "aws:cloudformation:stack-name", "Value": name},
            {"Key": "aws:cloudformation:stack-id", "Value": stack_id},
            {"Key": "aws:cloudformation:logical-id", "Value": logical_id}]


def install(services_: Services) -> None:
    """Route moto's CloudFormation for our types to `SageMakerResource`; idempotent. The last Services
    installed answers (one per process in practice)."""
    global _services
    _services = services_
    from moto.cloudformation import parsing

    model_map: dict[str, Any] = parsing.get_model_map()  # lru-cached: the dict moto consults
    for resource_type, spec in TYPES.items():
        model_map[resource_type] = type(f"SageMaker{spec.noun}Resource", (SageMakerResource,),
                                        {"resource_type": resource_type})
    from sagemaker_emulator.aws import cfn_stacks

    cfn_stacks.install()
    cfn_async.reopen()


def shutdown(services_: Services) -> None:
    """Services.close: stop the stack workers of this Services (their stacks are settled at the next start)."""
    if _services is services_:
        cfn_async.shutdown()


def recover(services_: Services) -> None:
    """Services.start_background: settle the stacks a previous run left *_IN_PROGRESS."""
    if _services is services_:
        from sagemaker_emulator.aws import cfn_stacks

        cfn_stacks.recover()
