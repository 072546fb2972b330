"""Evaluating a definition's expressions: Get (parameters, execution variables, step properties),
Std:Join, Std:JsonGet, and conditions.

A step property path follows the step type's Describe response (`Steps.Train.ModelArtifacts.S3ModelArtifacts`):
lists index as `[0]`, and a list of named things (processing outputs, metrics, output parameters) also
indexes by name, as in `ProcessingOutputConfig.Outputs['train']`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\.?([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class ExpressionError(Exception):
    """An expression cannot be evaluated now (a missing property, a bad JsonGet): the step fails with it."""


@dataclass
class Scope:
    """What an execution's expressions can see."""

    parameters: dict[str, Any]
    execution: dict[str, Any]
    properties: Callable[[str], dict[str, Any] | None]  # a step's property document (None: it did not run)
    read_json: Callable[[str], Any]  # an S3 URI's JSON document (Std:JsonGet)
    property_file: Callable[[str, str], str]  # (step, property file name) -> its S3 URI


def walk(document: Any, path: str, where: str) -> Any:
    """`path` (`A.B[0].C['name']`) inside `document`."""
    value = document
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ExpressionError(f"{where}: cannot parse the property path at '{path[pos:]}'")
        pos = match.end()
        key, index, quoted = match.group(1), match.group(2), match.group(3) or match.group(4)
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise ExpressionError(f"{where}: the property '{key}' does not exist")
            value = value[key]
        elif index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                raise ExpressionError(f"{where}: index [{index}] is out of range")
            value = value[int(index)]
        else:
            value = _by_name(value, quoted, where)
    return value


def _by_name(value: Any, name: str, where: str) -> Any:
    if isinstance(value, dict):
        if name not in value:
            raise ExpressionError(f"{where}: the key '{name}' does not exist")
        return value[name]
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and any(k.endswith("Name") and v == name for k, v in item.items()):
                return item
    raise ExpressionError(f"{where}: no element named '{name}'")


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every expression inside it replaced by its value."""
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Get" and isinstance(arg, str):
            return get(arg, scope)
        if key in ("Std:Join", "Std:JsonGet") and not isinstance(arg, dict):
            raise ExpressionError(f"{key} needs a JSON object")
        if key == "Std:Join":
            parts = evaluate(arg.get("Values") or [], scope)
            return str(arg.get("On", "")).join(_text(p) for p in parts)
        if key == "Std:JsonGet":
            return json_get(arg, scope)
    return {key: evaluate(item, scope) for key, item in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def get(path: str, scope: Scope) -> Any:
    if path.startswith("Parameters."):
        return scope.parameters[path.removeprefix("Parameters.")]
    if path.startswith("Execution."):
        return scope.execution[path.removeprefix("Execution.")]
    step, _, rest = path.removeprefix("Steps.").partition(".")
    document = scope.properties(step)
    if document is None:
        raise ExpressionError(f"{{'Get': '{path}'}}: step '{step}' has no properties (it did not succeed)")
    return walk(document, rest, f"{{'Get': '{path}'}}")


def json_get(arg: dict[str, Any], scope: Scope) -> Any:
    """Std:JsonGet on a PropertyFile of a processing step, or on an S3Uri."""
    where = "Std:JsonGet"
    if "PropertyFile" in arg:
        ref = arg["PropertyFile"]
        path = ref.get("Get", "") if isinstance(ref, dict) else ""
        step, _, name = path.removeprefix("Steps.").partition(".PropertyFiles.")
        if not step or not name:
            raise ExpressionError(f"{where}: PropertyFile must be {{'Get': 'Steps.<step>.PropertyFiles.<name>'}}")
        uri = scope.property_file(step, name)
    elif "S3Uri" in arg:
        uri = _text(evaluate(arg["S3Uri"], scope))
    else:
        raise ExpressionError(f"{where} needs PropertyFile or S3Uri")
    try:
        document = scope.read_json(uri)
    except Exception as exc:
        raise ExpressionError(f"{where}: cannot read the JSON file {uri}: {exc}") from None
    return walk(document, str(evaluate(arg.get("Path", ""), scope)), f"{where} {uri}")


def condition(spec: dict[str, Any], scope: Scope) -> bool:
    kind = spec["Type"]
    if kind == "Not":
        return not condition(spec["Condition"], scope)
    if kind == "Or":
        return any(condition(c, scope) for c in spec["Conditions"])
    if kind == "In":
        query = evaluate(spec["QueryValue"], scope)
        return any(_equal(query, evaluate(v, scope)) for v in spec["Values"])
    left, right = evaluate(spec["LeftValue"], scope), evaluate(spec["RightValue"], scope)
    if kind == "Equals":
        return _equal(left, right)
    a, b = _comparable(left, right)
    try:
        return {"GreaterThan": a > b, "GreaterThanOrEqualTo": a >= b, "LessThan": a < b,
                "LessThanOrEqualTo": a <= b}[kind]
    except TypeError:
        raise ExpressionError(f"{kind}: cannot compare {left!r} with {right!r}") from None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers (a JsonGet value or a property may be a numeric string)."""
    try:
        return float(left), float(right)
    except (TypeError, ValueError):
        return left, right


def _equal(left: Any, right: Any) -> bool:
    if left == right:
        return True
    a, b = _comparable(left, right)
    return isinstance(a, float) and a == b if isinstance(b, float) else _text(left) == _text(right)


def all_true(conditions: list[dict[str, Any]], scope: Scope) -> bool:
    """A Condition step's Conditions list: ANDed."""
    return all(condition(c, scope) for c in conditions)
