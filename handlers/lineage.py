"""Lineage: actions, artifacts, contexts and the associations between any two entities.

An artifact has no name of its own in its ARN (AWS gives it an id); actions and contexts are named.
An association is a row of kind `association`, named `<source arn>|<destination arn>`, so it is
listed, paged and deleted like every other resource. QueryLineage walks these rows.
"""

from __future__ import annotations

import uuid
from typing import Any

from sagemaker_emulator.protocol.errors import ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import common, lineage_groups

ASSOCIATION = "association"
# kind -> (noun, Name member, Type member)
ENTITIES = {"action": ("Action", "ActionName", "ActionType"), "artifact": ("Artifact", "ArtifactName", "ArtifactType"),
            "context": ("Context", "ContextName", "ContextType")}
_TYPES = {"action": "Action", "artifact": "Artifact", "context": "Context", "experiment-trial-component":
          "ExperimentTrialComponent", "experiment-trial": "ExperimentTrial", "experiment": "Experiment",
          "training-job": "TrainingJob", "processing-job": "ProcessingJob", "transform-job": "TransformJob",
          "model-package": "ModelPackage", "model-package-group": "ModelPackageGroup", "endpoint": "Endpoint",
          "model": "Model"}


def _missing(arn_or_name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Entity {arn_or_name} does not exist.")


def _entity(ctx: RequestContext, kind: str, value: str) -> Resource:
    row = common.find_named(ctx, kind, value)
    if row is None:
        raise _missing(value)
    return row


def _create(ctx: RequestContext, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    noun, name_key, _ = ENTITIES[kind]
    name: str = params[name_key] if kind != "artifact" else uuid.uuid4().hex
    document = {k: v for k, v in params.items() if k != "Tags"}
    now = resources.now()
    document.update({f"{noun}Arn": common.arn(ctx, kind, name), "CreationTime": now, "LastModifiedTime": now,
                     "CreatedBy": {}, "LastModifiedBy": {}})
    common.create(ctx, kind, name, document, noun.lower(), tags=params.get("Tags"), duplicate=lambda arn: (
        ValidationError(f"{noun} '{name}' already exists (arn {arn}).")))
    lineage_groups.ensure(ctx)
    return {f"{noun}Arn": document[f"{noun}Arn"]}


def _update(ctx: RequestContext, kind: str, key: str, params: dict[str, Any], members: tuple[str, ...]
            ) -> dict[str, Any]:
    row = _entity(ctx, kind, params[key])

    def mutate(doc: dict) -> None:
        doc.update({k: params[k] for k in members if k in params})
        properties = {**doc.get("Properties", {}), **params.get("Properties", {})}
        for name in params.get("PropertiesToRemove", []):
            properties.pop(name, None)
        doc["Properties"] = properties
        doc["LastModifiedTime"] = resources.now()

    resources.update(kind, row.region, row.name, mutate)
    return {f"{ENTITIES[kind][0]}Arn": row.arn}


def _delete(ctx: RequestContext, kind: str, value: str) -> dict[str, Any]:
    row = _entity(ctx, kind, value)
    for association in _associations(ctx, lambda doc: row.arn in (doc["SourceArn"], doc["DestinationArn"])):
        common.delete(ctx, association)
    common.delete(ctx, row)
    return {f"{ENTITIES[kind][0]}Arn": row.arn}


def _list(ctx: RequestContext, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    noun, name_key, type_key = ENTITIES[kind]
    uri, wanted_type = params.get("SourceUri"), params.get(type_key)
    ids = None
    if uri or wanted_type:
        rows = Resource.select().where((Resource.kind == kind) & (Resource.region == ctx.region))
        ids = [row.id for row in rows if (not uri or (row.document.get("Source") or {}).get("SourceUri") == uri)
               and (not wanted_type or row.document.get(type_key) == wanted_type)]
    query = common.list_query({**params, "CreationTimeAfter": params.get("CreatedAfter"),
                               "CreationTimeBefore": params.get("CreatedBefore")})
    query.ids = ids
    members = (f"{noun}Arn", name_key, "Source", type_key, "Status", "CreationTime", "LastModifiedTime")
    return common.page_of(ctx, kind, query, f"{noun}Summaries",
                          lambda row: {k: row.document[k] for k in members if k in row.document})


def _named_entity(kind: str, key: str, members: tuple[str, ...]) -> tuple[Any, ...]:
    """Create/Describe/Update/Delete/List of an entity looked up by its name (actions, contexts)."""
    def create(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _create(ctx, kind, params)

    def describe(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _entity(ctx, kind, params[key]).document

    def update(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _update(ctx, kind, key, params, members)

    def delete(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _delete(ctx, kind, params[key])

    def listing(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _list(ctx, kind, params)

    return create, describe, update, delete, listing


create_action, describe_action, update_action, delete_action, list_actions = _named_entity(
    "action", "ActionName", ("Description", "Status"))
create_context, describe_context, update_context, delete_context, list_contexts = _named_entity(
    "context", "ContextName", ("Description",))


def create_artifact(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _create(ctx, "artifact", params)


def describe_artifact(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _entity(ctx, "artifact", params["ArtifactArn"]).document


def update_artifact(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _update(ctx, "artifact", "ArtifactArn", params, ("ArtifactName",))


def delete_artifact(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("ArtifactArn"):
        return _delete(ctx, "artifact", params["ArtifactArn"])
    uri = (params.get("Source") or {}).get("SourceUri")
    if not uri:
        raise ValidationError("Either ArtifactArn or Source must be given.")
    found = _list(ctx, "artifact", {"SourceUri": uri, "MaxResults": 1})["ArtifactSummaries"]
    if not found:
        raise _missing(uri)
    return _delete(ctx, "artifact", found[0]["ArtifactArn"])


def list_artifacts(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _list(ctx, "artifact", params)


# -- associations ------------------------------------------------------------------------------------
def _end(arn: str) -> Resource:
    row = resources.get_by_arn(arn)
    if row is None:
        raise _missing(arn)
    return row


def _display_name(row: Resource) -> str | None:
    if row.kind == "artifact":
        return row.document.get("ArtifactName")
    return row.name


def _end_type(row: Resource) -> str:
    """An association's Source/DestinationType: the entity's own type (ArtifactType Model, ActionType
    ModelDeployment, a job's component TrainingJob), as the SDK's ListAssociations filters expect;
    the kind's noun for what has none."""
    if row.kind in _LINEAGE_TYPES:
        return _vertex(row).get("Type") or _LINEAGE_TYPES[row.kind]
    return _TYPES.get(row.kind, row.kind)


def add_association(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    source, destination = _end(params["SourceArn"]), _end(params["DestinationArn"])
    document: dict[str, Any] = {"SourceArn": source.arn, "DestinationArn": destination.arn,
                "SourceType": _end_type(source), "DestinationType": _end_type(destination),
                "SourceName": _display_name(source),
                "DestinationName": _display_name(destination), "CreationTime": resources.now(), "CreatedBy": {}}
    if params.get("AssociationType"):
        document["AssociationType"] = params["AssociationType"]
    common.create(ctx, ASSOCIATION, f"{source.arn}|{destination.arn}", document, "association",
                  duplicate=lambda arn: ValidationError(
                      f"Association from {source.arn} to {destination.arn} already exists."))
    return {"SourceArn": source.arn, "DestinationArn": destination.arn}


def delete_association(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = f"{params['SourceArn'].lower()}|{params['DestinationArn'].lower()}"
    row = common.find(ctx, ASSOCIATION, name)
    if row is None:
        raise ResourceNotFound(f"Association from {params['SourceArn']} to {params['DestinationArn']} "
                               "does not exist.")
    common.delete(ctx, row)
    return {"SourceArn": params["SourceArn"], "DestinationArn": params["DestinationArn"]}


def _associations(ctx: RequestContext, keep: Any) -> list[Resource]:
    rows = Resource.select().where((Resource.kind == ASSOCIATION) & (Resource.region == ctx.region))
    return [row for row in rows if keep(row.document)]


def list_associations(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    filters = {key: params[key] for key in ("SourceArn", "DestinationArn", "SourceType", "DestinationType",
                                            "AssociationType") if params.get(key)}
    for key in ("SourceArn", "DestinationArn"):
        if key in filters:
            filters[key] = filters[key].lower()
    ids = [row.id for row in _associations(ctx, lambda doc: all(doc.get(k) == v for k, v in filters.items()))]
    query = common.list_query({**params, "CreationTimeAfter": params.get("CreatedAfter"),
                               "CreationTimeBefore": params.get("CreatedBefore")})
    query.ids = ids
    return common.page_of(ctx, ASSOCIATION, query, "AssociationSummaries", lambda row: row.document)


_LINEAGE_TYPES = {"artifact": "Artifact", "action": "Action", "context": "Context",
                  "experiment-trial-component": "TrialComponent"}


def _vertex(row: Resource) -> dict[str, Any]:
    """A lineage entity as QueryLineage shows it: its LineageType and its Type (an artifact's ArtifactType,
    ..., a job's trial component its job kind: Source SageMakerTrainingJob -> TrainingJob)."""
    vertex: dict[str, Any] = {"Arn": row.arn, "LineageType": _LINEAGE_TYPES.get(row.kind, "TrialComponent")}
    doc = row.document
    if row.kind in ENTITIES:
        entity_type = doc.get(ENTITIES[row.kind][2])
    else:
        entity_type = ((doc.get("Source") or {}).get("SourceType") or "").removeprefix("SageMaker") or None
    if entity_type:
        vertex["Type"] = entity_type
    return vertex


def _wanted(row: Resource, vertex: dict[str, Any], filters: dict[str, Any]) -> bool:
    if filters.get("Types") and vertex.get("Type") not in filters["Types"]:
        return False
    if filters.get("LineageTypes") and vertex["LineageType"] not in filters["LineageTypes"]:
        return False
    times = {"Created": row.creation_time, "Modified": row.last_modified_time}
    for which, value in times.items():
        if filters.get(f"{which}Before") is not None and not value < filters[f"{which}Before"]:
            return False
        if filters.get(f"{which}After") is not None and not value > filters[f"{which}After"]:
            return False
    if filters.get("Properties"):  # "an entity is included ... if it matches any of the provided pairs"
        own = row.document.get("Properties") or {}
        return any(own.get(key) == value for key, value in filters["Properties"].items())
    return True


def _walk(start: str, edges: list[dict[str, Any]], ascending: bool, depth: int
          ) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    """Breadth-first from `start` along (or against) the associations: arn -> depth found, and for each
    arn the edges walked to reach it (its paths back to the start)."""
    forward, backward = ("DestinationArn", "SourceArn") if ascending else ("SourceArn", "DestinationArn")
    by_end: dict[str, list[dict[str, Any]]] = {}
    for edge in edges:
        by_end.setdefault(edge[forward], []).append(edge)
    found: dict[str, int] = {start: 0}
    via: dict[str, list[dict[str, Any]]] = {}
    frontier = [start]
    for level in range(1, depth + 1):
        nxt: list[str] = []
        for arn in frontier:
            for edge in by_end.get(arn, []):
                other = edge[backward]
                if other not in found:
                    found[other] = level
                    nxt.append(other)
                via.setdefault(other, []).append(edge)
        frontier = nxt
        if not frontier:
            break
    return found, via


def query_lineage(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The entities connected to the StartArn (a lineage entity: botocore's pattern admits no other ARN)
    within MaxDepth associations, Ascendants, Descendants or Both (the two walks' union), that match
    Filters; IncludeEdges adds the entities and associations on the paths to them."""
    direction = params.get("Direction") or "Both"
    depth: int = params["MaxDepth"] if params.get("MaxDepth") is not None else 10
    include_edges = params.get("IncludeEdges", True)
    filters = params.get("Filters") or {}
    edges = [row.document for row in _associations(ctx, lambda doc: True)]
    results: dict[str, tuple[int, dict[str, Any]]] = {}
    path_vertices: set[str] = set()
    path_edges: dict[tuple[str, str], dict[str, Any]] = {}
    for start in params.get("StartArns") or []:
        start_arn = start.lower()
        for ascending in ([True, False] if direction == "Both" else [direction == "Ascendants"]):
            found, via = _walk(start_arn, edges, ascending, depth)
            for arn, level in found.items():
                row = resources.get_by_arn(arn)
                if level == 0 or row is None:
                    continue
                vertex = _vertex(row)
                if not _wanted(row, vertex, filters):
                    continue
                if arn not in results or level < results[arn][0]:
                    results[arn] = (level, vertex)
                if include_edges:  # every path back to the start
                    stack = [arn]
                    while stack:
                        for edge in via.get(stack.pop(), []):
                            key = (edge["SourceArn"], edge["DestinationArn"])
                            if key not in path_edges:
                                path_edges[key] = edge
                                back = edge["DestinationArn"] if ascending else edge["SourceArn"]
                                path_vertices.add(back)
                                stack.append(back)
    vertices = [vertex for _, vertex in sorted(results.values(), key=lambda item: (item[0], item[1]["Arn"]))]
    for arn in sorted(path_vertices - set(results)):
        row = resources.get_by_arn(arn)
        if row is not None:
            vertices.append(_vertex(row))
    start_at = _lineage_offset(params.get("NextToken"))
    limit = params.get("MaxResults") or len(vertices) or 1
    out: dict[str, Any] = {"Vertices": vertices[start_at:start_at + limit], "Edges": []}  # the SDK reads Edges always
    if include_edges and start_at == 0:
        out["Edges"] = [{"SourceArn": s, "DestinationArn": d, **({"AssociationType": e["AssociationType"]}
                                                                   if e.get("AssociationType") else {})}
                        for (s, d), e in path_edges.items()]
    if start_at + limit < len(vertices):
        out["NextToken"] = str(start_at + limit)
    return out


def _lineage_offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise ValidationError("The NextToken is invalid.")
    return int(token)
