"""Search: one evaluator over the stored Describe documents of any searchable kind.

Each resource type names its storage kind, the SearchRecord member its results go in, and how to
complete a document for search (Tags, a trial component's Parents). Filters then walk property
paths through those documents generically: `Parents.TrialName` matches any element of a list,
`Tags.<key>` and `Metrics.<name>.Max` pick list elements by their Key or MetricName, `Parameters.lr`
compares a parameter's String/NumberValue. No per-kind code is involved in filtering or sorting;
the kinds whose records are built from rows (`RECORDS`) have their builders in search_records.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import experiments, feature_groups
from . import search_records as built

_MISSING = object()


def _with_parents(rows: list[Resource], docs: list[dict[str, Any]]) -> None:
    parents = resources.related_many([row.id for row in rows], experiments.COMPONENTS, to_parents=True)
    experiment_of: dict[int, Any] = {}  # a trial's document is read once, however many components it has
    for row, doc in zip(rows, docs, strict=True):
        trials = parents.get(row.id, [])
        for t in trials:
            if t.id not in experiment_of:
                experiment_of[t.id] = t.document.get("ExperimentName")
        doc["Parents"] = [{"TrialName": t.name, "ExperimentName": experiment_of[t.id]} for t in trials]
        if doc.get("Source"):
            doc["SourceDetail"] = {}


def _with_components(rows: list[Resource], docs: list[dict[str, Any]]) -> None:
    children = resources.related_many([row.id for row in rows], experiments.COMPONENTS, to_parents=False)
    for row, doc in zip(rows, docs, strict=True):
        doc["TrialComponentSummaries"] = [
            {"TrialComponentName": c.name, "TrialComponentArn": c.arn, "CreationTime": c.creation_time,
             "TrialComponentSource": c.document.get("Source")} for c in children.get(row.id, [])]


Completion = Callable[[list[Resource], list[dict]], None]
# Resource -> (storage kind, SearchRecord member, extra completion of a batch of documents)
TYPES: dict[str, tuple[str, str, Completion | None]] = {
    "TrainingJob": ("training-job", "TrainingJob", None),
    "Experiment": ("experiment", "Experiment", None),
    "ExperimentTrial": ("experiment-trial", "Trial", _with_components),
    "ExperimentTrialComponent": ("experiment-trial-component", "TrialComponent", _with_parents),
    "Endpoint": ("endpoint", "Endpoint", None),
    "ModelPackage": ("model-package", "ModelPackage", None),
    "ModelPackageGroup": ("model-package-group", "ModelPackageGroup", None),
    "HyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJob", None),
    "FeatureGroup": ("feature-group", "FeatureGroup", feature_groups.with_all_tags),
    "FeatureMetadata": ("feature-group", "FeatureMetadata", None),
    "Pipeline": ("pipeline", "Pipeline", None),
    "PipelineExecution": ("pipeline-execution", "PipelineExecution", None),
    "PipelineVersion": ("pipeline", "PipelineVersion", None),
    "Project": ("project", "Project", None),
    "ModelCard": ("model-card", "ModelCard", None),
    "Model": ("model", "Model", None),
    "Job": ("job", "Job", None),
    "HubContent": ("hub-content", "HubContent", None),
}


@dataclass(frozen=True)
class Records:
    """How a kind's search records come from its rows where they are not the stored documents themselves:
    a status kept in the row, one record per feature of a group. `prepare` runs before the rows are read
    (transitions settled on read); `computed` names top-level members absent from the stored JSON, on
    which the SQL prefilter must not narrow."""

    build: Callable[[list[Resource]], list[tuple[Resource, dict[str, Any]]]]
    prepare: Callable[[RequestContext], None] | None = None
    computed: frozenset[str] = frozenset()


RECORDS: dict[str, Records] = {
    "FeatureGroup": Records(feature_groups.group_records, feature_groups.settle_for_search,
                            frozenset({"FeatureGroupStatus"})),
    "FeatureMetadata": Records(feature_groups.metadata_records, feature_groups.settle_for_search,
                               frozenset({"AllParameters"})),
    "Pipeline": Records(built.pipeline_records),
    "PipelineExecution": Records(built.execution_records, computed=frozenset(
        {"PipelineExecutionStatus", "PipelineParameters", "PipelineVersionDisplayName"})),
    "PipelineVersion": Records(built.version_records, computed=frozenset(
        {"LastExecutedPipelineExecutionArn", "LastExecutedPipelineExecutionDisplayName",
         "LastExecutedPipelineExecutionStatus"})),
    "Project": Records(built.declared_records, built.settled("Project")),
    "ModelCard": Records(built.model_card_records, built.settled("ModelCard"),
                         frozenset({"ModelId", "RiskRating", "ModelPackageGroupName"})),
    "Model": Records(built.model_records, computed=frozenset(
        {"Model", "Endpoints", "LastBatchTransformJob", "MonitoringSchedules", "ModelCard"})),
    "Job": Records(built.declared_records, built.settled("Job")),
    "HubContent": Records(built.declared_records, built.settled("HubContent")),
}
# The properties on which AWS allows Contains more than once in one expression (Filter's documentation),
# by SearchRecord member; anywhere else "'CONTAINS' operator usage limit of 1 exceeded."
_CONTAINS_ANY = {"Experiment": {"DisplayName", "ExperimentName", "Tags"},
                 "Trial": {"DisplayName", "TrialName", "Tags"},
                 "TrialComponent": {"DisplayName", "TrialComponentName", "Tags", "InputArtifacts", "OutputArtifacts"}}
_MAX_ELEMENTS = 50  # Filters, NestedFilters and SubExpressions, recursively (Search's documentation)
_ORDERED = ("GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo")
_KEYS = ("Key", "MetricName", "Name")  # what names the elements of a list, for path steps


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()
    return None


def _scalar(value: Any) -> Any:
    if isinstance(value, dict):  # a trial component parameter, a tag seen through its key
        for member in ("NumberValue", "StringValue", "Value"):
            if member in value:
                return value[member]
    return value


def _step(value: Any, segment: str) -> list[Any]:
    if isinstance(value, dict):
        if segment in value:
            return [value[segment]]
        lowered = {k.lower(): v for k, v in value.items()}
        return [lowered[segment.lower()]] if segment.lower() in lowered else []
    if isinstance(value, list):
        named = [item for item in value if isinstance(item, dict) and any(item.get(k) == segment for k in _KEYS)]
        if named:
            return named
        return [found for item in value for found in _step(item, segment)]
    return []


def values_at(doc: Any, path: str) -> list[Any]:
    """Every value `path` (dot-separated) reaches in `doc`: lists fan out, named elements are picked."""
    current = [doc]
    for segment in path.split("."):
        current = [found for value in current for found in _step(value, segment)]
    out: list[Any] = []
    for value in current:
        value = _scalar(value)
        out.extend(value if isinstance(value, list) else [value])
    return out


def _compare(operator: str, actual: Any, wanted: str, integral: bool = False) -> bool:
    if operator == "Exists":
        return True
    if operator == "In":
        return any(_compare("Equals", actual, item.strip()) for item in wanted.split(","))
    if operator == "Contains":
        return isinstance(actual, str) and wanted.lower() in actual.lower()
    a, w = _number(actual), _number(wanted)
    left: Any
    right: Any
    if a is not None and w is not None:
        left, right = (math.trunc(a) if integral else a), w
    else:
        left, right = str(actual).lower() if isinstance(actual, bool) else str(actual), wanted
    checks = {"Equals": left == right, "NotEquals": left != right}
    if operator in checks:
        return checks[operator]
    if not isinstance(left, float | int):  # a text property: ordered operators never hold on it
        return False
    return {"GreaterThan": left > right, "GreaterThanOrEqualTo": left >= right,
            "LessThan": left < right, "LessThanOrEqualTo": left <= right}[operator]


def _matches(doc: Any, flt: dict[str, Any]) -> bool:
    operator = flt.get("Operator") or "Equals"
    found = values_at(doc, flt["Name"])
    if operator == "NotExists":
        return not found
    wanted = flt.get("Value") or ""
    # "If the specified Value is an integer, the decimal hyperparameter values are treated as integers."
    integral = flt["Name"].startswith("HyperParameters.") and re.fullmatch(r"-?\d+", wanted) is not None
    if operator == "NotEquals":
        return all(_compare("NotEquals", value, wanted, integral) for value in found)
    return any(_compare(operator, value, wanted, integral) for value in found)


def _nested(doc: dict, nested: dict[str, Any]) -> bool:
    """NestedFilters: all its filters hold within one element of the nested list."""
    elements = [e for value in values_at(doc, nested["NestedPropertyName"])
                for e in (value if isinstance(value, list) else [value])]
    prefix = nested["NestedPropertyName"] + "."
    return any(all(_matches(element, {**f, "Name": f["Name"][len(prefix):] if f["Name"].startswith(prefix)
                                      else f["Name"]}) for f in nested["Filters"]) for element in elements)


def evaluate(doc: dict, expression: dict[str, Any] | None) -> bool:
    if not expression:
        return True
    results = [_matches(doc, f) for f in expression.get("Filters", [])]
    results += [_nested(doc, n) for n in expression.get("NestedFilters", [])]
    results += [evaluate(doc, sub) for sub in expression.get("SubExpressions", [])]
    if not results:
        return True
    return any(results) if expression.get("Operator") == "Or" else all(results)


def _sorted(hits: list[tuple[Resource, dict]], path: str, descending: bool) -> list[tuple[Resource, dict]]:
    """By the first value at `path` (numbers and timestamps as numbers, else text), ties by creation;
    resources without the property come last in either order, as Elasticsearch's default puts them."""
    keyed, missing = [], []
    for hit in hits:
        values = values_at(hit[1], path)
        if not values:
            missing.append(hit)
            continue
        number = _number(values[0])
        keyed.append(((0, number, "") if number is not None else (1, 0.0, str(values[0])), hit[0].id, hit))
    keyed.sort(key=lambda item: (item[0], item[1]), reverse=descending)
    return [hit for _, _, hit in keyed] + missing


def _validate(expression: dict[str, Any], member: str) -> None:
    """AWS's rules on an expression that botocore's shape cannot state."""
    elements, contains = 0, 0

    def walk(expr: dict[str, Any]) -> None:
        nonlocal elements, contains
        if not (expr.get("Filters") or expr.get("NestedFilters") or expr.get("SubExpressions")):
            raise ValidationError("A SearchExpression must contain at least one Filter, NestedFilter or "
                                  "SubExpression.")
        filters = list(expr.get("Filters", []))
        for nested in expr.get("NestedFilters", []):
            filters += nested["Filters"]
        elements += len(expr.get("Filters", [])) + len(expr.get("NestedFilters", [])) + len(
            expr.get("SubExpressions", []))
        for flt in filters:
            operator = flt.get("Operator") or "Equals"
            if operator not in ("Exists", "NotExists") and flt.get("Value") is None:
                raise ValidationError(f"The filter on {flt['Name']} with operator {operator} needs a Value.")
            if operator in _ORDERED and _number(flt["Value"]) is None:
                raise ValidationError(f"The filter on {flt['Name']} with operator {operator} needs a numeric "
                                      f"Value or an ISO 8601 timestamp (YYYY-mm-dd'T'HH:MM:SS); got "
                                      f"'{flt['Value']}'.")
            if operator == "Contains" and flt["Name"].split(".", 1)[0] not in _CONTAINS_ANY.get(member, ()):
                contains += 1
        for sub in expr.get("SubExpressions", []):
            walk(sub)

    walk(expression)
    if elements > _MAX_ELEMENTS:
        raise ValidationError(f"A SearchExpression may hold at most {_MAX_ELEMENTS} Filters, NestedFilters and "
                              f"SubExpressions in all; this one holds {elements}.")
    if contains > 1:
        raise ValidationError("'CONTAINS' operator usage limit of 1 exceeded.")


_ADDED = ("Tags", "AllTags", "Parents", "TrialComponentSummaries", "SourceDetail")  # what completion adds
_PLAIN = re.compile(r"^[A-Za-z][\w.:/-]*$")  # a value stored verbatim in the JSON text


def _complete(rows: list[Resource], docs: list[dict[str, Any]], complete: Completion | None) -> None:
    """Add what a search result has beyond the stored document (tags, times, a kind's extras), in bulk."""
    tags = resources.tags_of_many(row.id for row in rows)
    for row, doc in zip(rows, docs, strict=True):
        doc["Tags"] = tags.get(row.id, [])
        doc.setdefault("CreationTime", row.creation_time)
        doc.setdefault("LastModifiedTime", row.last_modified_time)
    if complete:
        complete(rows, docs)


def _names(expression: dict[str, Any] | None) -> list[str]:
    """Every property path the expression (or its sub-expressions) reads."""
    if not expression:
        return []
    names = [f["Name"] for f in expression.get("Filters", [])]
    names += [n["NestedPropertyName"] for n in expression.get("NestedFilters", [])]
    return names + [name for sub in expression.get("SubExpressions", []) for name in _names(sub)]


def _visibility(conditions: list[dict[str, Any]]) -> dict[str, str]:
    """VisibilityConditions as tag key -> value; every Key has the form `Tags.<key>` (its documentation)."""
    out = {}
    for condition in conditions:
        key = condition.get("Key") or ""
        if not key.startswith("Tags.") or len(key) == len("Tags."):
            raise ValidationError(f"VisibilityConditions Key '{key}' must be in the format Tags.<key>.")
        out[key[len("Tags."):]] = condition.get("Value") or ""
    return out


def _visible(doc: dict[str, Any], conditions: dict[str, str]) -> bool:
    """A result is left out when it has a tag the conditions name with another value; one without
    that tag stays in (VisibilityConditions' documentation)."""
    tags = {tag["Key"]: tag.get("Value", "") for tag in doc.get("Tags") or []}
    return all(tags.get(key, value) == value for key, value in conditions.items())


def _needs_completion(paths: list[str]) -> bool:
    return any(path.split(".", 1)[0] in _ADDED for path in paths)


def _prefilter(query: Any, expression: dict[str, Any] | None, computed: frozenset[str] = frozenset()) -> Any:
    """Narrow the scan in SQL: a top-level AND filter `Equals <plain string>` on a stored member
    can only match rows whose JSON text contains that string (LIKE: a superset, never a miss)."""
    if not expression or expression.get("Operator") == "Or":
        return query
    for flt in expression.get("Filters", []):
        value = flt.get("Value")
        top = flt["Name"].split(".", 1)[0]
        if ((flt.get("Operator") or "Equals") == "Equals" and isinstance(value, str) and _PLAIN.match(value)
                and top not in _ADDED and top not in computed and _number(value) is None):
            query = query.where(Resource.data.contains(value))
    return query


# ResourceType values for which botocore's SearchRecord has no member: no result could carry them
_NO_RECORD = ("Image", "ImageVersion")


def _type(resource: str) -> tuple[str, str, Completion | None]:
    if resource in _NO_RECORD:
        raise ValidationError(f"Search over {resource} is not supported: a SearchRecord has no member for "
                              f"an {resource}; use List{resource}s.")
    if resource not in TYPES:
        raise ValidationError(f"Search over {resource} is not supported by sagemaker-emulator; "
                              f"it searches {', '.join(sorted(TYPES))}.")
    return TYPES[resource]


def search(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    kind, member, complete = _type(params["Resource"])
    expression = params.get("SearchExpression")
    if expression is not None:
        _validate(expression, member)
    conditions = _visibility(params.get("VisibilityConditions") or [])
    if params.get("CrossAccountFilterOption") == "CrossAccount":
        # only what other accounts made discoverable (RAM shares of a resource catalog); the emulator
        # serves one account, so no other account has shared anything
        return {"Results": [], "TotalHits": {"Value": 0, "Relation": "EqualTo"}}
    sort_by = params.get("SortBy") or "LastModifiedTime"
    start = _offset(params.get("NextToken"), params)
    limit = params.get("MaxResults") or 10
    # documents are completed (tags, parents: more queries) before filtering only if the search reads
    # what completion adds; otherwise only the page returned is completed
    early = _needs_completion([*_names(expression), sort_by]) or bool(conditions)
    rows, docs = _candidates(ctx, params["Resource"], kind, expression)
    if early:
        _complete(rows, docs, complete)
    else:
        for row, doc in zip(rows, docs, strict=True):
            doc.setdefault("CreationTime", row.creation_time)
            doc.setdefault("LastModifiedTime", row.last_modified_time)
    hits = [(row, doc) for row, doc in zip(rows, docs, strict=True)
            if evaluate(doc, expression) and _visible(doc, conditions)]
    hits = _sorted(hits, sort_by, (params.get("SortOrder") or "Descending") == "Descending")
    page = hits[start:start + limit]
    if not early:
        _complete([row for row, _ in page], [doc for _, doc in page], complete)
    out: dict[str, Any] = {"Results": [{member: doc} for _, doc in page],
                           "TotalHits": {"Value": len(hits), "Relation": "EqualTo"}}
    if start + limit < len(hits):
        out["NextToken"] = base64.urlsafe_b64encode(json.dumps([_fingerprint(params), start + limit])
                                                    .encode()).decode()
    return out


def _candidates(ctx: RequestContext, resource: str, kind: str,
                expression: dict[str, Any] | None) -> tuple[list[Resource], list[dict[str, Any]]]:
    """The region's rows of `kind` that the expression may match, with their search records (not completed)."""
    records = RECORDS.get(resource)
    if records is not None and records.prepare is not None:
        records.prepare(ctx)
    rows = list(_prefilter(Resource.select().where((Resource.kind == kind) & (Resource.region == ctx.region)),
                           expression, records.computed if records is not None else frozenset()))
    if records is None:
        return rows, [row.document for row in rows]
    pairs = records.build(rows)
    return [row for row, _ in pairs], [doc for _, doc in pairs]


# what GetSearchSuggestions completes
_SUGGESTED = ("HyperParameters", "Tags", "Metrics", "Parameters", "PipelineParameters")


def _property_names(doc: dict[str, Any]) -> set[str]:
    """`HyperParameters.<name>`, `Tags.<key>`, `Metrics.<name>`, `Parameters.<name>`,
    `PipelineParameters.<name>`: the names under those members that a Search filter on the same path
    reads (values_at)."""
    names: set[str] = set()
    for member in _SUGGESTED:
        value = doc.get(member)
        if isinstance(value, dict):
            names.update(f"{member}.{key}" for key in value)
        elif isinstance(value, list):
            names.update(f"{member}.{item[key]}" for item in value if isinstance(item, dict)
                         for key in _KEYS if isinstance(item.get(key), str))
    return names


def get_search_suggestions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Property names for Search over `Resource` that begin with the hint (case-insensitively), from
    the hyperparameters, tags, metrics and parameters the region's resources of that type have."""
    kind, _member, complete = _type(params["Resource"])
    hint = ((params.get("SuggestionQuery") or {}).get("PropertyNameQuery") or {}).get("PropertyNameHint", "")
    rows, docs = _candidates(ctx, params["Resource"], kind, None)
    _complete(rows, docs, complete)
    names = {name for doc in docs for name in _property_names(doc) if name.lower().startswith(hint.lower())}
    return {"PropertyNameSuggestions": [{"PropertyName": name} for name in sorted(names)]}


def _fingerprint(params: dict[str, Any]) -> str:
    return json.dumps([params.get(k) for k in ("Resource", "SearchExpression", "SortBy", "SortOrder")],
                      sort_keys=True)


def _offset(token: str | None, params: dict[str, Any]) -> int:
    if not token:
        return 0
    try:
        fingerprint, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise ValidationError("The NextToken is invalid.") from None
    if fingerprint != _fingerprint(params) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("The NextToken does not belong to this search.")
    return offset
