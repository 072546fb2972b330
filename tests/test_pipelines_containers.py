"""Pipeline executions on real containers through boto3: concurrency from the steps' times, Stop,
selective execution, a callback, an invalid reference, and restarts (kill -9 mid-execution finishes
the execution; a graceful restart cuts the running job, whose retry policy runs it again)."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import containers_with, error_of, managed_containers, unique, wait_processing_sleeping, wait_until
from .pipeline_defs import get, job_of, overlap, processing_step, start, steps_of, training_step, wait_execution

SLOW = {"behaviour": "objective", "epochs": "4", "epoch_seconds": "2"}  # about 8 s, then Completed


def running(step: dict) -> None:
    """Wait until the step's job container runs (the label holds the job's lower-cased ARN)."""
    wait_until(lambda: containers_with(next(iter(step["Metadata"].values()))["Arn"].lower(), running_only=True), 90,
               "the step's container", 0.1)
    time.sleep(1.5)  # and handles signals


def test_two_processing_steps_run_concurrently(sagemaker_client, bucket, processing_image):
    sm = sagemaker_client
    steps = [processing_step("Left", processing_image, bucket), processing_step("Right", processing_image, bucket),
             processing_step("Join", processing_image, bucket, DependsOn=["Left", "Right"])]
    arn = start(sm, unique("concurrent"), steps)
    assert wait_execution(sm, arn, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, arn)
    assert overlap(ran["Left"], ran["Right"])
    assert ran["Join"]["StartTime"] >= max(ran["Left"]["EndTime"], ran["Right"]["EndTime"])
    left, right = job_of(sm, ran["Left"]), job_of(sm, ran["Right"])
    assert left["ProcessingStartTime"] < right["ProcessingEndTime"] and right["ProcessingStartTime"] < \
        left["ProcessingEndTime"]


def test_stop_ends_the_execution_and_stops_the_job(sagemaker_client, logs_client, bucket, processing_image):
    sm = sagemaker_client
    arn = start(sm, unique("stop"), [processing_step("Sleep", processing_image, bucket, env={"BEHAVIOUR": "sleep"})])
    wait_until(lambda: steps_of(sm, arn).get("Sleep", {}).get("Metadata"), 60)
    wait_processing_sleeping(logs_client, job_of(sm, steps_of(sm, arn)["Sleep"])["ProcessingJobName"])
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert wait_execution(sm, arn, timeout=120)["PipelineExecutionStatus"] == "Stopped"
    step = steps_of(sm, arn)["Sleep"]
    assert step["StepStatus"] == "Stopped"
    assert job_of(sm, step)["ProcessingJobStatus"] == "Stopped"


def test_selective_execution_runs_only_the_selected_step(sagemaker_client, bucket, processing_image):
    sm = sagemaker_client
    uri = get("Steps.First.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri")
    steps = [processing_step("First", processing_image, bucket),
             processing_step("Second", processing_image, bucket, env={"MY_SOURCE": uri})]
    name = unique("selective")
    source = start(sm, name, steps)
    assert wait_execution(sm, source, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
    arn = sm.start_pipeline_execution(PipelineName=name, SelectiveExecutionConfig={
        "SourcePipelineExecutionArn": source, "SelectedSteps": [{"StepName": "Second"}]})["PipelineExecutionArn"]
    assert wait_execution(sm, arn, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
    before, after = steps_of(sm, source), steps_of(sm, arn)
    assert after["First"]["Metadata"] == before["First"]["Metadata"]  # not run again
    assert after["First"]["SelectiveExecutionResult"]["SourcePipelineExecutionArn"] == source
    second = job_of(sm, after["Second"])
    assert second["Environment"]["MY_SOURCE"] == f"s3://{bucket}/pipe/First/report"


def test_callback_step_completed_through_send_success(sagemaker_emulator, sagemaker_client, bucket,
                                                      processing_image):
    sm, sqs = sagemaker_client, sagemaker_emulator.client("sqs")
    queue = sqs.create_queue(QueueName=unique("callbacks"))["QueueUrl"]
    steps = [{"Name": "Approve", "Type": "Callback", "Arguments": {"bucket": bucket}, "SqsQueueUrl": queue,
              "OutputParameters": [{"OutputName": "mode", "OutputType": "String"}]},
             processing_step("Run", processing_image, bucket, env={"MY_MODE": get(
                 "Steps.Approve.OutputParameters['mode']")})]
    arn = start(sm, unique("callback"), steps)
    messages = wait_until(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 60)
    token = json.loads(messages[0]["Body"])["token"]
    sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[{"Name": "mode", "Value": "fast"}])
    assert wait_execution(sm, arn, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
    assert job_of(sm, steps_of(sm, arn)["Run"])["Environment"]["MY_MODE"] == "fast"


def test_invalid_reference_refused_at_create_naming_the_step(sagemaker_client, bucket, processing_image):
    step = processing_step("Evaluate", processing_image, bucket, env={
        "MODEL": get("Steps.Training.ModelArtifacts.S3ModelArtifacts")})
    with pytest.raises(ClientError) as err:
        start(sagemaker_client, unique("invalid"), [step])
    code, message, _ = error_of(err)
    assert code == "ValidationException"
    assert "Step 'Evaluate'" in message and "'Training'" in message


def test_kill_mid_execution_then_restart_finishes_the_execution(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm = server.client("sagemaker")
        server.client("s3").create_bucket(Bucket="restart-pipeline")
        arn = start(sm, "restart-kill", [training_step("Long", training_image, "restart-pipeline", SLOW),
                                         training_step("After", training_image, "restart-pipeline",
                                                       DependsOn=["Long"])])
        wait_until(lambda: steps_of(sm, arn).get("Long", {}).get("Metadata"), 60)
        running(steps_of(sm, arn)["Long"])
        server.stop(kill=True)  # the job's container keeps running; the new server re-attaches it
        server.start()
        sm = server.client("sagemaker")
        assert wait_execution(sm, arn, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
        ran = steps_of(sm, arn)
        assert ran["Long"]["AttemptCount"] == 1 and ran["After"]["StepStatus"] == "Succeeded"
    assert managed_containers(server) == []


def test_retry_succeeds_on_the_second_attempt_after_a_graceful_restart(tmp_path, training_image):
    retry = {"RetryPolicies": [{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 1,
                                "BackoffRate": 1.0, "MaxAttempts": 2}]}
    with EmulatorServer(data_dir=tmp_path) as server:
        sm = server.client("sagemaker")
        server.client("s3").create_bucket(Bucket="retry-pipeline")
        arn = start(sm, "restart-retry", [training_step("Work", training_image, "retry-pipeline", SLOW, **retry)])
        wait_until(lambda: steps_of(sm, arn).get("Work", {}).get("Metadata"), 60)
        first = job_of(sm, steps_of(sm, arn)["Work"])["TrainingJobName"]
        running(steps_of(sm, arn)["Work"])
        server.stop()  # graceful: the running job fails with InternalServerError
        server.start()
        sm = server.client("sagemaker")
        assert wait_execution(sm, arn, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
        step = steps_of(sm, arn)["Work"]
        assert step["AttemptCount"] == 2
        assert sm.describe_training_job(TrainingJobName=first)["FailureReason"].startswith("InternalServerError")
        assert job_of(sm, step)["TrainingJobStatus"] == "Completed"
    assert managed_containers(server) == []


LAMBDA_CODE = '''
def handler(event, context):
    words = event["text"].split()
    return {"count": len(words), "first": words[0], "function": context.function_name}
'''


def test_lambda_step_runs_the_function_and_its_outputs_feed_the_next_step(sagemaker_emulator, sagemaker_client,
                                                                          bucket, processing_image):
    """A Lambda step on the embedded Lambda: the handler runs in a container on the base image, with the
    step's evaluated Arguments as its event; its returned values are the step's OutputParameters, typed,
    and a later step reads them by reference."""
    sm, lam, iam = sagemaker_client, sagemaker_emulator.client("lambda"), sagemaker_emulator.client("iam")
    try:
        iam.create_role(RoleName="pipeline-lambda", AssumeRolePolicyDocument="{}")
    except ClientError:
        pass  # made by an earlier run of this module's server
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", LAMBDA_CODE)
    name = unique("words")
    function = lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                                   Role="arn:aws:iam::123456789012:role/pipeline-lambda",
                                   Code={"ZipFile": code.getvalue()})["FunctionArn"]
    steps = [{"Name": "Count", "Type": "Lambda", "FunctionArn": function,
              "Arguments": {"text": {"Std:Join": {"On": " ", "Values": [get("Parameters.Greeting"), "there", "you"]}}},
              "OutputParameters": [{"OutputName": "count", "OutputType": "Integer"},
                                   {"OutputName": "first", "OutputType": "String"},
                                   {"OutputName": "function", "OutputType": "String"}]},
             processing_step("Use", processing_image, bucket, env={
                 "MY_FIRST": get("Steps.Count.OutputParameters['first']")})]
    arn = start(sm, unique("lambda"), steps, [{"Name": "Greeting", "Type": "String", "DefaultValue": "hello"}],
                PipelineParameters=[{"Name": "Greeting", "Value": "hi"}])
    assert wait_execution(sm, arn, timeout=240)["PipelineExecutionStatus"] == "Succeeded"
    ran = steps_of(sm, arn)
    outputs = {p["Name"]: p["Value"] for p in ran["Count"]["Metadata"]["Lambda"]["OutputParameters"]}
    assert outputs == {"count": "3", "first": "hi", "function": name}
    assert ran["Count"]["Metadata"]["Lambda"]["Arn"] == function
    assert job_of(sm, ran["Use"])["Environment"]["MY_FIRST"] == "hi"
