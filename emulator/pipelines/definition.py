"""A pipeline definition: parsed and validated once, at CreatePipeline/UpdatePipeline, into a graph.

AWS refuses a definition that does not hold together when it is created, naming the step and the
field; so does this module (`DefinitionError`). Steps nested in a Condition's IfSteps/ElseSteps are
flattened into the one graph, remembering which branch gates them. Dependencies are DependsOn plus
every step a step's Arguments reference (`{"Get": "Steps.X..."}`, a PropertyFile of X).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PARAMETER_TYPES = ("String", "Integer", "Boolean", "Float")
EXECUTION_VARIABLES = ("StartDateTime", "CurrentDateTime", "PipelineName", "PipelineArn", "PipelineExecutionId",
                       "PipelineExecutionArn", "TrainingJobName", "ProcessingJobName")
STEP_TYPES = ("Training", "Processing", "Transform", "Tuning", "Model", "RegisterModel", "CreateModel", "Condition",
              "Fail", "Lambda", "Callback", "QualityCheck", "ClarifyCheck", "EMR", "AutoML", "EndpointConfig",
              "Endpoint", "InferenceComponent", "Lineage", "BedrockCustomModel", "BedrockCustomModelDeployment",
              "BedrockModelImport", "BedrockProvisionedModelThroughput")
CONDITION_TYPES = ("Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "In", "Not",
                   "Or")
RETRY_EXCEPTIONS = ("Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.JOB_INTERNAL_ERROR",
                    "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT", "Emr.RESOURCE_LIMIT")
_STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9\-_]+)(.*)$")


class DefinitionError(Exception):
    """The definition is refused: the message names the step and the field."""


@dataclass
class Step:
    name: str
    type: str
    spec: dict[str, Any]  # the step's JSON as given (Arguments, CacheConfig, RetryPolicies, ...)
    depends: set[str] = field(default_factory=set)  # every step that must succeed first
    gate: tuple[str, bool] | None = None  # (condition step, branch) that must choose this step

    @property
    def arguments(self) -> Any:
        return self.spec.get("Arguments") or {}


@dataclass
class Definition:
    parameters: dict[str, dict[str, Any]]
    steps: dict[str, Step]  # in definition order (top-level first, then nested branches)
    raw: dict[str, Any]

    def downstream(self, names: set[str]) -> set[str]:
        """`names` and every step that (transitively) depends on one of them."""
        out = set(names)
        changed = True
        while changed:
            changed = False
            for step in self.steps.values():
                if step.name not in out and (step.depends & out or (step.gate and step.gate[0] in out)):
                    out.add(step.name)
                    changed = True
        return out


def references(value: Any) -> Iterator[str]:
    """Every `Get` path inside `value` (Arguments, conditions, ...)."""
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and len(value) == 1:
            yield value["Get"]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def parse(text: str) -> Definition:
    """Parse and validate a PipelineDefinition (the JSON text)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise DefinitionError(f"The pipeline definition is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DefinitionError("The pipeline definition must be a JSON object.")
    if not isinstance(raw.get("Steps"), list) or not raw["Steps"]:
        raise DefinitionError("The pipeline definition requires a non-empty 'Steps' list.")
    parameters = _parameters(raw.get("Parameters") or [])
    steps: dict[str, Step] = {}
    _collect(raw["Steps"], steps, None)
    for step in steps.values():
        _check_step(step, steps, parameters)
    _check_acyclic(steps)
    return Definition(parameters, steps, raw)


def _parameters(items: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        raise DefinitionError("'Parameters' must be a list.")
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise DefinitionError("Each parameter needs a 'Name'.")
        name, kind = item["Name"], item.get("Type", "String")
        if kind not in PARAMETER_TYPES:
            raise DefinitionError(f"Parameter '{name}': Type '{kind}' is not one of {list(PARAMETER_TYPES)}.")
        if name in out:
            raise DefinitionError(f"Parameter '{name}' is defined twice.")
        if item.get("EnumValues") is not None and not (isinstance(item["EnumValues"], list)
                                                       and all(isinstance(v, str) for v in item["EnumValues"])):
            raise DefinitionError(f"Parameter '{name}': EnumValues must be a list of strings.")
        if item.get("EnumValues") is not None and kind != "String":
            raise DefinitionError(f"Parameter '{name}': EnumValues are allowed on String parameters only.")
        if "DefaultValue" in item and item["DefaultValue"] is not None:
            try:
                coerce(item, item["DefaultValue"])
            except ValueError as exc:
                raise DefinitionError(f"Parameter '{name}': DefaultValue: {exc}") from None
        out[name] = {**item, "Type": kind}
    return out


def coerce(parameter: dict[str, Any], value: Any) -> Any:
    """A parameter value (a start's string or a definition's default) as its type; ValueError if it is not."""
    kind, name = parameter.get("Type", "String"), parameter["Name"]
    try:
        if kind == "Integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError(value)
    except (TypeError, ValueError):
        raise ValueError(f"the value '{value}' of parameter {name} is not of type {kind}") from None
    text = str(value)
    allowed = parameter.get("EnumValues")
    if allowed and text not in allowed:
        raise ValueError(f"the value '{text}' of parameter {name} is not one of {allowed}")
    return text


def _collect(items: Any, steps: dict[str, Step], gate: tuple[str, bool] | None) -> list[str]:
    names = []
    for item in items:
        if isinstance(item, str):  # a branch naming a step defined elsewhere
            names.append(item)
            continue
        if not isinstance(item, dict):
            raise DefinitionError("Each step must be a JSON object with Name, Type and Arguments.")
        name = item.get("Name")
        if not isinstance(name, str) or not _STEP_NAME.match(name):
            raise DefinitionError(f"Step name {name!r} must match [A-Za-z0-9-_]{{1,64}}.")
        if name in steps:
            raise DefinitionError(f"Step '{name}' is defined more than once.")
        kind = item.get("Type")
        if kind not in STEP_TYPES:
            raise DefinitionError(f"Step '{name}': Type {kind!r} is not a supported step type.")
        step = steps[name] = Step(name, kind, item, gate=gate)
        if kind == "Condition":
            args = item.get("Arguments")
            if not isinstance(args, dict):
                raise DefinitionError(f"Step '{name}': Arguments must hold Conditions, IfSteps and ElseSteps.")
            for branch, key in ((True, "IfSteps"), (False, "ElseSteps")):
                if not isinstance(args.get(key, []), list):
                    raise DefinitionError(f"Step '{name}': Arguments.{key} must be a list.")
                for child in _collect(args.get(key, []), steps, (name, branch)):
                    steps[child].gate = steps[child].gate or (name, branch)
        names.append(step.name)
    return names


def _check_shapes(spec: dict[str, Any], where: str) -> None:
    """The members the scheduler reads have the JSON types it expects."""
    for key, kind in (("DependsOn", list), ("RetryPolicies", list), ("PropertyFiles", list), ("CacheConfig", dict),
                      ("OutputParameters", list)):
        if spec.get(key) is not None and not isinstance(spec[key], kind):
            raise DefinitionError(f"{where}: {key} must be a JSON {'list' if kind is list else 'object'}.")
    for key in ("RetryPolicies", "PropertyFiles", "OutputParameters"):
        if not all(isinstance(item, dict) for item in spec.get(key) or []):
            raise DefinitionError(f"{where}: each of {key} must be a JSON object.")
    for policy in spec.get("RetryPolicies") or []:
        if not isinstance(policy.get("ExceptionType", []), list):
            raise DefinitionError(f"{where}: RetryPolicies.ExceptionType must be a list.")
        for key in ("IntervalSeconds", "BackoffRate", "MaxAttempts", "ExpireAfterMin"):
            value = policy.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise DefinitionError(f"{where}: RetryPolicies.{key} must be a non-negative number.")
    for item in spec.get("PropertyFiles") or []:
        if not all(isinstance(item.get(k), str) for k in ("PropertyFileName", "OutputName", "FilePath")):
            raise DefinitionError(f"{where}: each PropertyFile needs PropertyFileName, OutputName and FilePath.")
    for key in ("SqsQueueUrl", "FunctionArn", "DisplayName", "Description"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise DefinitionError(f"{where}: {key} must be a string.")


def _check_step(step: Step, steps: dict[str, Step], parameters: dict[str, dict[str, Any]]) -> None:
    spec, where = step.spec, f"Step '{step.name}'"
    _check_shapes(spec, where)
    for key in ("IfSteps", "ElseSteps"):
        for child in (step.arguments.get(key, []) if step.type == "Condition" else []):
            if isinstance(child, str) and child not in steps:
                raise DefinitionError(f"{where}: Arguments.{key} names the step '{child}', which is not defined.")
    depends = spec.get("DependsOn") or []
    if not isinstance(depends, list):
        raise DefinitionError(f"{where}: DependsOn must be a list of step names.")
    for other in depends:
        if not isinstance(other, str) or other not in steps:
            raise DefinitionError(f"{where}: DependsOn names the step '{other}', which is not defined.")
        step.depends.add(other)
    if step.type != "Condition" and not isinstance(spec.get("Arguments", {}), dict):
        raise DefinitionError(f"{where}: Arguments must be a JSON object.")
    body = {k: v for k, v in spec.items() if k not in ("Name", "Type", "DependsOn")}
    if step.type == "Condition":  # the nested steps are checked on their own
        body = {"Arguments": {"Conditions": step.arguments.get("Conditions")}}
        _check_conditions(step, step.arguments.get("Conditions"))
    for path in references(body):
        step.depends |= _check_reference(where, path, steps, parameters)
    step.depends.discard(step.name)
    for policy in spec.get("RetryPolicies") or []:
        for exc in policy.get("ExceptionType") or []:
            if exc not in RETRY_EXCEPTIONS:
                raise DefinitionError(f"{where}: RetryPolicies.ExceptionType '{exc}' is not one of "
                                      f"{list(RETRY_EXCEPTIONS)}.")
        if "MaxAttempts" in policy and "ExpireAfterMin" in policy:
            raise DefinitionError(f"{where}: RetryPolicies may set MaxAttempts or ExpireAfterMin, not both.")
    cache = spec.get("CacheConfig")
    if cache is not None and cache.get("Enabled") and cache.get("ExpireAfter"):
        from .cache import parse_duration

        try:
            parse_duration(cache["ExpireAfter"])
        except ValueError:
            raise DefinitionError(f"{where}: CacheConfig.ExpireAfter '{cache['ExpireAfter']}' is not an ISO 8601 "
                                  "duration.") from None
    if step.type == "Fail" and not isinstance(step.arguments.get("ErrorMessage", ""), (str, dict)):
        raise DefinitionError(f"{where}: Arguments.ErrorMessage must be a string or an expression.")
    for required in {"Callback": ("SqsQueueUrl",), "Lambda": ("FunctionArn",)}.get(step.type, ()):
        if not spec.get(required):
            raise DefinitionError(f"{where}: {required} is required for a {step.type} step.")


def _check_conditions(step: Step, conditions: Any) -> None:
    if not isinstance(conditions, list) or not conditions:
        raise DefinitionError(f"Step '{step.name}': Arguments.Conditions must be a non-empty list.")
    for condition in conditions:
        kind = condition.get("Type") if isinstance(condition, dict) else None
        if kind not in CONDITION_TYPES:
            raise DefinitionError(f"Step '{step.name}': Arguments.Conditions: condition Type {kind!r} is not one of "
                                  f"{list(CONDITION_TYPES)}.")
        if kind == "Not":
            _check_conditions(step, [condition.get("Condition")])
        elif kind == "Or":
            _check_conditions(step, condition.get("Conditions"))
        elif kind == "In":
            if "QueryValue" not in condition or not isinstance(condition.get("Values"), list):
                raise DefinitionError(f"Step '{step.name}': Arguments.Conditions: In needs QueryValue and Values.")
        elif "LeftValue" not in condition or "RightValue" not in condition:
            raise DefinitionError(f"Step '{step.name}': Arguments.Conditions: {kind} needs LeftValue and RightValue.")


def _check_reference(where: str, path: str, steps: dict[str, Step], parameters: dict[str, dict[str, Any]]) -> set[str]:
    """The steps `path` depends on (none for a parameter or execution variable); refuses an unknown name."""
    if path.startswith("Parameters."):
        if path.removeprefix("Parameters.") not in parameters:
            raise DefinitionError(f"{where}: the expression {{'Get': '{path}'}} refers to an undefined parameter.")
        return set()
    if path.startswith("Execution."):
        if path.removeprefix("Execution.") not in EXECUTION_VARIABLES:
            raise DefinitionError(f"{where}: the expression {{'Get': '{path}'}} refers to an unknown execution "
                                  "variable.")
        return set()
    match = _STEP_REF.match(path)
    if match is None:
        raise DefinitionError(f"{where}: the expression {{'Get': '{path}'}} is not a Parameters., Execution. or "
                              "Steps. reference.")
    target, rest = match.group(1), match.group(2)
    if target not in steps:
        raise DefinitionError(f"{where}: the expression {{'Get': '{path}'}} refers to the step '{target}', which is "
                              "not defined in the pipeline.")
    if rest.startswith(".PropertyFiles."):
        wanted = rest.removeprefix(".PropertyFiles.")
        names = [p.get("PropertyFileName") for p in steps[target].spec.get("PropertyFiles") or []]
        if wanted not in names:
            raise DefinitionError(f"{where}: the expression {{'Get': '{path}'}} refers to the property file "
                                  f"'{wanted}', which step '{target}' does not define.")
    return {target}


def _check_acyclic(steps: dict[str, Step]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise DefinitionError(f"The pipeline has a dependency cycle: {' -> '.join([*trail, name])}.")
        state[name] = 1
        step = steps[name]
        for other in sorted(step.depends | ({step.gate[0]} if step.gate else set())):
            visit(other, [*trail, name])
        state[name] = 2

    for name in steps:
        visit(name, [])
