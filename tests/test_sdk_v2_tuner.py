"""The SDK v2 `HyperparameterTuner`, unchanged, against real tuning: fit, wait, best_training_job, deploy,
predict, analytics().dataframe(), attach and stop_tuning_job. The session and images are
tests/test_sdk_v2.py's fixtures; the images are this checkout's own builds (other checkouts sharing the
Docker engine retag `my-training:1`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from .helpers import ROLE, unique, wait_until
from .readme import missing_from
from .test_sdk_v2 import sdk, session  # noqa: F401  (fixtures)
from .tuning_objective import METRIC, reporting


def _tuner(session, image: str, name_hint: str, max_jobs: int, **hyperparameters):  # noqa: F811
    from sagemaker.estimator import Estimator
    from sagemaker.tuner import CategoricalParameter, HyperparameterTuner, IntegerParameter

    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="ml.m5.large",
                          hyperparameters={"behaviour": "objective", "epoch_seconds": "0.1", **hyperparameters},
                          output_path=f"s3://{session.default_bucket()}/tuning", sagemaker_session=session)
    # --- README tuner snippet ---
    tuner = HyperparameterTuner(
        estimator, objective_metric_name="objective", objective_type="Maximize",
        metric_definitions=[METRIC],
        hyperparameter_ranges={"x": IntegerParameter(2, 4), "optimizer": CategoricalParameter(["sgd", "adam"])},
        strategy="Random", random_seed=0, max_jobs=max_jobs, max_parallel_jobs=2, base_tuning_job_name=name_hint)
    # --- end ---
    return tuner


def test_readme_snippet_is_the_one_run_here():
    assert missing_from("sdk-tuner", Path(__file__)) == []


def test_tuner_fit_best_deploy_predict_analytics_attach(session, training_image, serving_image):  # noqa: F811
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer
    from sagemaker.tuner import HyperparameterTuner

    tuner = _tuner(session, training_image, "sdk-tune", max_jobs=6)
    tuner.fit(wait=True)
    name = tuner.latest_tuning_job.name
    best = tuner.best_training_job()
    frame = tuner.analytics().dataframe()
    described = session.sagemaker_client.describe_training_job(TrainingJobName=best)
    tuned = {k: v.strip('"') for k, v in described["HyperParameters"].items()}  # JSON-quoted or not
    assert (tuned["x"], tuned["optimizer"]) == ("3", "adam")
    assert len(frame) == 6 and "FinalObjectiveValue" in frame.columns
    assert frame["FinalObjectiveValue"].max() == pytest.approx(10.75)
    attached = HyperparameterTuner.attach(name, sagemaker_session=session)
    assert attached.best_training_job() == best
    assert attached.objective_metric_name == "objective"
    predictor = tuner.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             image_uri=serving_image,
                             serializer=JSONSerializer(), deserializer=JSONDeserializer())
    try:
        assert predictor.predict({"x": 1}) is not None
    finally:
        with contextlib.suppress(Exception):
            predictor.delete_endpoint()


def test_tuner_stop(session, training_image):  # noqa: F811
    tuner = _tuner(session, training_image, unique("sdk-stop")[:20], max_jobs=4, epochs="300", epoch_seconds="1")
    tuner.fit(wait=False)
    sm = session.sagemaker_client
    name = tuner.latest_tuning_job.name
    logs = session.boto_session.client("logs")

    def two_running() -> bool:
        jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        return sum(j["TrainingJobStatus"] == "InProgress" and reporting(logs, j["TrainingJobName"])
                   for j in jobs["TrainingJobSummaries"]) == 2

    listing = sm.list_training_jobs_for_hyper_parameter_tuning_job
    wait_until(two_running, 120, lambda: f"two running jobs: {listing(HyperParameterTuningJobName=name)}")
    tuner.stop_tuning_job()
    wait_until(lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobStatus"] == "Stopped", 120, "the tuning job to stop")
