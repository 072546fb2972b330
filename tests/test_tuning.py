"""Tuning jobs running real training containers (tests/images/training, behaviour=objective): the
objective is a known function of the hyperparameters (tests/tuning_objective.py), printed per epoch."""

from __future__ import annotations

import pytest

from sagemaker_emulator.testing import EmulatorServer

from .helpers import managed_containers, unique, wait_until
from .tuning_objective import children, finished, max_concurrency, peak, reporting, tuning_request

SMALL = {"IntegerParameterRanges": [{"Name": "x", "MinValue": "2", "MaxValue": "4"}],
         "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam"]}]}


@pytest.fixture
def bucket(sagemaker_emulator):
    name = unique("tuning")
    sagemaker_emulator.client("s3").create_bucket(Bucket=name)
    return name


def test_random_finds_the_best_and_never_runs_more_than_two(sagemaker_client, bucket, training_image):
    sm, name = sagemaker_client, unique("rnd")
    sm.create_hyper_parameter_tuning_job(**tuning_request(name, bucket, training_image, max_jobs=8, parallel=2,
                                                          ranges=SMALL, RandomSeed=0))
    job = finished(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"] == {"Completed": 8, "InProgress": 0, "RetryableError": 0,
                                                "NonRetryableError": 0, "Stopped": 0}
    found = children(sm, name)
    described = [sm.describe_training_job(TrainingJobName=c["TrainingJobName"]) for c in found]
    assert max_concurrency(described) <= 2
    assert all(d["TuningJobArn"] == job["HyperParameterTuningJobArn"] for d in described)
    assert all(c["TrainingJobName"].startswith(f"{name}-") for c in found)
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"x": "3", "optimizer": "adam"}
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        peak({"x": "3", "y": "0.25", "optimizer": "adam"}) - 4 * 0.25 ** 2)
    assert job["ConsumedResources"]["RuntimeInSeconds"] >= 0


def test_grid_runs_the_exact_product(sagemaker_client, bucket, training_image):
    sm, name = sagemaker_client, unique("grid")
    ranges = {"CategoricalParameterRanges": [{"Name": "x", "Values": ["2", "3"]},
                                             {"Name": "optimizer", "Values": ["sgd", "adam"]}]}
    sm.create_hyper_parameter_tuning_job(**tuning_request(name, bucket, training_image, strategy="Grid",
                                                          max_jobs=None, parallel=4, ranges=ranges))
    job = finished(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert sorted(tuple(sorted(c["TunedHyperParameters"].items())) for c in children(sm, name)) == sorted(
        (("optimizer", o), ("x", x)) for x in ("2", "3") for o in ("sgd", "adam"))


def test_stop_stops_every_running_job(sagemaker_emulator, sagemaker_client, bucket, training_image):
    sm, name = sagemaker_client, unique("stop")
    sm.create_hyper_parameter_tuning_job(**tuning_request(name, bucket, training_image, max_jobs=4, parallel=2,
                                                          static={"epochs": "300", "epoch_seconds": "1"}))
    logs = sagemaker_emulator.client("logs")  # stopped once their program runs (a SIGTERM before that waits the grace)
    wait_until(lambda: sum(c["TrainingJobStatus"] == "InProgress" and reporting(logs, c["TrainingJobName"])
                           for c in children(sm, name)) == 2, 60, "two running jobs")
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    job = finished(sm, name, timeout=120)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    assert [c["TrainingJobStatus"] for c in children(sm, name)] == ["Stopped", "Stopped"]


def test_restart_mid_tuning_finishes_with_the_right_counters(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket, name = unique("restart"), unique("resume")
        s3.create_bucket(Bucket=bucket)
        sm.create_hyper_parameter_tuning_job(**tuning_request(name, bucket, training_image, max_jobs=4, parallel=2,
                                                              static={"epochs": "8", "epoch_seconds": "1"}))
        logs = server.client("logs")  # their containers run (a job without one yet fails on restart, as it should)
        wait_until(lambda: sum(c["TrainingJobStatus"] == "InProgress" and reporting(logs, c["TrainingJobName"])
                               for c in children(sm, name)) == 2, 60, "two running jobs")
        server.stop(kill=True)
        server.start()
        sm, s3 = server.client("sagemaker"), server.client("s3")
        s3.create_bucket(Bucket=bucket)  # moto's S3 lives in memory
        job = finished(sm, name)
        assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
        assert job["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0,
                                                    "NonRetryableError": 0, "Stopped": 0}
        assert job["ObjectiveStatusCounters"]["Succeeded"] == 4
        assert len(children(sm, name)) == 4
    assert managed_containers(server) == []
