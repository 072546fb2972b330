"""Models: CreateModel, DescribeModel, ListModels, DeleteModel."""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common, model_packages

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


_PACKAGE_MEMBERS = ("Image", "ImageDigest", "ModelDataUrl", "ModelDataSource", "Environment")


def _from_package(ctx: RequestContext, container: dict[str, Any]) -> list[dict[str, Any]]:
    """A container naming a model package becomes the package's inference containers (Image, model
    data, environment; the caller's Environment wins), each still naming the package."""
    if not container.get("ModelPackageName"):
        return [container]
    resolved = []
    for spec in model_packages.inference_containers(ctx, container["ModelPackageName"]):
        out = {key: spec[key] for key in _PACKAGE_MEMBERS if key in spec}
        out.update({key: value for key, value in container.items() if key != "Environment"})
        out["Environment"] = {**spec.get("Environment", {}), **container.get("Environment", {})}
        resolved.append(out)
    return resolved


def _resolve_packages(ctx: RequestContext, document: dict[str, Any]) -> None:
    if document.get("PrimaryContainer"):
        containers = _from_package(ctx, document["PrimaryContainer"])
        if len(containers) == 1:
            document["PrimaryContainer"] = containers[0]
        else:  # a package of several containers is an inference pipeline
            del document["PrimaryContainer"]
            document["Containers"] = containers
    elif document.get("Containers"):
        document["Containers"] = [out for container in document["Containers"] for out in _from_package(ctx, container)]


def create_model(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_containers(params)
    name = params["ModelName"]
    document = {key: value for key, value in params.items() if key != "Tags"}
    _resolve_packages(ctx, document)
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
