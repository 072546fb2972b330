"""Application Auto Scaling for SageMaker (ServiceNamespace `sagemaker`); other namespaces are moto's.

Scalable targets, scaling policies, scheduled actions and scaling activities are kept in the store;
the scaler (emulator/autoscaling) acts on them by calling UpdateEndpointWeightsAndCapacities, as
Application Auto Scaling does on AWS. Errors and messages follow AWS's (ObjectNotFoundException
"No scalable target registered for service namespace: ..., resource ID: ..., scalable dimension: ...").
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from sagemaker_emulator.protocol.errors import AwsError, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common

TARGET, POLICY, SCHEDULED, ACTIVITY = "scalable-target", "scaling-policy", "scheduled-action", "scaling-activity"
DIMENSIONS = {"sagemaker:variant:DesiredInstanceCount": "variant", "sagemaker:variant:DesiredProvisionedConcurrency":
              "variant", "sagemaker:inference-component:DesiredCopyCount": "inference-component"}
_VARIANT = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")
_COMPONENT = re.compile(r"^inference-component/(?P<component>[^/]+)$")
PREDEFINED = {"sagemaker:variant:DesiredInstanceCount": ("SageMakerVariantInvocationsPerInstance",
                                                         "SageMakerVariantConcurrentRequestsPerModelHighResolution"),
              "sagemaker:variant:DesiredProvisionedConcurrency": ("SageMakerVariantProvisionedConcurrencyUtilization",),
              "sagemaker:inference-component:DesiredCopyCount": (
                  "SageMakerInferenceComponentInvocationsPerCopy",
                  "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")}


class ObjectNotFound(AwsError):
    code = "ObjectNotFoundException"


def _where(params: dict[str, Any]) -> str:
    return (f"service namespace: {params['ServiceNamespace']}, resource ID: {params['ResourceId']}, "
            f"scalable dimension: {params['ScalableDimension']}")


def target_key(resource_id: str, dimension: str) -> str:
    return f"{resource_id}|{dimension}"


def _check_resource(ctx: RequestContext, params: dict[str, Any]) -> None:
    """The sagemaker resource id and dimension pair, and (for a variant) that the endpoint has it."""
    dimension, resource_id = params["ScalableDimension"], params["ResourceId"]
    kind = DIMENSIONS.get(dimension)
    variant = _VARIANT.match(resource_id)
    component = _COMPONENT.match(resource_id)
    if kind is None or (kind == "variant" and not variant) or (kind == "inference-component" and not component):
        raise ValidationError("Unsupported service namespace, resource type or scalable dimension")
    if variant:
        endpoint = common.find(ctx, "endpoint", variant["endpoint"])
        variants = [v.get("VariantName") for v in (endpoint.document.get("ProductionVariants") or [])] \
            if endpoint is not None else []
        if variant["variant"] not in variants:
            raise ValidationError(f"The endpoint variant {variant['variant']} of endpoint {variant['endpoint']} "
                                  "does not exist.")


def _target(ctx: RequestContext, params: dict[str, Any]) -> Any:
    row = resources.get(TARGET, ctx.region, target_key(params["ResourceId"], params["ScalableDimension"]))
    if row is None:
        raise ObjectNotFound(f"No scalable target registered for {_where(params)}")
    return row


def _sagemaker(params: dict[str, Any]) -> None:
    if params.get("ServiceNamespace") != "sagemaker":  # the router sends only these here
        raise ValidationError("Unsupported service namespace, resource type or scalable dimension")


def register_scalable_target(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    _check_resource(ctx, params)
    key = target_key(params["ResourceId"], params["ScalableDimension"])
    row = resources.get(TARGET, ctx.region, key)
    doc = dict(row.document) if row is not None else {}
    for member in ("MinCapacity", "MaxCapacity", "RoleARN"):
        if params.get(member) is not None:
            doc[member] = params[member]
    if row is None and (doc.get("MinCapacity") is None or doc.get("MaxCapacity") is None):
        raise ValidationError("MinCapacity and MaxCapacity are required for registering a new scalable target.")
    if doc["MinCapacity"] > doc["MaxCapacity"]:
        raise ValidationError("Minimum capacity cannot be greater than maximum capacity.")
    suspended = {**(doc.get("SuspendedState") or {}), **(params.get("SuspendedState") or {})}
    doc["SuspendedState"] = {k: bool(suspended.get(k, False)) for k in (
        "DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")}
    if row is None:
        arn = (f"arn:aws:application-autoscaling:{ctx.region}:{ctx.account_id}:scalable-target/"
               f"{secrets.token_hex(18)}")
        doc.update(ServiceNamespace="sagemaker", ResourceId=params["ResourceId"],
                   ScalableDimension=params["ScalableDimension"], CreationTime=resources.now(),
                   ScalableTargetARN=arn)
        doc.setdefault("RoleARN", f"arn:aws:iam::{ctx.account_id}:role/aws-service-role/"
                                  "sagemaker.application-autoscaling.amazonaws.com/"
                                  "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
        resources.create(TARGET, ctx.region, key, arn, doc, tags=params.get("Tags") and [
            {"Key": k, "Value": v} for k, v in params["Tags"].items()] or [])
    else:
        resources.save(row, doc)
    ctx.services.autoscaling.wake()  # capacity outside the new range is brought into it
    return {"ScalableTargetARN": doc["ScalableTargetARN"]}


def deregister_scalable_target(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    row = resources.get(TARGET, ctx.region, target_key(params["ResourceId"], params["ScalableDimension"]))
    if row is None:
        raise ObjectNotFound(f"No scalable target found for {_where(params)}")
    for kind in (POLICY, SCHEDULED):  # its policies and scheduled actions go with it
        for other in _owned(ctx, kind, row.document):
            resources.delete(other)
    resources.delete(row)
    return {}


def _owned(ctx: RequestContext, kind: str, target: dict[str, Any]) -> list[Any]:
    prefix = target_key(target["ResourceId"], target["ScalableDimension"]) + "|"
    return [r for r in resources.all_of(kind, ctx.region) if r.name.startswith(prefix)]


def _page(items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
    try:
        return common.offset_page(items, params, key, default_limit=50)
    except ValidationError as exc:
        raise AwsError(exc.message, code="InvalidNextTokenException") from None


def describe_scalable_targets(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    ids = set(params.get("ResourceIds") or [])
    rows = [r.document for r in resources.all_of(TARGET, ctx.region)]
    rows = [d for d in rows if (not ids or d["ResourceId"] in ids) and
            (not params.get("ScalableDimension") or d["ScalableDimension"] == params["ScalableDimension"])]
    return _page(sorted(rows, key=lambda d: d["CreationTime"]), params, "ScalableTargets")


def _check_policy(params: dict[str, Any]) -> None:
    kind = params.get("PolicyType") or "StepScaling"
    if kind == "TargetTrackingScaling":
        config = params.get("TargetTrackingScalingPolicyConfiguration")
        if not config:
            raise ValidationError("TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling "
                                  "policy.")
        predefined = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        if predefined and predefined not in PREDEFINED[params["ScalableDimension"]]:
            raise ValidationError(f"The predefined metric type {predefined} is not supported for scalable "
                                  f"dimension {params['ScalableDimension']}.")
        if not predefined and not config.get("CustomizedMetricSpecification"):
            raise ValidationError("Either PredefinedMetricSpecification or CustomizedMetricSpecification is required.")
    elif kind == "StepScaling" and not params.get("StepScalingPolicyConfiguration"):
        raise ValidationError("StepScalingPolicyConfiguration is required for a StepScaling policy.")


def put_scaling_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    target = _target(ctx, params)
    _check_policy(params)
    key = f"{target.name}|{params['PolicyName']}"
    row = resources.get(POLICY, ctx.region, key)
    policy_id = row.document["_id"] if row is not None else str(uuid.uuid4())
    arn = (f"arn:aws:autoscaling:{ctx.region}:{ctx.account_id}:scalingPolicy:{policy_id}:resource/sagemaker/"
           f"{params['ResourceId']}:policyName/{params['PolicyName']}")
    doc = {k: params[k] for k in ("PolicyName", "ServiceNamespace", "ResourceId", "ScalableDimension",
                                  "StepScalingPolicyConfiguration", "TargetTrackingScalingPolicyConfiguration",
                                  "PredictiveScalingPolicyConfiguration") if params.get(k) is not None}
    doc.update(PolicyARN=arn, PolicyType=params.get("PolicyType") or "StepScaling", Alarms=[], _id=policy_id,
               CreationTime=row.document["CreationTime"] if row is not None else resources.now())
    if row is None:
        resources.create(POLICY, ctx.region, key, arn, doc)
    else:
        resources.save(row, doc)
    ctx.services.autoscaling.wake()
    return {"PolicyARN": arn, "Alarms": []}


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def describe_scaling_policies(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    names = set(params.get("PolicyNames") or [])
    rows = [r.document for r in resources.all_of(POLICY, ctx.region)]
    rows = [d for d in rows if (not names or d["PolicyName"] in names)
            and (not params.get("ResourceId") or d["ResourceId"] == params["ResourceId"])
            and (not params.get("ScalableDimension") or d["ScalableDimension"] == params["ScalableDimension"])]
    return _page([_public(d) for d in sorted(rows, key=lambda d: d["CreationTime"])], params, "ScalingPolicies")


def delete_scaling_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    key = f"{target_key(params['ResourceId'], params['ScalableDimension'])}|{params['PolicyName']}"
    row = resources.get(POLICY, ctx.region, key)
    if row is None:
        raise ObjectNotFound(f"No scaling policy found for {_where(params)}, policy name: {params['PolicyName']}")
    resources.delete(row)
    return {}


def put_scheduled_action(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    target = _target(ctx, params)
    from sagemaker_emulator.autoscaling.schedules import check

    if params.get("Schedule"):
        check(params["Schedule"])
    key = f"{target.name}|{params['ScheduledActionName']}"
    row = resources.get(SCHEDULED, ctx.region, key)
    doc = dict(row.document) if row is not None else {}
    doc.update({k: params[k] for k in ("ScheduledActionName", "ServiceNamespace", "Schedule", "Timezone",
                                        "ResourceId", "ScalableDimension", "StartTime", "EndTime",
                                        "ScalableTargetAction") if params.get(k) is not None})
    if not doc.get("Schedule"):
        raise ValidationError("Schedule is required for a new scheduled action.")
    doc.pop("_last", None)
    if row is None:
        action_id = str(uuid.uuid4())
        doc.update(CreationTime=resources.now(), ScheduledActionARN=(
            f"arn:aws:autoscaling:{ctx.region}:{ctx.account_id}:scheduledAction:{action_id}:resource/sagemaker/"
            f"{params['ResourceId']}:scheduledActionName/{params['ScheduledActionName']}"))
        resources.create(SCHEDULED, ctx.region, key, doc["ScheduledActionARN"], doc)
    else:
        resources.save(row, doc)
    ctx.services.autoscaling.wake()
    return {}


def describe_scheduled_actions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    names = set(params.get("ScheduledActionNames") or [])
    rows = [r.document for r in resources.all_of(SCHEDULED, ctx.region)]
    rows = [d for d in rows if (not names or d["ScheduledActionName"] in names)
            and (not params.get("ResourceId") or d["ResourceId"] == params["ResourceId"])
            and (not params.get("ScalableDimension") or d["ScalableDimension"] == params["ScalableDimension"])]
    return _page([_public(d) for d in sorted(rows, key=lambda d: d["CreationTime"])], params, "ScheduledActions")


def delete_scheduled_action(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _sagemaker(params)
    key = f"{target_key(params['ResourceId'], params['ScalableDimension'])}|{params['ScheduledActionName']}"
    row = resources.get(SCHEDULED, ctx.region, key)
    if row is None:
        raise ObjectNotFound(f"No scheduled action found for {_where(params)}, scheduled action name: "
                             f"{params['ScheduledActionName']}")
    resources.delete(row)
    return {}


def describe_scaling_activities(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Newest first, as AWS lists them."""
    _sagemaker(params)
    rows = [r.document for r in resources.all_of(ACTIVITY, ctx.region)]
    rows = [d for d in rows if (not params.get("ResourceId") or d["ResourceId"] == params["ResourceId"])
            and (not params.get("ScalableDimension") or d["ScalableDimension"] == params["ScalableDimension"])
            and (params.get("IncludeNotScaledActivities") or d.get("StatusCode") != "Unfulfilled")]
    return _page([_public(d) for d in sorted(rows, key=lambda d: -d["StartTime"])], params, "ScalingActivities")


def check_endpoint_update(ctx: RequestContext, endpoint: str, current: dict[str, Any], new: dict[str, Any]) -> None:
    """UpdateEndpoint may not remove, or change the instance type of, a variant that is a scalable target."""
    scaled = sorted(r.document["ResourceId"].split("/")[3] for r in resources.all_of(TARGET, ctx.region)
                    if r.document["ResourceId"].startswith(f"endpoint/{endpoint}/variant/"))
    if not scaled:
        return
    old_types = {v["VariantName"]: v.get("InstanceType") for v in current.get("ProductionVariants") or []}
    new_types = {v["VariantName"]: v.get("InstanceType") for v in new.get("ProductionVariants") or []}
    blocked = [v for v in scaled if v not in new_types or new_types[v] != old_types.get(v)]
    if blocked:
        raise ValidationError(f'The variant(s) "[{", ".join(blocked)}]" must be deregistered as scalable targets with '
                              "AWS Application Auto Scaling before they can be removed or have their instance type "
                              "updated.")
