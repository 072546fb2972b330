"""The lineage SageMaker creates by itself ("Amazon SageMaker AI-Created Tracking Entities").

- A job's trial component gets artifacts for its image and each S3 input (ContributedTo the
  component) and, when it ends, for what it produced (the component Produced them): a training
  job's model (type Model), a processing job's outputs and a transform job's results (DataSet).
- A model package gets an artifact of its own (type Model, SourceUri = the package ARN), its
  containers' image and model artifacts ContributedTo it, a creation action, and it is
  AssociatedWith a context of type ModelGroup for its group.
- An endpoint in service gets a context (type Endpoint, SourceUri = its ARN) and a ModelDeployment
  action that its models' artifacts (or their packages' artifacts) and images ContributedTo and that
  is AssociatedWith the context.

Artifacts are reused by SourceUri ("there can be only one artifact with a unique SourceUri"), which
is what chains them: the model a training job produced is the model its package was built from.
Nothing here fails the operation that triggered it; the entities are written through the lineage
area's own create (handlers/lineage.py).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage.models import Resource

from . import common, lineage

_ARTIFACTS = threading.Lock()  # find-or-create runs in request threads and in the event thread at once


def artifact(ctx: RequestContext, uri: str, artifact_type: str) -> str:
    """The artifact with this SourceUri (created with `artifact_type` when there is none); its ARN."""
    with _ARTIFACTS:
        found = (Resource.select().where((Resource.kind == "artifact") & (Resource.region == ctx.region)
                                         & Resource.data.contains(uri)))
        for row in found:
            if (row.document.get("Source") or {}).get("SourceUri") == uri:
                return row.arn
        return lineage.create_artifact(ctx, {"ArtifactType": artifact_type,
                                             "Source": {"SourceUri": uri}})["ArtifactArn"]


def _named(ctx: RequestContext, kind: str, name: str, params: dict[str, Any]) -> str:
    row = common.find(ctx, kind, name)
    if row is not None:
        return row.arn
    create = lineage.create_context if kind == "context" else lineage.create_action
    try:
        return create(ctx, params)[f"{kind.capitalize()}Arn"]
    except ValidationError:  # created meanwhile
        return common.arn(ctx, kind, name)


def _entity_name(base: str, suffix: str) -> str:
    """AWS's names for its own entities are `<resource>-<hash>-<suffix>`-like; ours are deterministic."""
    digest = hashlib.sha1(base.encode()).hexdigest()[:8]
    return f"{base[:100]}-{digest}-{suffix}".lower()


def link(ctx: RequestContext, source_arn: str, destination_arn: str, association_type: str) -> None:
    """An association, once."""
    if common.find(ctx, lineage.ASSOCIATION, f"{source_arn.lower()}|{destination_arn.lower()}") is not None:
        return
    try:
        lineage.add_association(ctx, {"SourceArn": source_arn, "DestinationArn": destination_arn,
                                      "AssociationType": association_type})
    except ValidationError:  # added meanwhile
        pass


# -- jobs ------------------------------------------------------------------------------------------
def _s3_inputs(kind: str, job: dict[str, Any]) -> list[str]:
    if kind == "training-job":
        return [c["DataSource"]["S3DataSource"]["S3Uri"] for c in job.get("InputDataConfig") or []
                if (c.get("DataSource") or {}).get("S3DataSource")]
    if kind == "processing-job":
        return [i["S3Input"]["S3Uri"] for i in job.get("ProcessingInputs") or [] if i.get("S3Input")]
    source = ((job.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource")
    return [source["S3Uri"]] if source else []


def _image(kind: str, job: dict[str, Any]) -> str | None:
    if kind == "training-job":
        return (job.get("AlgorithmSpecification") or {}).get("TrainingImage")
    if kind == "processing-job":
        return (job.get("AppSpecification") or {}).get("ImageUri")
    return None  # a transform job's image is its model's


def job_started(ctx: RequestContext, kind: str, job: dict[str, Any], component: Resource) -> None:
    """The job's image and S3 inputs ContributedTo its trial component."""
    image = _image(kind, job)
    if image:
        link(ctx, artifact(ctx, image, "Image"), component.arn, "ContributedTo")
    for uri in _s3_inputs(kind, job):
        link(ctx, artifact(ctx, uri, "DataSet"), component.arn, "ContributedTo")


def job_finished(ctx: RequestContext, kind: str, job: dict[str, Any], component: Resource) -> None:
    """What a completed job wrote: its trial component Produced it."""
    produced: list[tuple[str, str]] = []
    if kind == "training-job":
        model = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        produced += [(model, "Model")] if model else []
    elif kind == "processing-job":
        outputs = (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        produced += [(o["S3Output"]["S3Uri"], "DataSet") for o in outputs if o.get("S3Output")]
    else:
        path = (job.get("TransformOutput") or {}).get("S3OutputPath")
        produced += [(path, "DataSet")] if path else []
    for uri, artifact_type in produced:
        link(ctx, component.arn, artifact(ctx, uri, artifact_type), "Produced")


# -- model packages --------------------------------------------------------------------------------
def _containers_contribute(ctx: RequestContext, containers: list[dict[str, Any]], destination: str) -> None:
    for container in containers:
        if container.get("Image"):
            link(ctx, artifact(ctx, container["Image"], "Image"), destination, "ContributedTo")
        data = container.get("ModelDataUrl") or (((container.get("ModelDataSource") or {}).get("S3DataSource")
                                                  or {}).get("S3Uri"))
        if data:
            link(ctx, artifact(ctx, data, "Model"), destination, "ContributedTo")


def model_package(ctx: RequestContext, package: dict[str, Any]) -> str:
    """A new model package's entities (see the module's docstring); the package artifact's ARN."""
    arn = package["ModelPackageArn"]
    own = artifact(ctx, arn, "Model")
    _containers_contribute(ctx, (package.get("InferenceSpecification") or {}).get("Containers") or [], own)
    creation = _named(ctx, "action", _entity_name(package["ModelPackageName"].replace("/", "-"), "creation"), {
        "ActionName": _entity_name(package["ModelPackageName"].replace("/", "-"), "creation"),
        "ActionType": "ModelPackageCreation", "Status": "Completed",
        "Source": {"SourceUri": arn, "SourceType": "ARN"}})
    link(ctx, own, creation, "ContributedTo")
    group = package.get("ModelPackageGroupName")
    if group:
        group_arn = common.arn(ctx, "model-package-group", group)
        context = _named(ctx, "context", _entity_name(group, "ModelGroup"), {
            "ContextName": _entity_name(group, "ModelGroup"), "ContextType": "ModelGroup",
            "Source": {"SourceUri": group_arn, "SourceType": "ARN"}})
        link(ctx, own, context, "AssociatedWith")
    return own


# -- endpoints -------------------------------------------------------------------------------------
def endpoint(ctx: RequestContext, endpoint_doc: dict[str, Any]) -> str:
    """An endpoint in service: its context and its ModelDeployment action; the context's ARN."""
    name, arn = endpoint_doc["EndpointName"], endpoint_doc["EndpointArn"]
    context = _named(ctx, "context", _entity_name(name, "Endpoint"), {
        "ContextName": _entity_name(name, "Endpoint"), "ContextType": "Endpoint",
        "Source": {"SourceUri": arn, "SourceType": "ARN"}})
    config = common.find(ctx, "endpoint-config", endpoint_doc.get("EndpointConfigName") or "")
    suffix = hashlib.sha1((endpoint_doc.get("EndpointConfigName") or "").encode()).hexdigest()[:6]
    deployment = _named(ctx, "action", _entity_name(name, f"{suffix}-deployment"), {
        "ActionName": _entity_name(name, f"{suffix}-deployment"), "ActionType": "ModelDeployment",
        "Status": "Completed", "Source": {"SourceUri": arn, "SourceType": "ARN"}})
    link(ctx, deployment, context, "AssociatedWith")
    variants = (config.document.get("ProductionVariants") or []) if config is not None else []
    for variant in variants:
        model = common.find(ctx, "model", variant.get("ModelName") or "")
        if model is None:
            continue
        doc = model.document
        containers = doc.get("Containers") or ([doc["PrimaryContainer"]] if doc.get("PrimaryContainer") else [])
        for container in containers:
            if container.get("ModelPackageName"):
                package = _package(ctx, container["ModelPackageName"])
                if package is not None:
                    link(ctx, model_package(ctx, package), deployment, "ContributedTo")
        _containers_contribute(ctx, containers, deployment)
    return context


def _package(ctx: RequestContext, name_or_arn: str) -> dict[str, Any] | None:
    row = common.find_named(ctx, "model-package", name_or_arn)
    return row.document if row is not None else None
