"""SageMaker Pipelines through the SDK v2's `sagemaker.workflow`, unchanged, on real containers.

The canonical pipeline: an SKLearnProcessor prepares data -> an SKLearn estimator trains -> a processing
step evaluates it into a PropertyFile -> a ConditionStep on the metric -> register (ModelStep, with its
repack training step on the sklearn stand-in) and create the model, or a FailStep. `execution.wait()`
polls every 30 s by default (AWS's waiter): `wait(delay=1)` shortens it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from botocore.exceptions import WaiterError
from sagemaker.inputs import TrainingInput
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn import SKLearn, SKLearnModel, SKLearnProcessor
from sagemaker.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep

from .helpers import ROLE, SKLEARN_TRAIN_PY, sdk_environment, unique, wait_until

BUCKET = "sagemaker-us-east-1-123456789012"
INSTANCE = "ml.m5.large"
TELEMETRY: list = []

PREPARE_PY = '''
import os
import numpy as np
from botocore.exceptions import WaiterError
rows = np.loadtxt("/opt/ml/processing/input/data.csv", delimiter=",", ndmin=2)
scale = float(os.environ.get("SCALE", "1"))
rows[:, 1:] *= scale
for name, part in (("train", rows[:150]), ("test", rows[150:])):
    os.makedirs(f"/opt/ml/processing/{name}", exist_ok=True)
    np.savetxt(f"/opt/ml/processing/{name}/{name}.csv", part, delimiter=",", fmt="%.5f")
print("prepared", rows.shape)
'''

EVALUATE_PY = '''
import json, os, tarfile
import joblib
import numpy as np
from botocore.exceptions import WaiterError
with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
    tar.extractall("/tmp/model")
model = joblib.load("/tmp/model/model.joblib")
test = np.loadtxt("/opt/ml/processing/test/test.csv", delimiter=",", ndmin=2)
r2 = float(model.score(test[:, 1:], test[:, 0]))
os.makedirs("/opt/ml/processing/evaluation", exist_ok=True)
with open("/opt/ml/processing/evaluation/evaluation.json", "w") as f:
    json.dump({"regression_metrics": {"r2": {"value": r2}}}, f)
print("r2", r2)
'''


@pytest.fixture(scope="module")
def session(sagemaker_emulator, docker_ready, tmp_path_factory):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "sagemaker_emulator", "images", "build", "sklearn:1.2-1"], check=True,
                   timeout=1800)
    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, TELEMETRY)
        workdir = tmp_path_factory.mktemp("pipelines-sdk")
        mp.chdir(workdir)
        session = PipelineSession(default_bucket=BUCKET)
        assert session.default_bucket() == BUCKET  # creates it
        yield session


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline-code")
    for name, text in (("prepare.py", PREPARE_PY), ("train.py", SKLEARN_TRAIN_PY), ("evaluate.py", EVALUATE_PY)):
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def raw_data(session, tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, size=(200, 2))
    rows = np.column_stack([2 * x[:, 0] + 3 * x[:, 1] + 1 + rng.normal(0, 0.1, 200), x])
    folder = tmp_path_factory.mktemp("pipeline-data")
    np.savetxt(folder / "data.csv", rows, delimiter=",", fmt="%.5f")
    return session.upload_data(str(folder / "data.csv"), bucket=BUCKET, key_prefix="pipeline-data")


def canonical_pipeline(session: PipelineSession, code, raw_data: str, name: str) -> Pipeline:
    threshold = ParameterFloat(name="R2Threshold", default_value=0.9)
    intercept = ParameterInteger(name="FitIntercept", default_value=1)
    cache = CacheConfig(enable_caching=True, expire_after="PT1H")
    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type=INSTANCE, instance_count=1,
                                 sagemaker_session=session, base_job_name="prepare")
    prepare = ProcessingStep(name="Prepare", cache_config=cache, step_args=processor.run(
        code=str(code / "prepare.py"), inputs=[ProcessingInput(source=raw_data,
                                                               destination="/opt/ml/processing/input")],
        outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train"),
                 ProcessingOutput(output_name="test", source="/opt/ml/processing/test")]))
    estimator = SKLearn(entry_point="train.py", source_dir=str(code), framework_version="1.2-1",
                        instance_type=INSTANCE, role=ROLE, sagemaker_session=session,
                        hyperparameters={"fit-intercept": intercept})
    train = TrainingStep(name="Train", cache_config=cache, step_args=estimator.fit(inputs={"train": TrainingInput(
        s3_data=prepare.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri, content_type="text/csv")}))
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(name="Evaluate", property_files=[report], cache_config=cache, step_args=processor.run(
        code=str(code / "evaluate.py"),
        inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model"),
                ProcessingInput(source=prepare.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
                                destination="/opt/ml/processing/test")],
        outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")]))
    model = SKLearnModel(model_data=train.properties.ModelArtifacts.S3ModelArtifacts, entry_point="train.py",
                         source_dir=str(code), framework_version="1.2-1", role=ROLE, sagemaker_session=session,
                         enable_network_isolation=True)  # the code goes inside model.tar.gz: a repack step
    register = ModelStep(name="Register", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=[INSTANCE],
        transform_instances=[INSTANCE], model_package_group_name=f"{name}-models",
        approval_status="PendingManualApproval"))
    create = ModelStep(name="Create", step_args=model.create(instance_type=INSTANCE))
    r2 = JsonGet(step_name=evaluate.name, property_file=report, json_path="regression_metrics.r2.value")
    fail = FailStep(name="TooWeak", error_message=Join(on=" ", values=["r2 below", threshold]))
    check = ConditionStep(name="CheckR2", conditions=[ConditionGreaterThanOrEqualTo(left=r2, right=threshold)],
                          if_steps=[register, create], else_steps=[fail])
    return Pipeline(name=name, parameters=[threshold, intercept], steps=[prepare, train, evaluate, check],
                    sagemaker_session=session)


def steps_by_name(execution) -> dict[str, dict]:
    return {s["StepName"]: s for s in execution.list_steps()}


def test_canonical_pipeline_register_or_fail_with_cache(session, code, raw_data, sagemaker_client):
    pipeline = canonical_pipeline(session, code, raw_data, "canonical-sdk")
    pipeline.upsert(role_arn=ROLE)
    pipeline.upsert(role_arn=ROLE, description="second upsert updates")  # "already exists" -> UpdatePipeline
    assert pipeline.describe()["PipelineDescription"] == "second upsert updates"
    execution = pipeline.start()
    execution.wait(delay=2, max_attempts=300)
    ran = steps_by_name(execution)
    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded", ran
    assert {"Prepare", "Train", "Evaluate", "CheckR2", "Register-RegisterModel", "Create-CreateModel"} <= set(ran)
    repacks = [name for name in ran if "RepackModel" in name]
    assert repacks and all(ran[name]["StepStatus"] == "Succeeded" for name in repacks), sorted(ran)
    repack_job = next(iter(ran[repacks[0]]["Metadata"].values()))["Arn"]
    assert ":training-job/pipelines-" in repack_job
    assert ran["CheckR2"]["Metadata"]["Condition"]["Outcome"] == "True"
    package_arn = ran["Register-RegisterModel"]["Metadata"]["RegisterModel"]["Arn"]
    package = sagemaker_client.describe_model_package(ModelPackageName=package_arn)
    assert package["ModelPackageGroupName"] == "canonical-sdk-models"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("model.tar.gz")
    # overridden at start: an impossible threshold takes the else branch; unchanged steps come from the cache
    second = pipeline.start(parameters={"R2Threshold": 1.5})
    with pytest.raises(WaiterError):  # the SDK's waiter gives up on Failed
        second.wait(delay=1, max_attempts=300)
    described = second.describe()
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "r2 below 1.5"
    again = steps_by_name(second)
    for step in ("Prepare", "Train", "Evaluate"):
        assert again[step]["CacheHitResult"]["SourcePipelineExecutionArn"] == execution.arn, again[step]
    assert again["TooWeak"]["StepStatus"] == "Failed" and "Register-RegisterModel" not in again
    assert [e["PipelineExecutionArn"] for e in pipeline.list_executions()["PipelineExecutionSummaries"]] == \
        [second.arn, execution.arn]
    assert {p["Name"]: p["Value"] for p in second.list_parameters()["PipelineParameters"]}["R2Threshold"] == "1.5"


def test_sdk_callback_step_completed_by_send_success(session):
    sqs = session.boto_session.client("sqs")
    queue = sqs.create_queue(QueueName=unique("sdk-callback"))["QueueUrl"]
    callback = CallbackStep(name="Approve", sqs_queue_url=queue, inputs={"model": "m1"},
                            outputs=[CallbackOutput(output_name="verdict", output_type=CallbackOutputTypeEnum.String)])
    verdict = callback.properties.Outputs["verdict"]
    rejected = FailStep(name="Rejected", error_message=Join(on=" ", values=["verdict:", verdict]))
    check = ConditionStep(name="IsGo", conditions=[ConditionEquals(left=verdict, right="go")], if_steps=[],
                          else_steps=[rejected])
    pipeline = Pipeline(name=unique("callback-sdk"), steps=[callback, check], sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    messages = wait_until(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 60)
    body = json.loads(messages[0]["Body"])
    assert body["arguments"] == {"model": "m1"} and body["pipelineExecutionArn"] == execution.arn
    session.sagemaker_client.send_pipeline_execution_step_success(
        CallbackToken=body["token"], OutputParameters=[{"Name": "verdict", "Value": "stop"}])
    with pytest.raises(WaiterError):
        execution.wait(delay=1, max_attempts=60)
    assert execution.describe()["FailureReason"] == "verdict: stop"
    approve = steps_by_name(execution)["Approve"]
    assert approve["Metadata"]["Callback"]["OutputParameters"] == [{"Name": "verdict", "Value": "stop"}]


def test_sdk_tuning_step_and_its_top_model(session, code, raw_data, sagemaker_client):
    from sagemaker.model import Model
    from sagemaker.tuner import HyperparameterTuner, IntegerParameter
    from sagemaker.workflow.steps import TuningStep

    key = raw_data.split(f"s3://{BUCKET}/", 1)[1]  # the training script reads train.csv
    session.boto_session.client("s3").copy_object(Bucket=BUCKET, Key="tuning-data/train.csv",
                                                  CopySource={"Bucket": BUCKET, "Key": key})
    estimator = SKLearn(entry_point="train.py", source_dir=str(code), framework_version="1.2-1",
                        instance_type=INSTANCE, role=ROLE, sagemaker_session=session)
    tuner = HyperparameterTuner(estimator, "intercept", {"fit-intercept": IntegerParameter(0, 1)},
                                metric_definitions=[{"Name": "intercept", "Regex": r"intercept=([-0-9.]+)"}],
                                max_jobs=2, max_parallel_jobs=2, objective_type="Maximize")
    tune = TuningStep(name="Tune", step_args=tuner.fit(inputs={"train": TrainingInput(
        s3_data=f"s3://{BUCKET}/tuning-data", content_type="text/csv")}))
    model = Model(image_uri=estimator.training_image_uri(), model_data=tune.get_top_model_s3_uri(0, BUCKET),
                  role=ROLE, sagemaker_session=session)
    best = ModelStep(name="Best", step_args=model.create(instance_type=INSTANCE))
    pipeline = Pipeline(name=unique("tuning-sdk"), steps=[tune, best], sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    execution.wait(delay=2, max_attempts=300)
    ran = steps_by_name(execution)
    tuning_arn = ran["Tune"]["Metadata"]["TuningJob"]["Arn"]
    tuning = sagemaker_client.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_arn.rsplit("/")[-1])
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    created = sagemaker_client.describe_model(ModelName=ran["Best-CreateModel"]["Metadata"]["Model"]["Arn"].rsplit(
        "/")[-1])
    children = sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning["HyperParameterTuningJobName"])["TrainingJobSummaries"]
    value = {c["TrainingJobName"]: c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for c in children}
    chosen = created["PrimaryContainer"]["ModelDataUrl"].split(f"s3://{BUCKET}/", 1)[1].split("/")[0]
    assert created["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{chosen}/output/model.tar.gz"
    assert value[chosen] == max(value.values())  # TrainingJobSummaries[0] is a best job (ties: either)
