"""Tuning jobs running real training containers (tests/images/training, behaviour=objective): the
objective is a known function of the hyperparameters (tests/tuning_objective.py), printed per epoch."""

from __future__ import annotations

import pytest

from sagemaker_emulator.testing import EmulatorServer

from .helpers import managed_containers, unique, wait_until
from .tuning_objective import (
    children,
    finished,
    max_concurrency,
    objective_lines,
    peak,
    reporting,
    tuning_request,
)

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


def _stopped_before_the_end(sm, logs, name: str, epochs: int) -> tuple[list[dict], list[dict]]:
    """(stopped, completed) children of a finished tuning job; every stopped one logged fewer than `epochs`
    epochs (stopped early, not at the end) and every completed one all of them."""
    found = children(sm, name)
    stopped = [c for c in found if c["TrainingJobStatus"] == "Stopped"]
    completed = [c for c in found if c["TrainingJobStatus"] == "Completed"]
    assert len(stopped) + len(completed) == len(found), [c["TrainingJobStatus"] for c in found]
    for child in stopped:
        assert 1 <= len(objective_lines(logs, child["TrainingJobName"])) < epochs, child
    for child in completed:
        assert len(objective_lines(logs, child["TrainingJobName"])) == epochs, child
    return stopped, completed


def test_auto_early_stopping_stops_the_bad_jobs_before_their_end(sagemaker_emulator, sagemaker_client, bucket,
                                                                 training_image):
    """Seed 1 proposes peaks 8.9, 7.8, 6.0, 5.0, 6.0: the later ones are worse than the median of the earlier."""
    sm, name, epochs = sagemaker_client, unique("auto"), 8
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        name, bucket, training_image, max_jobs=5, parallel=2, RandomSeed=1, TrainingJobEarlyStoppingType="Auto",
        static={"epochs": str(epochs), "epoch_seconds": "0.4"}))
    job = finished(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    stopped, completed = _stopped_before_the_end(sm, sagemaker_emulator.client("logs"), name, epochs)
    assert stopped and completed and job["TrainingJobStatusCounters"]["Stopped"] == len(stopped)
    assert max(peak(c["TunedHyperParameters"]) for c in stopped) < max(
        peak(c["TunedHyperParameters"]) for c in completed)
    assert job["BestTrainingJob"]["TrainingJobStatus"] == "Completed"


def test_hyperband_stops_jobs_at_its_first_rung(sagemaker_emulator, sagemaker_client, bucket, training_image):
    """MinResource 1, MaxResource 9: rungs at epochs 1 and 3, each keeping the best third (once 3 jobs got there)."""
    sm, name, epochs = sagemaker_client, unique("hband"), 9
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        name, bucket, training_image, strategy="Hyperband", max_jobs=5, parallel=2, RandomSeed=1,
        StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": epochs}},
        static={"epochs": str(epochs), "epoch_seconds": "0.3"}))
    job = finished(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    stopped, completed = _stopped_before_the_end(sm, sagemaker_emulator.client("logs"), name, epochs)
    assert stopped and len(stopped) + len(completed) == 5
    best = job["BestTrainingJob"]
    assert best["TrainingJobStatus"] == "Completed"
    assert peak(best["TunedHyperParameters"]) == max(peak(c["TunedHyperParameters"]) for c in stopped + completed)


def _warm(request: dict, parent: str, kind: str) -> dict:
    request["WarmStartConfig"] = {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                                  "WarmStartType": kind}
    return request


def test_warm_start_identical_and_transfer_learning(sagemaker_client, bucket, training_image):
    """A parent of 4 jobs; a Bayesian child seeded by them (its first point is the model's, not the random start
    it has without parents) whose OverallBestTrainingJob is the best of parent and child; a TransferLearning
    child with other static hyperparameters and ranges."""
    from sagemaker_emulator.tuning.space import parse, text
    from sagemaker_emulator.tuning.strategies import RandomStrategy

    sm, parent = sagemaker_client, unique("parent")
    static = {"epochs": "2", "epoch_seconds": "0.1"}
    sm.create_hyper_parameter_tuning_job(**tuning_request(parent, bucket, training_image, max_jobs=4, parallel=2,
                                                          RandomSeed=1, static=static))
    assert finished(sm, parent)["HyperParameterTuningJobStatus"] == "Completed"
    identical, transfer = unique("ident"), unique("transfer")
    request = tuning_request(identical, bucket, training_image, strategy="Bayesian", max_jobs=2, parallel=2,
                             RandomSeed=11, static=static)
    sm.create_hyper_parameter_tuning_job(**_warm(request, parent, "IdenticalDataAndAlgorithm"))
    sm.create_hyper_parameter_tuning_job(**_warm(tuning_request(
        transfer, bucket, training_image, max_jobs=2, parallel=2, RandomSeed=3,
        static={"epochs": "3", "epoch_seconds": "0.1"},
        ranges={"ContinuousParameterRanges": [{"Name": "y", "MinValue": "0", "MaxValue": "1"}]}),
        parent, "TransferLearning"))
    child = finished(sm, identical)
    assert child["HyperParameterTuningJobStatus"] == "Completed", child.get("FailureReason")
    assert child["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"
    assert child["BestTrainingJob"]["TuningJobName"] == identical
    values = {c["TrainingJobName"]: c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
              for c in children(sm, parent) + children(sm, identical)}
    overall = child["OverallBestTrainingJob"]
    assert overall["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values.values())
    assert values[overall["TrainingJobName"]] == max(values.values())
    space = parse(request["HyperParameterTuningJobConfig"]["ParameterRanges"])
    cold = {k: text(v) for k, v in RandomStrategy(space, 11, False).random_point(0).items()}  # without parents
    first = min(children(sm, identical), key=lambda c: c["TrainingJobName"])
    assert first["TunedHyperParameters"] != cold
    other = finished(sm, transfer)
    assert other["HyperParameterTuningJobStatus"] == "Completed", other.get("FailureReason")
    for summary in children(sm, transfer):
        hps = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])["HyperParameters"]
        assert hps["epochs"] == "3" and set(summary["TunedHyperParameters"]) == {"y"}


def test_two_training_job_definitions(sagemaker_client, bucket, training_image):
    """Definitions `sgd` and `adam` (the static optimizer differs) share the budget; each job's objective is its
    own definition's function, and the best is the highest of them."""
    sm, name = sagemaker_client, unique("defs")
    request = tuning_request(name, bucket, training_image, max_jobs=4, parallel=2, RandomSeed=4,
                             static={"epochs": "2", "epoch_seconds": "0.1"})
    base = request.pop("TrainingJobDefinition")
    config = request["HyperParameterTuningJobConfig"]
    objective, ranges = config.pop("HyperParameterTuningJobObjective"), config.pop("ParameterRanges")
    request["TrainingJobDefinitions"] = [
        {**base, "DefinitionName": optimizer, "TuningObjective": objective, "HyperParameterRanges": ranges,
         "StaticHyperParameters": {**base["StaticHyperParameters"], "optimizer": optimizer}}
        for optimizer in ("sgd", "adam")]
    sm.create_hyper_parameter_tuning_job(**request)
    job = finished(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    found = children(sm, name)
    assert sorted(c["TrainingJobDefinitionName"] for c in found) == ["adam", "adam", "sgd", "sgd"]
    for c in found:
        hps = sm.describe_training_job(TrainingJobName=c["TrainingJobName"])["HyperParameters"]
        assert hps["optimizer"] == c["TrainingJobDefinitionName"]
        expected = peak({**c["TunedHyperParameters"], "optimizer": hps["optimizer"]})
        assert c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(expected, abs=1e-5)
    values = {c["TrainingJobName"]: c["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for c in found}
    assert job["BestTrainingJob"]["TrainingJobName"] == max(values, key=values.get)
    assert job["BestTrainingJob"]["TrainingJobDefinitionName"] in ("sgd", "adam")
