"""The SageMaker Python SDK v3 (`sagemaker>=3`, from PyPI), unchanged, against the emulator.

v3 is the same `sagemaker` distribution as v2 (which our test env holds), so it lives in its own
virtualenv, .venv-sdk3 (made by `scripts/sdk-venv v3`, quick when already made). The client script
tests/sdk_v3_client.py runs there against the session's emulator: ModelTrainer.train() with a
custom image, then the sagemaker-core resources (TrainingJob.create().wait(), Model, EndpointConfig,
Endpoint invoke). This side checks what it reports against the emulator's own state.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from .helpers import endpoint_containers, unique
from .readme import missing_from

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "sagemaker-us-east-1-123456789012"


@pytest.fixture(scope="session")
def sdk_v3_python() -> str:
    """The python of .venv-sdk3, made (once) by scripts/sdk-venv."""
    done = subprocess.run([str(ROOT / "scripts" / "sdk-venv"), "v3"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def client_env(endpoint_url: str) -> dict[str, str]:
    """The environment of a v3 client script: the emulator's endpoint, dummy credentials, none of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_", "PYTHON"))}
    env.update(AWS_ENDPOINT_URL=endpoint_url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1")
    return env


@pytest.fixture(scope="module")
def v3_run(sdk_v3_python, sagemaker_emulator, training_image, serving_image, tmp_path_factory):
    subprocess.run(["docker", "tag", training_image, "my-training:1"], check=True)
    subprocess.run(["docker", "tag", serving_image, "my-serving-image:latest"], check=True)
    workdir = tmp_path_factory.mktemp("sdk-v3")
    (workdir / "train.csv").write_text("1,2\n3,4\n")
    shutil.copy(ROOT / "tests" / "sdk_v3_client.py", workdir)
    env = client_env(sagemaker_emulator.endpoint_url)
    started = time.monotonic()
    done = subprocess.run([sdk_v3_python, "sdk_v3_client.py"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), time.monotonic() - started


def test_readme_snippets_are_the_ones_run_here():
    assert missing_from("sdk-v3", ROOT / "tests" / "sdk_v3_client.py") == []


def test_it_is_the_v3_sdk(v3_run):
    assert int(v3_run[0]["sdk"].split(".")[0]) >= 3


def test_model_trainer_train(v3_run, sagemaker_client, s3_client):
    report = v3_run[0]
    assert report["trainer_status"] == "Completed"
    job = sagemaker_client.describe_training_job(TrainingJobName=report["trainer_job"])
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AlgorithmSpecification"]["TrainingImage"] == "my-training:1"
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert job["HyperParameters"]["epochs"] == "1"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels["train"] == f"s3://{BUCKET}/v3-data/train.csv"
    artifacts = f"s3://{BUCKET}/v3/{report['trainer_job']}/output/model.tar.gz"
    assert report["trainer_artifacts"] == job["ModelArtifacts"]["S3ModelArtifacts"] == artifacts
    s3_client.head_object(Bucket=BUCKET, Key=artifacts.split(BUCKET + "/", 1)[1])


def test_core_training_job_create_and_wait(v3_run, sagemaker_client):
    report = v3_run[0]
    assert report["core_job_status"] == "Completed"
    job = sagemaker_client.describe_training_job(TrainingJobName="core-job")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert report["core_artifacts"] == job["ModelArtifacts"]["S3ModelArtifacts"] == \
        f"s3://{BUCKET}/core/core-job/output/model.tar.gz"


def test_core_endpoint_invoke_and_delete(v3_run, sagemaker_client):
    reply = v3_run[0]["reply"]
    assert reply["echo"] == '{"x": 1}' and reply["content_type"] == "application/json"
    assert reply["files"] == ["report-algo-1.json"]  # core-job's model.tar.gz, unpacked in the container
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sagemaker_client.describe_endpoint(EndpointName="core-endpoint")
    deadline = time.monotonic() + 30
    while endpoint_containers("core-endpoint") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert endpoint_containers("core-endpoint") == []


def test_no_telemetry_and_quick(v3_run):
    report, seconds = v3_run
    assert report["telemetry_requests"] == []
    assert seconds < 120, f"the v3 client took {seconds:.0f}s"


def test_iam_simulate_principal_policy(sagemaker_emulator):
    """What v3's role check needs from the embedded IAM: every action allowed for an existing role."""
    iam = sagemaker_emulator.client("iam")
    name = unique("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "sagemaker.amazonaws.com"}}]}))["Role"]["Arn"]
    results = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:PutObject", "sagemaker:*"],
                                            ResourceArns=["arn:aws:s3:::b/*"])["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results] == [
        ("s3:PutObject", "arn:aws:s3:::b/*", "allowed"), ("sagemaker:*", "arn:aws:s3:::b/*", "allowed")]
    with pytest.raises(ClientError) as err:
        iam.simulate_principal_policy(PolicySourceArn=arn + "-gone", ActionNames=["s3:PutObject"])
    assert err.value.response["Error"]["Code"] == "NoSuchEntity"


@pytest.fixture(scope="module")
def v3_sklearn_run(sdk_v3_python, sagemaker_emulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sdk-v3-sklearn")
    shutil.copy(ROOT / "tests" / "sdk_v3_sklearn_client.py", workdir)
    shutil.copy(ROOT / "tests" / "sdk_v3_common.py", workdir)
    env = client_env(sagemaker_emulator.endpoint_url)
    done = subprocess.run([sdk_v3_python, "sdk_v3_sklearn_client.py"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=1200)  # the first use builds the stand-in
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_model_trainer_on_the_sklearn_image(docker_ready, v3_sklearn_run, sagemaker_client, logs_client, s3_client):
    """v3's ModelTrainer with SourceCode runs its own driver (sm_train.sh) in AWS's sklearn image."""
    report = v3_sklearn_run
    assert report["image"] == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert (report["status"], report["failure"]) == ("Completed", None)
    job = sagemaker_client.describe_training_job(TrainingJobName=report["job"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == report["image"]
    streams = logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                               logStreamNamePrefix=report["job"] + "/")["logStreams"]
    lines = [e["message"] for s in streams for e in logs_client.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"], startFromHead=True)["events"]]
    trained = next(line for line in lines if line.startswith("trained sklearn"))
    assert trained.startswith("trained sklearn 1.2") and "coef [2.0" in trained, trained
    key = report["artifacts"].split(f"s3://{BUCKET}/", 1)[1]
    with tarfile.open(fileobj=io.BytesIO(s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read())) as tar:
        assert "model.pkl" in tar.getnames()


def test_v3_hyperparameter_tuner_runs_real_jobs_and_finds_the_best(sdk_v3_python, sagemaker_emulator,
                                                                   sagemaker_client, training_image, tmp_path):
    """SDK v3's HyperparameterTuner, unchanged: tune() with wait, describe, best_training_job, analytics;
    checked against the objective each child really printed (a known function of its hyperparameters)."""
    subprocess.run(["docker", "tag", training_image, "my-training:1"], check=True)
    (tmp_path / "train.csv").write_text("1,2\n3,4\n")
    shutil.copy(ROOT / "tests" / "sdk_v3_tuner_client.py", tmp_path)
    shutil.copy(ROOT / "tests" / "sdk_v3_common.py", tmp_path)
    env = client_env(sagemaker_emulator.endpoint_url)
    done = subprocess.run([sdk_v3_python, "sdk_v3_tuner_client.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == "Completed" and seen["completed"] == 4
    jobs = sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=seen["tuning_job"])["TrainingJobSummaries"]
    assert sorted(j["TrainingJobName"] for j in jobs) == seen["analytics_jobs"]

    def peak(hp: dict) -> float:  # tests/tuning_objective.py's function at the last epoch
        return 10 - (float(hp["x"]) - 3) ** 2 + (1 if hp["optimizer"] == "adam" else 0)

    values = {j["TrainingJobName"]: peak(j["TunedHyperParameters"]) for j in jobs}
    assert seen["best"] == max(values, key=values.__getitem__)
    assert abs(seen["analytics_best"] - max(values.values())) < 1e-4


def test_mlops_pipeline_upsert_start_wait_list_steps(sdk_v3_python, sagemaker_emulator, processing_image,
                                                      sagemaker_client, tmp_path):
    """SDK v3's `sagemaker.mlops.workflow` Pipeline: two processing steps, the second after the first
    (tests/sdk_v3_pipeline_client.py runs in .venv-sdk3)."""
    shutil.copy(ROOT / "tests" / "sdk_v3_pipeline_client.py", tmp_path)
    env = client_env(sagemaker_emulator.endpoint_url)
    name = unique("v3-pipeline")
    done = subprocess.run([sdk_v3_python, "sdk_v3_pipeline_client.py", processing_image, name], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "Succeeded", report
    assert sorted((s["name"], s["status"]) for s in report["steps"]) == [("First", "Succeeded"),
                                                                         ("Second", "Succeeded")]
    ran = {s["StepName"]: s for s in sagemaker_client.list_pipeline_execution_steps(
        PipelineExecutionArn=report["execution"])["PipelineExecutionSteps"]}
    assert ran["Second"]["StartTime"] >= ran["First"]["EndTime"]
    job = sagemaker_client.describe_processing_job(
        ProcessingJobName=ran["Second"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1])
    assert job["ProcessingJobStatus"] == "Completed" and job["AppSpecification"]["ImageUri"] == processing_image
