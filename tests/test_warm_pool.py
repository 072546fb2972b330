"""Managed warm pools of training jobs (KeepAlivePeriodInSeconds) and UpdateTrainingJob, on the fake
runtime: only what Describe/ListTrainingJobs report changes (nothing is kept alive), so the engine
logic is what is tested; the jobs themselves run through the real handlers, engine and records."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import error_of, training_request, wait_until

BUCKET = "warm-bucket"
QUICK, SLOW = "quick:1", "slow:1"


@pytest.fixture(scope="module")
def sm(tmp_path_factory):
    fake = FakeRuntime(scripts={QUICK: Script(lines=["done"], after=0.1),
                                SLOW: Script(lines=["training"], after=3.0)})
    with InProcessServer(fake, data_dir=tmp_path_factory.mktemp("warm")) as server:
        server.client("s3").create_bucket(Bucket=BUCKET)
        yield server.client("sagemaker")


def _job(sm, name: str, image: str = QUICK, keep_alive: int = 600, instance: str = "ml.m5.large") -> None:
    config = {"InstanceType": instance, "InstanceCount": 1, "VolumeSizeInGB": 1}
    if keep_alive:
        config["KeepAlivePeriodInSeconds"] = keep_alive
    sm.create_training_job(**training_request(name, BUCKET, image, ResourceConfig=config))


def _ended(sm, name: str) -> dict:
    return wait_until(lambda: (d := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"]
                      in ("Completed", "Failed", "Stopped") and d, timeout=30, what=f"{name} ended")


def _pool(sm, name: str) -> dict | None:
    return sm.describe_training_job(TrainingJobName=name).get("WarmPoolStatus")


def test_a_pool_is_available_reused_by_a_matching_job_and_moves_on(sm):
    _job(sm, "wp-first")
    first = _ended(sm, "wp-first")
    assert first["TrainingJobStatus"] == "Completed"
    pool = first["WarmPoolStatus"]
    assert pool["Status"] == "Available" and pool["ResourceRetainedBillableTimeInSeconds"] >= 0
    listed = sm.list_training_jobs(WarmPoolStatusEquals="Available", NameContains="wp-")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == ["wp-first"] and listed[0]["WarmPoolStatus"]["Status"] == \
        "Available"
    _job(sm, "wp-other", instance="ml.c5.xlarge", keep_alive=60)  # another instance type: not a match
    _job(sm, "wp-plain", keep_alive=0)  # no warm pool asked for: it does not take one
    assert _pool(sm, "wp-other") is None and _pool(sm, "wp-plain") is None
    assert _pool(sm, "wp-first")["Status"] == "Available"
    _job(sm, "wp-second", image=SLOW, keep_alive=300)  # matches: it takes the pool over
    assert _pool(sm, "wp-second") == {"Status": "InUse"}
    reused = _pool(sm, "wp-first")
    assert reused["Status"] == "Reused" and reused["ReusedByJob"] == "wp-second"
    _job(sm, "wp-third", keep_alive=60)  # the pool is taken: nothing left to reuse
    assert _ended(sm, "wp-third")["WarmPoolStatus"]["Status"] == "Available"
    second = _ended(sm, "wp-second")
    assert second["WarmPoolStatus"]["Status"] == "Available"
    statuses = {s["TrainingJobName"]: s.get("WarmPoolStatus", {}).get("Status")
                for s in sm.list_training_jobs(NameContains="wp-")["TrainingJobSummaries"]}
    assert statuses == {"wp-first": "Reused", "wp-other": "Available", "wp-plain": None, "wp-second": "Available",
                        "wp-third": "Available"}


def test_keep_alive_ends_a_pool(sm):
    _job(sm, "wp-short", keep_alive=1)
    assert _ended(sm, "wp-short")["WarmPoolStatus"]["Status"] == "Available"
    time.sleep(1.5)
    pool = _pool(sm, "wp-short")
    assert pool == {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 1}
    _job(sm, "wp-never", keep_alive=0)
    assert "WarmPoolStatus" not in _ended(sm, "wp-never")


def test_update_training_job(sm):
    _job(sm, "wp-running", image=SLOW, keep_alive=0, instance="ml.m5.xlarge")
    arn = sm.update_training_job(TrainingJobName="wp-running", ProfilerConfig={
        "S3OutputPath": f"s3://{BUCKET}/profiler", "ProfilingIntervalInMilliseconds": 500},
        RemoteDebugConfig={"EnableRemoteDebug": True}, ResourceConfig={"KeepAlivePeriodInSeconds": 120},
        ProfilerRuleConfigurations=[{"RuleConfigurationName": "LowGPU", "RuleEvaluatorImage": "rules:1"}])
    assert arn["TrainingJobArn"].endswith(":training-job/wp-running")
    running = sm.describe_training_job(TrainingJobName="wp-running")
    assert running["ProfilingStatus"] == "Enabled" and running["ProfilerConfig"]["ProfilingIntervalInMilliseconds"] \
        == 500 and running["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
    assert [r["RuleConfigurationName"] for r in running["ProfilerRuleConfigurations"]] == ["LowGPU"]
    assert running["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 120
    ended = _ended(sm, "wp-running")
    assert ended["WarmPoolStatus"]["Status"] == "Available"
    with pytest.raises(ClientError) as excinfo:  # profiler settings only while it runs; nothing half-applied
        sm.update_training_job(TrainingJobName="wp-running", ProfilerConfig={"DisableProfiler": True},
                               ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    assert error_of(excinfo)[0] == "ValidationException"
    assert _pool(sm, "wp-running")["Status"] == "Available"
    sm.update_training_job(TrainingJobName="wp-running", ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    assert _pool(sm, "wp-running")["Status"] == "Terminated"
    with pytest.raises(ClientError) as excinfo:  # a terminated pool cannot come back
        sm.update_training_job(TrainingJobName="wp-running", ResourceConfig={"KeepAlivePeriodInSeconds": 60})
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException" and "Terminated" in message
    with pytest.raises(ClientError) as excinfo:
        sm.update_training_job(TrainingJobName="wp-missing", ResourceConfig={"KeepAlivePeriodInSeconds": 60})
    assert error_of(excinfo)[0] == "ResourceNotFound"
    with pytest.raises(ClientError) as excinfo:
        sm.update_training_job(TrainingJobName="wp-running")
    assert error_of(excinfo)[0] == "ValidationException"
