"""Pure pipeline logic: durations, cache keys, retry delays, expressions, conditions, parameter types
and argument conversion to the operation's shape (no server)."""

from __future__ import annotations

import json
import time

import pytest

from sagemaker_emulator.pipelines.cache import cache_key, parse_duration
from sagemaker_emulator.pipelines.definition import DefinitionError, Step, coerce, parse
from sagemaker_emulator.pipelines.executor import PipelineExecutor, failure_category
from sagemaker_emulator.pipelines.expressions import ExpressionError, Scope, all_true, evaluate, walk
from sagemaker_emulator.pipelines.steps import conform, job_name


@pytest.mark.parametrize(("text", "seconds"), [("PT1H", 3600), ("P30D", 30 * 86400), ("30d", 30 * 86400),
                                               ("T16m", 960), ("30dT5h", 30 * 86400 + 5 * 3600), ("PT0.5S", 0.5),
                                               ("P1W", 7 * 86400)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "soon", "1h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_cache_key_uses_only_the_key_attributes():
    base = {"AppSpecification": {"ImageUri": "a"}, "Environment": {"X": "1"}, "ProcessingInputs": []}
    same = cache_key("Processing", {**base, "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2}}})
    assert cache_key("Processing", base) == same
    assert cache_key("Processing", {**base, "Environment": {"X": "2"}}) != same
    assert cache_key("Model", base) is None


def _step(**spec) -> Step:
    return Step("S", "Training", {"Name": "S", "Type": "Training", **spec})


def test_retry_delay_backoff_max_attempts_and_expiry():
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 2, "BackoffRate": 3,
              "MaxAttempts": 2}
    step = _step(RetryPolicies=[policy])
    delay = PipelineExecutor._retry_delay
    assert delay(step, {"AttemptCount": 1}, "SageMaker.JOB_INTERNAL_ERROR") == 2
    assert delay(step, {"AttemptCount": 2}, "SageMaker.JOB_INTERNAL_ERROR") == 6
    assert delay(step, {"AttemptCount": 3}, "SageMaker.JOB_INTERNAL_ERROR") is None  # 2 retries done
    assert delay(step, {"AttemptCount": 1}, "Step.THROTTLING") is None
    assert delay(step, {"AttemptCount": 1}, None) is None
    expiring = _step(RetryPolicies=[{"ExceptionType": ["Step.SERVICE_FAULT"], "ExpireAfterMin": 1}])
    assert delay(expiring, {"AttemptCount": 9, "_first": time.time()}, "Step.SERVICE_FAULT") == 2.0 ** 8
    assert delay(expiring, {"AttemptCount": 2, "_first": time.time() - 61}, "Step.SERVICE_FAULT") is None
    assert failure_category("InternalServerError: x") == "SageMaker.JOB_INTERNAL_ERROR"
    assert failure_category("AlgorithmError: exit 1") is None


def _scope(props: dict, files: dict | None = None) -> Scope:
    return Scope({"N": 3, "S": "a"}, {"PipelineName": "p"}, lambda step: props.get(step),
                 lambda uri: (files or {})[uri], lambda step, name: f"s3://b/{step}/{name}.json")


def test_expressions_paths_join_and_jsonget():
    doc = {"ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/t"}}]},
           "FinalMetricDataList": [{"MetricName": "acc", "Value": 0.7}], "Items": [1, 2]}
    scope = _scope({"P": doc}, {"s3://b/P/Eval.json": {"m": {"v": [5, 6]}}})
    assert evaluate({"Get": "Steps.P.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}, scope) == "s3://b/t"
    assert evaluate({"Get": "Steps.P.FinalMetricDataList['acc'].Value"}, scope) == 0.7
    assert evaluate({"Get": "Steps.P.Items[1]"}, scope) == 2
    assert evaluate({"Std:Join": {"On": "-", "Values": ["x", {"Get": "Parameters.N"}, True]}}, scope) == "x-3-true"
    json_get = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.P.PropertyFiles.Eval"}, "Path": "m.v[1]"}}
    assert evaluate({"a": [json_get]}, scope) == {"a": [6]}
    with pytest.raises(ExpressionError, match="'Missing'"):
        walk(doc, "Missing.X", "here")
    with pytest.raises(ExpressionError, match="did not succeed"):
        evaluate({"Get": "Steps.Q.X"}, scope)


def test_conditions():
    scope = _scope({})
    n = {"Get": "Parameters.N"}
    assert all_true([{"Type": "GreaterThan", "LeftValue": n, "RightValue": 2},
                     {"Type": "LessThanOrEqualTo", "LeftValue": "3", "RightValue": n},
                     {"Type": "In", "QueryValue": {"Get": "Parameters.S"}, "Values": ["b", "a"]},
                     {"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": n, "RightValue": 4}},
                     {"Type": "Or", "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                                                   {"Type": "Equals", "LeftValue": 3.0, "RightValue": n}]}], scope)
    assert not all_true([{"Type": "GreaterThan", "LeftValue": n, "RightValue": 2},
                         {"Type": "LessThan", "LeftValue": n, "RightValue": 3}], scope)


def test_parameter_types_and_enums():
    assert coerce({"Name": "I", "Type": "Integer"}, "4") == 4
    assert coerce({"Name": "B", "Type": "Boolean"}, "True") is True
    assert coerce({"Name": "F", "Type": "Float"}, "0.5") == 0.5
    with pytest.raises(ValueError, match="not of type Integer"):
        coerce({"Name": "I", "Type": "Integer"}, "4.5")
    with pytest.raises(ValueError, match="not one of"):
        coerce({"Name": "S", "Type": "String", "EnumValues": ["a"]}, "b")


def test_definition_graph_and_errors():
    text = json.dumps({"Steps": [
        {"Name": "A", "Type": "Fail", "Arguments": {}},
        {"Name": "C", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Steps.A.X"}, "RightValue": 1}],
            "IfSteps": [{"Name": "D", "Type": "Fail", "Arguments": {}}], "ElseSteps": []}}]})
    definition = parse(text)
    assert definition.steps["C"].depends == {"A"} and definition.steps["D"].gate == ("C", True)
    assert definition.downstream({"A"}) == {"A", "C", "D"}
    with pytest.raises(DefinitionError, match="Step 'X'.*RetryPolicies"):
        parse(json.dumps({"Steps": [{"Name": "X", "Type": "Fail", "Arguments": {},
                                     "RetryPolicies": [{"ExceptionType": ["Nope"]}]}]}))
    with pytest.raises(DefinitionError, match="not valid JSON"):
        parse("{")


def test_arguments_conform_to_the_shape_and_job_names():
    from sagemaker_emulator.protocol.service import service_model

    shape = service_model("sagemaker").operation_model("CreateTrainingJob").input_shape
    out = conform(shape, {"HyperParameters": {"epochs": 3, "flag": True},
                          "ResourceConfig": {"InstanceCount": "2", "VolumeSizeInGB": 1.0}})
    assert out == {"HyperParameters": {"epochs": "3", "flag": "true"},
                   "ResourceConfig": {"InstanceCount": 2, "VolumeSizeInGB": 1}}
    name = job_name("Training", "abcdefghijkl", "A" * 80, {}, 1)
    assert len(name) == 63 and name.startswith("pipelines-abcdefghijkl-AAAA")
    assert job_name("Processing", "abcdefghijkl", "x", {"ProcessingJobName": "mine"}, 2) == "mine-abcdefghijkl-2"
    assert len(job_name("Tuning", "abcdefghijkl", "Tune", {}, 1)) <= 32
