"""Pipeline-engine logic on a FakeRuntime (no Docker): the DAG, conditions, parameters, parallelism,
caching, retries, callbacks, Lambda, Stop, selective execution, validation and restarts, through the
real API, handlers, job engines and events. The same behaviours with real containers and the SDK are in
test_pipelines_sdk.py."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import ROLE, error_of, wait_until
from .pipeline_defs import get, job_of, overlap, processing_step, start, steps_of, training_step, wait_execution
from .tuning_objective import METRIC, fake_script, tuning_request

BUCKET = "pipeline-fake"
EVAL = {"/opt/ml/processing/report/evaluation.json": json.dumps({"metrics": {"accuracy": {"value": 0.9}}})}
SCRIPTS = {"quick:1": Script(after=0.05, files=EVAL), "slow:1": Script(after=1.0), "forever:1": Script(after=None),
           "serving:1": Script(after=None, http=lambda method, path, body: (200, b"{}"))}


@pytest.fixture
def emu(tmp_path: Path):
    server = InProcessServer(FakeRuntime(scripts=SCRIPTS, script_for=fake_script(3, 0.02)), data_dir=tmp_path / "data",
                             stop_grace_seconds=1.0).start()
    server.client("s3").create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture
def sm(emu):
    return emu.client("sagemaker")


def _eval_file() -> list[dict]:
    return [{"PropertyFileName": "Evaluation", "OutputName": "report", "FilePath": "evaluation.json"}]


def _canonical(threshold_default: float) -> tuple[list[dict], list[dict]]:
    accuracy = {"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.Evaluation"),
                                "Path": "metrics.accuracy.value"}}
    model_data = get("Steps.Evaluate.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri")
    register = {"Name": "Register", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "fake-group", "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {"Containers": [{"Image": "serve:1", "ModelDataUrl": model_data}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}}}
    model = {"Name": "CreateModel", "Type": "Model", "Arguments": {
        "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "serve:1", "ModelDataUrl": model_data}}}
    fail = {"Name": "TooLow", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
        "On": " ", "Values": ["accuracy below", get("Parameters.Threshold")]}}}}
    steps = [
        processing_step("Prepare", "quick:1", BUCKET),
        processing_step("Evaluate", "quick:1", BUCKET, PropertyFiles=_eval_file(),
                        DependsOn=["Prepare"], Description="evaluates"),
        {"Name": "Check", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": accuracy,
                            "RightValue": get("Parameters.Threshold")}],
            "IfSteps": [register, model], "ElseSteps": [fail]}},
    ]
    return steps, [{"Name": "Threshold", "Type": "Float", "DefaultValue": threshold_default}]


def test_canonical_flow_and_parameters(sm):
    steps, parameters = _canonical(0.5)
    arn = start(sm, "canonical", steps, parameters)
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, arn)
    assert set(ran) == {"Prepare", "Evaluate", "Check", "Register", "CreateModel"}
    assert ran["Check"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert ran["Evaluate"]["StepDescription"] == "evaluates"
    job = job_of(sm, ran["Evaluate"])
    assert job["ProcessingJobName"].startswith(f"pipelines-{arn.rsplit('/', 1)[1]}-Evaluate-")
    assert ran["Evaluate"]["StartTime"] >= ran["Prepare"]["EndTime"]
    trial = arn.rsplit("/", 1)[1]  # the jobs joined the execution's trial (PipelineExperimentConfig)
    assert job["ExperimentConfig"] == {"ExperimentName": "canonical", "TrialName": trial}
    assert sm.describe_trial(TrialName=trial)["ExperimentName"] == "canonical"
    components = sm.list_trial_components(TrialName=trial)["TrialComponentSummaries"]
    assert f"{job['ProcessingJobName'].lower()}-aws-processing-job" in [c["TrialComponentName"] for c in components]
    package = sm.describe_model_package(ModelPackageName=ran["Register"]["Metadata"]["RegisterModel"]["Arn"])
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/Evaluate/report")
    model = sm.describe_model(ModelName=ran["CreateModel"]["Metadata"]["Model"]["Arn"].rsplit("/", 1)[1])
    assert model["PrimaryContainer"]["Image"] == "serve:1"
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert params == [{"Name": "Threshold", "Value": "0.5"}]
    # overridden at start: the else branch runs, the Fail step's message is the execution's failure
    arn2 = sm.start_pipeline_execution(PipelineName="canonical", PipelineParameters=[
        {"Name": "Threshold", "Value": "0.95"}])["PipelineExecutionArn"]
    described = wait_execution(sm, arn2)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "accuracy below 0.95"
    ran2 = steps_of(sm, arn2)
    assert ran2["TooLow"]["StepStatus"] == "Failed" and "Register" not in ran2
    assert ran2["TooLow"]["Metadata"] == {"Fail": {"ErrorMessage": "accuracy below 0.95"}}
    listed = sm.list_pipeline_executions(PipelineName="canonical")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in listed] == [arn2, arn]
    with pytest.raises(ClientError) as err:
        sm.start_pipeline_execution(PipelineName="canonical", PipelineParameters=[{"Name": "Nope", "Value": "1"}])
    assert error_of(err)[0] == "ValidationException"


def test_independent_steps_run_concurrently_up_to_the_limit(sm):
    steps = [processing_step("A", "slow:1", BUCKET), processing_step("B", "slow:1", BUCKET)]
    arn = start(sm, "parallel", steps)
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, arn)
    assert overlap(ran["A"], ran["B"])
    one = sm.start_pipeline_execution(PipelineName="parallel", ParallelismConfiguration={
        "MaxParallelExecutionSteps": 1})["PipelineExecutionArn"]
    assert wait_execution(sm, one)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, one)
    assert not overlap(ran["A"], ran["B"])


def test_second_execution_hits_the_cache(sm):
    cache = {"CacheConfig": {"Enabled": True, "ExpireAfter": "PT1H"}}
    steps = [processing_step("Cached", "quick:1", BUCKET, **cache), processing_step("Always", "quick:1", BUCKET)]
    first = start(sm, "cached", steps)
    wait_execution(sm, first)
    second = sm.start_pipeline_execution(PipelineName="cached")["PipelineExecutionArn"]
    assert wait_execution(sm, second)["PipelineExecutionStatus"] == "Succeeded"
    one, two = steps_of(sm, first), steps_of(sm, second)
    assert two["Cached"]["CacheHitResult"] == {"SourcePipelineExecutionArn": first}
    assert two["Cached"]["Metadata"] == one["Cached"]["Metadata"]  # the same job: nothing ran again
    assert "CacheHitResult" not in two["Always"]
    assert two["Always"]["Metadata"] != one["Always"]["Metadata"]
    # a changed key attribute misses
    changed = [processing_step("Cached", "quick:1", BUCKET, env={"X": "1"}, **cache)]
    third = start(sm, "cached", changed)
    wait_execution(sm, third)
    assert "CacheHitResult" not in steps_of(sm, third)["Cached"]


def test_callback_step_completed_by_send_success(emu, sm):
    sqs = emu.client("sqs")
    queue = sqs.create_queue(QueueName="pipeline-callbacks")["QueueUrl"]
    steps = [{"Name": "Wait", "Type": "Callback", "Arguments": {"size": get("Parameters.Size")},
              "SqsQueueUrl": queue, "OutputParameters": [{"OutputName": "verdict", "OutputType": "String"}]},
             {"Name": "Decide", "Type": "Condition", "Arguments": {
                 "Conditions": [{"Type": "Equals", "LeftValue": get("Steps.Wait.OutputParameters['verdict']"),
                                 "RightValue": "go"}],
                 "IfSteps": [], "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}}]
    arn = start(sm, "callback", steps, [{"Name": "Size", "Type": "Integer", "DefaultValue": 3}])
    messages = wait_until(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 20)
    body = json.loads(messages[0]["Body"])
    assert body["arguments"] == {"size": 3} and body["status"] == "Executing"
    assert body["pipelineExecutionArn"] == arn
    waiting = steps_of(sm, arn)["Wait"]
    assert waiting["StepStatus"] == "Executing"
    assert waiting["Metadata"]["Callback"] == {"CallbackToken": body["token"], "SqsQueueUrl": queue}
    out = sm.send_pipeline_execution_step_success(CallbackToken=body["token"],
                                                  OutputParameters=[{"Name": "verdict", "Value": "go"}])
    assert out["PipelineExecutionArn"] == arn
    described = wait_execution(sm, arn)
    done = steps_of(sm, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", done
    assert done["Wait"]["Metadata"]["Callback"]["OutputParameters"] == [{"Name": "verdict", "Value": "go"}]
    assert done["Decide"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    with pytest.raises(ClientError) as err:
        sm.send_pipeline_execution_step_success(CallbackToken=body["token"])
    assert error_of(err)[0] == "ResourceNotFound"


def test_stop_ends_the_execution_and_its_jobs(sm):
    arn = start(sm, "stop", [processing_step("Long", "forever:1", BUCKET),
                             processing_step("After", "quick:1", BUCKET, DependsOn=["Long"])])
    wait_until(lambda: steps_of(sm, arn).get("Long", {}).get("Metadata"), 20)
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Stopped"
    ran = steps_of(sm, arn)
    assert ran["Long"]["StepStatus"] == "Stopped" and "After" not in ran
    assert job_of(sm, ran["Long"])["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as err:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert error_of(err)[0] == "ConflictException"


def test_selective_execution_reuses_the_source_outputs(sm):
    steps = [processing_step("First", "quick:1", BUCKET),
             {"Name": "Second", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE, "PrimaryContainer": {
                 "Image": "serve:1",
                 "ModelDataUrl": get("Steps.First.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri")}}}]
    source = start(sm, "selective", steps)
    wait_execution(sm, source)
    arn = sm.start_pipeline_execution(PipelineName="selective", SelectiveExecutionConfig={
        "SourcePipelineExecutionArn": source, "SelectedSteps": [{"StepName": "Second"}]})["PipelineExecutionArn"]
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    before, after = steps_of(sm, source), steps_of(sm, arn)
    assert after["First"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": source}
    assert after["First"]["Metadata"] == before["First"]["Metadata"]
    assert after["Second"]["Metadata"] != before["Second"]["Metadata"]
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["SelectiveExecutionConfig"][
        "SourcePipelineExecutionArn"] == source


def test_invalid_definitions_are_refused_naming_the_step(sm):
    bad_ref = [processing_step("Train", "quick:1", BUCKET, Arguments={
        **processing_step("x", "q", BUCKET)["Arguments"],
        "Environment": {"DATA": get("Steps.Missing.ProcessingOutputConfig.Outputs['x'].S3Output.S3Uri")}})]
    cases = {
        "Step 'Train'": bad_ref,
        "'Nowhere'": [processing_step("A", "quick:1", BUCKET, DependsOn=["Nowhere"])],
        "undefined parameter": [processing_step("A", "quick:1", BUCKET, Arguments={
            **processing_step("x", "q", BUCKET)["Arguments"], "Environment": {"A": get("Parameters.Nope")}})],
        "Type 'Bogus'": [{"Name": "A", "Type": "Bogus", "Arguments": {}}],
        "cycle": [processing_step("A", "quick:1", BUCKET, DependsOn=["B"]),
                  processing_step("B", "quick:1", BUCKET, DependsOn=["A"])],
    }
    for needle, steps in cases.items():
        with pytest.raises(ClientError) as err:
            start(sm, "invalid", steps)
        code, message, _ = error_of(err)
        assert code == "ValidationException" and needle in message, message
    with pytest.raises(ClientError) as err:
        start(sm, "invalid", bad_ref)
    assert "'Missing'" in error_of(err)[1]


def test_unsupported_step_fails_clearly_and_others_run(sm):
    steps = [{"Name": "Emr", "Type": "EMR", "Arguments": {"ClusterId": "j-1", "StepConfig": {}}},
             processing_step("Other", "slow:1", BUCKET)]
    arn = start(sm, "emr", steps)
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Failed"
    ran = steps_of(sm, arn)
    assert "Amazon EMR" in ran["Emr"]["FailureReason"]
    assert ran["Other"]["StepStatus"] == "Succeeded"  # the running branch finished first


@dataclass
class _Result:
    status_code: int
    payload: bytes
    function_error: str | None


def test_lambda_step_outputs_and_retry_on_service_fault(sm, monkeypatch):
    from sagemaker_emulator.protocol.errors import InternalFailure

    calls: list[tuple[str, Any]] = []

    def invoke(services: Any, function: str, payload: bytes, region: str) -> _Result:
        calls.append((function, json.loads(payload)))
        if len(calls) == 1:
            raise InternalFailure("the Lambda service failed")
        return _Result(200, json.dumps({"answer": 42, "note": "ok"}).encode(), None)

    module = types.ModuleType("sagemaker_emulator.aws.lambda_runtime")
    module.invoke = invoke  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sagemaker_emulator.aws.lambda_runtime", module)
    steps = [{"Name": "Fn", "Type": "Lambda", "Arguments": {"x": get("Parameters.X")},
              "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
              "OutputParameters": [{"OutputName": "answer", "OutputType": "Integer"}],
              "RetryPolicies": [{"ExceptionType": ["Step.SERVICE_FAULT"], "IntervalSeconds": 1, "MaxAttempts": 2}]},
             {"Name": "Use", "Type": "Condition", "Arguments": {"Conditions": [
                 {"Type": "GreaterThan", "LeftValue": get("Steps.Fn.OutputParameters['answer']"), "RightValue": 40}],
                 "IfSteps": [], "ElseSteps": []}}]
    arn = start(sm, "lambda", steps, [{"Name": "X", "Type": "String", "DefaultValue": "hi"}])
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, arn)
    assert ran["Fn"]["AttemptCount"] == 2
    assert ran["Fn"]["Metadata"]["Lambda"]["OutputParameters"] == [{"Name": "answer", "Value": "42"}]
    assert ran["Use"]["Metadata"]["Condition"]["Outcome"] == "True"
    assert calls[0] == ("arn:aws:lambda:us-east-1:123456789012:function:f", {"x": "hi"})


def test_lambda_step_without_the_runtime_fails_clearly(sm, monkeypatch):
    monkeypatch.setitem(sys.modules, "sagemaker_emulator.aws.lambda_runtime", None)  # import fails
    arn = start(sm, "nolambda", [{"Name": "Fn", "Type": "Lambda", "Arguments": {}, "FunctionArn": "f"}])
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Failed"
    assert "Lambda runtime" in steps_of(sm, arn)["Fn"]["FailureReason"]


def test_restart_mid_execution_retries_the_interrupted_job(tmp_path: Path):
    launched: list[str] = []

    def script_for(spec: Any) -> Script:
        launched.append(spec.name)
        return Script(after=None) if len(launched) == 1 else Script(after=0.05)

    data = tmp_path / "data"
    fake = FakeRuntime(script_for=script_for)
    emu = InProcessServer(fake, data_dir=data, stop_grace_seconds=0.5).start()
    emu.client("s3").create_bucket(Bucket=BUCKET)
    sm = emu.client("sagemaker")
    retry = {"RetryPolicies": [{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 1,
                                "MaxAttempts": 1}]}
    arn = start(sm, "restart", [processing_step("Work", "any:1", BUCKET, **retry),
                                processing_step("Next", "any:1", BUCKET, DependsOn=["Work"])])
    wait_until(lambda: launched, 20)
    emu.stop()  # the running job fails with InternalServerError while the scheduler is shut down
    emu = InProcessServer(fake, data_dir=data, stop_grace_seconds=0.5).start()
    try:
        sm = emu.client("sagemaker")
        assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
        ran = steps_of(sm, arn)
        assert ran["Work"]["AttemptCount"] == 2 and ran["Next"]["StepStatus"] == "Succeeded"
    finally:
        emu.stop()


def test_pipeline_crud_and_versions(sm):
    text = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "F", "Type": "Fail", "Arguments": {}}]})
    arn = sm.create_pipeline(PipelineName="crud", PipelineDefinition=text, RoleArn=ROLE)["PipelineArn"]
    with pytest.raises(ClientError) as err:
        sm.create_pipeline(PipelineName="crud", PipelineDefinition=text, RoleArn=ROLE)
    assert error_of(err)[0] == "ValidationException" and "already exists" in error_of(err)[1]
    assert sm.update_pipeline(PipelineName="crud", PipelineDescription="v2")["PipelineVersionId"] == 2
    versions = sm.list_pipeline_versions(PipelineName="crud")["PipelineVersionSummaries"]
    assert [v["PipelineVersionId"] for v in versions] == [2, 1]
    sm.update_pipeline_version(PipelineArn=arn, PipelineVersionId=1, PipelineVersionDisplayName="first")
    assert sm.describe_pipeline(PipelineName="crud", PipelineVersionId=1)["PipelineVersionDisplayName"] == "first"
    assert sm.describe_pipeline(PipelineName="crud")["PipelineDescription"] == "v2"
    assert [p["PipelineName"] for p in sm.list_pipelines(PipelineNamePrefix="cru")["PipelineSummaries"]] == ["crud"]
    token = "same-token-0123456789abcdef012345"
    first = sm.start_pipeline_execution(PipelineName="crud", ClientRequestToken=token)["PipelineExecutionArn"]
    assert sm.start_pipeline_execution(PipelineName="crud", ClientRequestToken=token)["PipelineExecutionArn"] == first
    described = wait_execution(sm, first)
    assert described["PipelineExperimentConfig"] == {"ExperimentName": "crud", "TrialName": first.rsplit("/", 1)[1]}
    defn = sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=first)["PipelineDefinition"]
    assert json.loads(defn) == json.loads(text)
    retried = sm.retry_pipeline_execution(PipelineExecutionArn=first)["PipelineExecutionArn"]
    assert retried == first and wait_execution(sm, first)["PipelineExecutionStatus"] == "Failed"
    sm.update_pipeline_execution(PipelineExecutionArn=first, PipelineExecutionDescription="described")
    assert sm.describe_pipeline_execution(PipelineExecutionArn=first)["PipelineExecutionDescription"] == "described"
    sm.delete_pipeline(PipelineName="crud")
    with pytest.raises(ClientError) as err:
        sm.describe_pipeline(PipelineName="crud")
    assert error_of(err)[0] == "ResourceNotFound"


def test_training_and_tuning_steps_and_their_properties(sm):
    train = training_step("Train", "objective:1", BUCKET, {"behaviour": "objective", "x": get("Parameters.X")})
    train["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"] = [METRIC]
    tuning = tuning_request("unused", BUCKET, "objective:1", max_jobs=2, parallel=2)
    del tuning["HyperParameterTuningJobName"]
    best = get("Steps.Tune.TrainingJobSummaries[0].TrainingJobName")
    metric = get("Steps.Train.FinalMetricDataList['objective'].Value")
    data = {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}/tuning", best, "output/model.tar.gz"]}}
    steps = [train, {"Name": "Tune", "Type": "Tuning", "Arguments": tuning},
             {"Name": "Good", "Type": "Condition", "Arguments": {"Conditions": [
                 {"Type": "GreaterThanOrEqualTo", "LeftValue": metric, "RightValue": 9.5},
                 {"Type": "In", "QueryValue": get("Steps.Train.TrainingJobStatus"), "Values": ["Completed"]},
                 {"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": get("Parameters.X"), "RightValue": 0}}],
                 "IfSteps": [{"Name": "Best", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE,
                              "PrimaryContainer": {"Image": "serve:1", "ModelDataUrl": data}}}],
                 "ElseSteps": []}}]
    arn = start(sm, "training", steps, [{"Name": "X", "Type": "Integer", "DefaultValue": 3}])
    described = wait_execution(sm, arn)
    ran = steps_of(sm, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", ran
    job = job_of(sm, ran["Train"])
    assert job["HyperParameters"]["x"] == "3"  # an Integer parameter sent as the string the shape wants
    assert job["TrainingJobName"].startswith(f"pipelines-{arn.rsplit('/', 1)[1]}-Train-")
    assert ran["Good"]["Metadata"]["Condition"]["Outcome"] == "True"
    tuned = sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=ran["Tune"]["Metadata"]["TuningJob"]["Arn"].rsplit("/", 1)[1])
    model = sm.describe_model(ModelName=ran["Best"]["Metadata"]["Model"]["Arn"].rsplit("/", 1)[1])
    assert model["PrimaryContainer"]["ModelDataUrl"] == \
        f"s3://{BUCKET}/tuning/{tuned['BestTrainingJob']['TrainingJobName']}/output/model.tar.gz"


def test_model_endpoint_config_and_endpoint_steps(sm):
    steps = [{"Name": "M", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE,
                                                           "PrimaryContainer": {"Image": "serving:1"}}},
             {"Name": "EC", "Type": "EndpointConfig", "Arguments": {"ProductionVariants": [{
                 "VariantName": "main", "ModelName": get("Steps.M.ModelName"), "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}]}},
             {"Name": "EP", "Type": "Endpoint",
              "Arguments": {"EndpointConfigName": get("Steps.EC.EndpointConfigName")}}]
    arn = start(sm, "endpoint", steps)
    assert wait_execution(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, arn)
    name = ran["EP"]["Metadata"]["Endpoint"]["Arn"].rsplit("/", 1)[1]
    endpoint = sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointConfigName"] == ran["EC"]["Metadata"]["EndpointConfig"]["Arn"].rsplit("/", 1)[1]
    wait_until(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "Creating", 30)
    sm.delete_endpoint(EndpointName=name)


def test_transform_step_on_the_model_step(emu, sm):
    emu.client("s3").put_object(Bucket=BUCKET, Key="tx-in/rows.csv", Body=b"1,2\n3,4\n")
    steps = [{"Name": "M", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE,
                                                           "PrimaryContainer": {"Image": "serving:1"}}},
             {"Name": "Score", "Type": "Transform", "Arguments": {
                 "ModelName": get("Steps.M.ModelName"),
                 "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                    "S3Uri": f"s3://{BUCKET}/tx-in"}},
                                    "ContentType": "text/csv", "SplitType": "Line"},
                 "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/tx-out", "AssembleWith": "Line"},
                 "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}}]
    arn = start(sm, "transform", steps)
    described = wait_execution(sm, arn)
    ran = steps_of(sm, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", ran
    job = job_of(sm, ran["Score"])
    assert job["TransformJobStatus"] == "Completed" and job["ModelName"].startswith("pipelines-")
    assert emu.client("s3").get_object(Bucket=BUCKET, Key="tx-out/rows.csv.out")["Body"].read()
