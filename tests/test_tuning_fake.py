"""Tuning-engine logic on a FakeRuntime (no Docker): limits, strategies, stop, early stopping, completion
criteria and validation, through the real API, handlers, training engine and events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import error_of, wait_until
from .tuning_objective import (
    children,
    fake_script,
    finished,
    max_concurrency,
    peak,
    reporting,
    tuning_request,
)

IMAGE = "tuner:1"
BUCKET = "tuning-bucket"


@pytest.fixture
def make(tmp_path: Path):
    """make(epochs, per_epoch) -> (server, sagemaker client): jobs print the objective per epoch."""
    made: list[InProcessServer] = []

    def start(epochs: int = 3, per_epoch: float = 0.05) -> tuple[InProcessServer, Any]:
        emu = InProcessServer(FakeRuntime(script_for=fake_script(epochs, per_epoch)),
                              data_dir=tmp_path / f"data{len(made)}", stop_grace_seconds=1.0).start()
        made.append(emu)
        emu.client("s3").create_bucket(Bucket=BUCKET)
        return emu, emu.client("sagemaker")

    yield start
    for emu in made:
        emu.stop()


@pytest.fixture
def sm(make):
    return make()[1]


def test_random_respects_limits_and_finds_best(sm):
    sm.create_hyper_parameter_tuning_job(**tuning_request("rnd", BUCKET, IMAGE, RandomSeed=7))
    job = finished(sm, "rnd")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"]["Completed"] == 8
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 8, "Pending": 0, "Failed": 0}
    found = children(sm, "rnd")
    assert len(found) == 8
    described = [sm.describe_training_job(TrainingJobName=c["TrainingJobName"]) for c in found]
    assert max_concurrency(described) <= 2
    assert all(d["TuningJobArn"] == job["HyperParameterTuningJobArn"] for d in described)
    assert all(d["HyperParameters"]["_tuning_objective_metric"] == "objective" for d in described)
    values = {c["TrainingJobName"]: peak(c["TunedHyperParameters"]) for c in found}
    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == max(values, key=values.get)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(max(values.values()),
                                                                                        abs=1e-5)
    assert job["TrainingJobDefinition"]["StaticHyperParameters"]["_tuning_objective_metric"] == "objective"
    # SortBy FinalObjectiveMetricValue, descending: the best first
    top = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="rnd", SortBy="FinalObjectiveMetricValue", SortOrder="Descending", MaxResults=3)
    assert top["TrainingJobSummaries"][0]["TrainingJobName"] == best["TrainingJobName"]
    assert len(top["TrainingJobSummaries"]) == 3 and "NextToken" in top


def test_random_is_reproducible(sm):
    for name in ("seed-a", "seed-b"):
        sm.create_hyper_parameter_tuning_job(**tuning_request(name, BUCKET, IMAGE, max_jobs=4, parallel=4,
                                                              RandomSeed=42))
    tuned = [sorted(tuple(sorted(c["TunedHyperParameters"].items())) for c in children(sm, n))
             for n in ("seed-a", "seed-b") if finished(sm, n)]
    assert tuned[0] == tuned[1]


def test_grid_enumerates_the_product(sm):
    ranges = {"CategoricalParameterRanges": [{"Name": "x", "Values": ["1", "3", "5"]},
                                             {"Name": "optimizer", "Values": ["sgd", "adam"]}]}
    sm.create_hyper_parameter_tuning_job(**tuning_request("grid", BUCKET, IMAGE, strategy="Grid", max_jobs=None,
                                                          parallel=3, ranges=ranges))
    job = finished(sm, "grid")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    points = sorted((c["TunedHyperParameters"]["x"], c["TunedHyperParameters"]["optimizer"])
                    for c in children(sm, "grid"))
    assert points == sorted((x, o) for x in ("1", "3", "5") for o in ("sgd", "adam"))
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"x": "3", "optimizer": "adam"}


def test_target_objective_ends_early(sm):
    ranges = {"CategoricalParameterRanges": [{"Name": "x", "Values": ["3"]}]}
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "target", BUCKET, IMAGE, max_jobs=6, parallel=1, ranges=ranges,
        TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 5.0}))
    job = finished(sm, "target")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert sum(job["TrainingJobStatusCounters"].values()) == 1


def test_auto_early_stopping_stops_bad_jobs(make):
    _, sm = make(epochs=8, per_epoch=0.12)
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "auto", BUCKET, IMAGE, max_jobs=10, parallel=1, RandomSeed=3, TrainingJobEarlyStoppingType="Auto"))
    job = finished(sm, "auto", timeout=120)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"]["Stopped"] >= 1
    stopped = [c for c in children(sm, "auto") if c["TrainingJobStatus"] == "Stopped"]
    completed = [c for c in children(sm, "auto") if c["TrainingJobStatus"] == "Completed"]
    assert stopped and completed
    # every early-stopped job was worse than the median of those before it
    assert min(peak(c["TunedHyperParameters"]) for c in stopped) < max(
        peak(c["TunedHyperParameters"]) for c in completed)


def test_hyperband_stops_jobs_at_its_rungs(make):
    _, sm = make(epochs=9, per_epoch=0.15)
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "hb", BUCKET, IMAGE, strategy="Hyperband", max_jobs=8, parallel=1, RandomSeed=5,
        static={"epochs": "9"}))  # MaxResource inferred from epochs: rungs at 1 and 3 epochs
    job = finished(sm, "hb", timeout=120)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    found = children(sm, "hb")
    stopped = [c for c in found if c["TrainingJobStatus"] == "Stopped"]
    assert len(found) == 8 and stopped
    best = job["BestTrainingJob"]
    assert best["TrainingJobStatus"] == "Completed"
    assert peak(best["TunedHyperParameters"]) == max(peak(c["TunedHyperParameters"]) for c in found)


def test_stop_stops_every_child(make):
    _, sm = make(epochs=200, per_epoch=0.2)
    sm.create_hyper_parameter_tuning_job(**tuning_request("stopme", BUCKET, IMAGE, max_jobs=6, parallel=3))
    wait_until(lambda: len([c for c in children(sm, "stopme") if c["TrainingJobStatus"] == "InProgress"]) == 3,
               20, "three running children")
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    assert sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")[
        "HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    job = finished(sm, "stopme")
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    assert job["TrainingJobStatusCounters"]["Stopped"] == 3
    assert len(children(sm, "stopme")) == 3
    with pytest.raises(ClientError) as err:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    assert error_of(err)[0] == "ValidationException"
    sm.delete_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    with pytest.raises(ClientError) as err:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    assert error_of(err)[0] == "ResourceNotFound"


@pytest.mark.parametrize("change, message", [
    (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(
        MinValue="9"), "less than or equal"),
    (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0].update(
        ScalingType="Logarithmic"), "greater than 0"),
    (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(
        ScalingType="ReverseLogarithmic"), "not supported for integer"),
    (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(
        MinValue="a"), "not an integer"),
    (lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].pop("MaxNumberOfTrainingJobs"), "required"),
    (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"), "only CategoricalParameterRanges"),
    (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "MaxResource"),
    (lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(MetricName="loss"),
     "MetricDefinitions"),
    (lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(x="1"), "both static and tunable"),
])
def test_validation(sm, change, message):
    request = tuning_request("bad", BUCKET, IMAGE)
    change(request)
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**request)
    code, text, _ = error_of(err)
    assert code == "ValidationException" and message in text, text


def test_a_builtin_algorithms_metrics_are_objectives_without_metric_definitions(sm):
    """AWS's XGBoost image (no sagemaker_program) implies `validation:rmse` & co.; other names are refused."""
    from sagemaker import image_uris

    request = tuning_request("xgb-objective", BUCKET, image_uris.retrieve("xgboost", "us-east-1", "1.7-1"),
                             max_jobs=1, parallel=1)
    request["TrainingJobDefinition"]["AlgorithmSpecification"].pop("MetricDefinitions")
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] = {
        "Type": "Minimize", "MetricName": "validation:nope"}
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**request)
    assert "the algorithm's metrics" in error_of(err)[1] and "validation:rmse" in error_of(err)[1]
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"] = "validation:rmse"
    sm.create_hyper_parameter_tuning_job(**request)
    finished(sm, "xgb-objective")  # the fake job prints no rmse: what matters here is that it was accepted


def test_list_filters_sorts_and_pages(sm):
    for name in ("list-a", "list-b", "list-c"):
        sm.create_hyper_parameter_tuning_job(**tuning_request(name, BUCKET, IMAGE, max_jobs=1, parallel=1))
    for name in ("list-a", "list-b", "list-c"):
        finished(sm, name)
    page = sm.list_hyper_parameter_tuning_jobs(NameContains="list-", MaxResults=2)  # default: Name, Ascending
    assert [s["HyperParameterTuningJobName"] for s in page["HyperParameterTuningJobSummaries"]] == ["list-a",
                                                                                                    "list-b"]
    rest = sm.list_hyper_parameter_tuning_jobs(NameContains="list-", SortBy="Name", SortOrder="Ascending",
                                               NextToken=page["NextToken"])
    assert [s["HyperParameterTuningJobName"] for s in rest["HyperParameterTuningJobSummaries"]] == ["list-c"]
    assert rest["HyperParameterTuningJobSummaries"][0]["Strategy"] == "Random"
    assert sm.list_hyper_parameter_tuning_jobs(StatusEquals="InProgress")["HyperParameterTuningJobSummaries"] == []


def _warm(request: dict, parent: str, kind: str = "IdenticalDataAndAlgorithm") -> dict:
    request["WarmStartConfig"] = {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                                  "WarmStartType": kind}
    return request


def test_warm_start_overall_best_spans_the_parents(sm):
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "parent", BUCKET, IMAGE, strategy="Grid", max_jobs=None, parallel=2,
        ranges={"CategoricalParameterRanges": [{"Name": "x", "Values": ["3"]},
                                               {"Name": "optimizer", "Values": ["adam", "sgd"]}]}))
    with pytest.raises(ClientError) as err:  # a parent must have finished
        sm.create_hyper_parameter_tuning_job(**_warm(tuning_request("early-child", BUCKET, IMAGE), "parent"))
    assert "must be Completed" in error_of(err)[1]
    parent = finished(sm, "parent")
    request = tuning_request("child", BUCKET, IMAGE, strategy="Bayesian", max_jobs=2, parallel=1,
                             ranges={"CategoricalParameterRanges": [{"Name": "x", "Values": ["0", "1"]}]})
    sm.create_hyper_parameter_tuning_job(**_warm(request, "parent"))
    child = finished(sm, "child")
    assert child["HyperParameterTuningJobStatus"] == "Completed"
    assert child["BestTrainingJob"]["TuningJobName"] == "child"
    assert child["OverallBestTrainingJob"]["TrainingJobName"] == parent["BestTrainingJob"]["TrainingJobName"]
    assert child["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**_warm(tuning_request("orphan", BUCKET, IMAGE), "nobody",
                                                     "TransferLearning"))
    assert "does not exist" in error_of(err)[1]


def test_tags_on_create_and_through_the_tag_operations(sm):
    arn = sm.create_hyper_parameter_tuning_job(**tuning_request("tagged", BUCKET, IMAGE, max_jobs=1, parallel=1),
                                               Tags=[{"Key": "team", "Value": "ml"}])["HyperParameterTuningJobArn"]
    assert arn.endswith(":hyper-parameter-tuning-job/tagged")
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "dev"}])
    assert sorted(t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]) == ["stage", "team"]
    finished(sm, "tagged")


def test_several_definitions_take_turns(sm):
    request = tuning_request("multi", BUCKET, IMAGE, max_jobs=4, parallel=2, strategy="Bayesian")
    base = request.pop("TrainingJobDefinition")
    config = request["HyperParameterTuningJobConfig"]
    objective, ranges = config.pop("HyperParameterTuningJobObjective"), config.pop("ParameterRanges")
    request["TrainingJobDefinitions"] = [
        {**base, "DefinitionName": name, "TuningObjective": objective, "HyperParameterRanges": ranges,
         "StaticHyperParameters": {**base["StaticHyperParameters"], "optimizer": name}} for name in ("sgd", "adam")]
    sm.create_hyper_parameter_tuning_job(**request)
    job = finished(sm, "multi")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    found = children(sm, "multi")
    assert sorted(c["TrainingJobDefinitionName"] for c in found) == ["adam", "adam", "sgd", "sgd"]
    for c in found:
        hps = sm.describe_training_job(TrainingJobName=c["TrainingJobName"])["HyperParameters"]
        assert hps["optimizer"] == c["TrainingJobDefinitionName"]


def test_best_objective_not_improving(make):
    _, sm = make(epochs=2, per_epoch=0.05)
    same = {"CategoricalParameterRanges": [{"Name": "x", "Values": ["3"]}]}  # every job scores the same
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "flat", BUCKET, IMAGE, max_jobs=10, parallel=1, ranges=same,
        TuningJobCompletionCriteria={"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}))
    job = finished(sm, "flat")
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert sum(job["TrainingJobStatusCounters"].values()) == 4
    assert job["TuningJobCompletionDetails"]["NumberOfTrainingJobsObjectiveNotImproving"] == 3


def test_max_runtime_stops_the_children_and_completes(make):
    """The engine's deadline (its timer fires after MaxRuntimeInSeconds, at least 120 s): here the stored
    creation time is moved back instead of waiting, then the deadline handler runs."""
    from sagemaker_emulator.storage import resources

    emu, sm = make(epochs=200, per_epoch=0.2)
    request = tuning_request("timed", BUCKET, IMAGE, max_jobs=4, parallel=2)
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 120
    sm.create_hyper_parameter_tuning_job(**request)
    logs = emu.client("logs")
    wait_until(lambda: sum(c["TrainingJobStatus"] == "InProgress" and reporting(logs, c["TrainingJobName"])
                           for c in children(sm, "timed")) == 2, 20, "two children reporting")

    def earlier(doc: dict) -> None:
        doc["CreationTime"] -= 200

    resources.update("hyper-parameter-tuning-job", "us-east-1", "timed", earlier)
    emu.services.tuning._on_deadline("us-east-1", "timed")
    job = finished(sm, "timed", timeout=30)
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert job["TrainingJobStatusCounters"]["Stopped"] == 2 and len(children(sm, "timed")) == 2


def test_list_training_jobs_for_tuning_rejects_a_foreign_token(sm):
    sm.create_hyper_parameter_tuning_job(**tuning_request("tok", BUCKET, IMAGE, max_jobs=1, parallel=1))
    for token in ("-3", "abc"):
        with pytest.raises(ClientError) as err:
            sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tok", NextToken=token)
        assert error_of(err)[0] == "ValidationException"
    with pytest.raises(ClientError) as err:
        sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope")
    assert error_of(err)[0] == "ResourceNotFound"
    finished(sm, "tok")
