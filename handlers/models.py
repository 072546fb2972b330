"""Models: CreateModel, DescribeModel, ListModels, DeleteModel."""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common

KIND = "model"
NOUN = "model"


def _check_containers(params: dict[str, Any]) -> None:
    primary, containers = params.get("PrimaryContainer"), params.get("Containers")
    if primary is None and not containers:
        raise ValidationError("Either PrimaryContainer or Containers must be specified.")
    if primary is not None and containers:
        raise ValidationError("Only one of PrimaryContainer or Containers may be specified.")
    if containers:
        named = [c.get("ContainerHostname") for c in containers]
        if any(named) and not all(named):
            raise ValidationError("If ContainerHostname is specified for one container, "
                                  "it must be specified for all containers.")
        if len(set(filter(None, named))) != len([n for n in named if n]):
            raise ValidationError("ContainerHostname must be unique among the containers of a model.")
    for container in containers or [primary]:
        if not container.get("Image") and not container.get("ModelPackageName"):
            raise ValidationError("Each container must specify Image or ModelPackageName.")
        if container.get("ModelPackageName"):  # no model packages yet: an endpoint on one could never start
            raise ValidationError(f"Model package {container['ModelPackageName']} does not exist: model packages "
                                  "are not supported by sagemaker-emulator yet; give the container an Image "
                                  "(and ModelDataUrl) instead.")


def create_model(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_containers(params)
    name = params["ModelName"]
    document = {key: value for key, value in params.items() if key != "Tags"}
    document.setdefault("EnableNetworkIsolation", False)
    document["ModelArn"] = common.arn(ctx, KIND, name)
    document["CreationTime"] = resources.now()
    common.create(ctx, KIND, name, document, NOUN, tags=params.get("Tags"))
    return {"ModelArn": document["ModelArn"]}


def describe_model(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.require(ctx, KIND, params["ModelName"], NOUN).document


def list_models(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, KIND, params, "Models", lambda row: {
        "ModelName": row.name, "ModelArn": row.arn, "CreationTime": row.creation_time})


def delete_model(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.delete(ctx, common.require(ctx, KIND, params["ModelName"], NOUN))
