"""Users see progress: one readable line per status transition in the server's log, and periodic lines
for long transfers (sagemaker_emulator.staging.ProgressReporter)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import WaiterError

from sagemaker_emulator.staging import progress as progress_module
from sagemaker_emulator.staging.progress import ProgressReporter
from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, unique

README = Path(__file__).resolve().parent.parent / "README.md"


def wait_for_lines(server: EmulatorServer, pattern: str, timeout: float = 30) -> list[str]:
    """The server's output lines matching `pattern`, waiting for at least one."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in list(server.output) if re.search(pattern, line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def transitions(server: EmulatorServer, prefix: str) -> list[str]:
    """`<Status>[/<Secondary>]` of every `<prefix>: <Status>... - ...` line, in order."""
    out = []
    for line in list(server.output):
        match = re.search(re.escape(prefix) + r": (\S+?)(?: - |$)", line)
        if match:
            out.append(match.group(1))
    return out


def run_training(sm, s3, image: str, name: str, bucket: str, body: bytes = b"1,2\n") -> dict:
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=body)
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 300})
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name,
                                                            WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return sm.describe_training_job(TrainingJobName=name)


def test_training_job_transitions_in_server_log(sagemaker_emulator, training_image):
    sm, s3 = sagemaker_emulator.client("sagemaker"), sagemaker_emulator.client("s3")
    name = unique("progress-job")
    job = run_training(sm, s3, training_image, name, unique("progress-bucket"))
    assert job["TrainingJobStatus"] == "Completed"
    assert wait_for_lines(sagemaker_emulator, f"training job {name}: Completed/Completed - Training job completed")
    # every secondary status the API shows, in the same order, each as one line with its message
    assert transitions(sagemaker_emulator, f"training job {name}") == [
        f"InProgress/{t['Status']}" for t in job["SecondaryStatusTransitions"][:-1]] + ["Completed/Completed"]
    starting = wait_for_lines(sagemaker_emulator, f"training job {name}: InProgress/Starting - ")[0]
    assert starting.endswith("Preparing the instances for training")
    assert " INFO " in starting  # the logging format: time, level, logger, message


def test_failed_training_job_says_why(sagemaker_emulator, training_image):
    sm = sagemaker_emulator.client("sagemaker")
    name = unique("progress-fail")
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters={"behaviour": "fail-file"},
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "file:///tmp/sm-progress-unused"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 300})
    with pytest.raises(WaiterError):  # the waiter's failure state: Failed
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name,
                                                                WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    line = wait_for_lines(sagemaker_emulator, f"training job {name}: Failed/Failed - ")
    assert line and line[0].endswith("AlgorithmError: Bad hyperparameter: learning_rate must be positive"), line


def test_endpoint_transitions_in_server_log(sagemaker_emulator, serving_image):
    sm = sagemaker_emulator.client("sagemaker")
    name = unique("progress-ep")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    finally:
        sm.delete_endpoint(EndpointName=name)
    assert wait_for_lines(sagemaker_emulator, f"endpoint {name}: Deleting")
    assert transitions(sagemaker_emulator, f"endpoint {name}") == ["Creating", "InService", "Deleting"]
    assert wait_for_lines(sagemaker_emulator, f"endpoint {name}: InService - endpoint config {name} deployed")


def test_long_transfers_log_progress(training_image, tmp_path):
    """With the progress interval at 0 (SAGEMAKER_EMULATOR_PROGRESS_LOG_SECONDS: every chunk), a 24 MiB channel
    download logs `(in progress)` lines, then a `(done) in <t>s` line (INFO because it is over 16 MiB)."""
    with EmulatorServer(data_dir=tmp_path / "data", env={"SAGEMAKER_EMULATOR_PROGRESS_LOG_SECONDS": "0"}) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("progress-big")
        body = b"0123456789abcdef" * (24 * 1024 * 1024 // 16)
        job = run_training(sm, s3, training_image, unique("progress-big"), bucket, body=body)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        uri = re.escape(f"s3://{bucket}/train/")
        running = wait_for_lines(server, rf"emulator\.staging: download {uri}: 0/1 objects, [\d.]+ MiB/24\.0 MiB "
                                         r"\(in progress\)")
        done = wait_for_lines(server, rf"emulator\.staging: download {uri}: 1/1 objects, 24\.0 MiB/24\.0 MiB "
                                      r"\(done\) in \d+\.\ds")
        assert running and done, "\n".join(server.output[-60:])
        assert server.output.index(running[0]) < server.output.index(done[0])


def test_small_transfers_stay_quiet_and_slow_ones_report(caplog, monkeypatch):
    """The reporter itself: nothing at INFO for a quick small transfer; a line every interval while a
    transfer runs, and its end, for a slow one."""
    caplog.set_level(logging.INFO, logger="sagemaker_emulator.staging")
    quick = ProgressReporter("download", "s3://b/small/", objects_total=1, bytes_total=10, log_interval=5)
    quick.add_bytes(10)
    quick.object_done("s3://b/small/x")
    quick.finish()
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []

    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.05)
    slow = ProgressReporter("upload", "s3://b/out/", objects_total=2, bytes_total=4096)
    for _ in range(4):
        time.sleep(0.06)
        slow.add_bytes(1024, "s3://b/out/model.tar.gz")
    slow.object_done()
    slow.object_done()
    slow.finish()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines[:2] == ["upload s3://b/out/: 0/2 objects, 1.0 KiB/4.0 KiB (in progress)",
                         "upload s3://b/out/: 0/2 objects, 2.0 KiB/4.0 KiB (in progress)"]
    assert re.fullmatch(r"upload s3://b/out/: 2/2 objects, 4\.0 KiB/4\.0 KiB \(done\) in 0\.\ds", lines[-1])


def test_readme_follow_snippet(sagemaker_emulator, training_image):
    """The README's "Following a job" boto3 snippet, run as written on a job that is still running."""
    text = README.read_text()
    start = text.index("### Following a job")
    code = re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)
    sm = sagemaker_emulator.client("sagemaker")
    name = unique("follow")
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "file:///tmp/sm-progress-unused"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 300})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=sagemaker_emulator.endpoint_url, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    assert 'follow_training_job("my-job")' in code
    result = subprocess.run([sys.executable, "-c", code.replace('"my-job"', repr(name))], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("starting on algo-1") and lines[-2:] == ["done", "Completed"], lines
