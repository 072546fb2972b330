"""Run by tests/test_sdk_v3.py with the python of .venv-sdk3: SDK v3's HyperparameterTuner
(`sagemaker.train.tuner`) over a ModelTrainer on the test training image, whose `behaviour=objective`
prints a known function of x and optimizer per epoch. Prints one JSON line of what it saw."""

from __future__ import annotations

import json

from sagemaker.core.helper.session_helper import Session
from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, InputData, OutputDataConfig
from sagemaker.train.tuner import HyperparameterTuner
from sdk_v3_common import BUCKET, NO_TELEMETRY, ensure_role

session = Session(default_bucket=BUCKET, sagemaker_config=NO_TELEMETRY)
trainer = ModelTrainer(training_image="my-training:1", role=ensure_role(),
                       compute=Compute(instance_type="ml.m5.large", instance_count=1),
                       output_data_config=OutputDataConfig(s3_output_path=f"s3://{session.default_bucket()}/v3-tune"),
                       hyperparameters={"behaviour": "objective", "epochs": 2, "epoch_seconds": 0.1, "y": 0.25},
                       sagemaker_session=session)
tuner = HyperparameterTuner(
    model_trainer=trainer, objective_metric_name="objective", objective_type="Maximize",
    metric_definitions=[{"Name": "objective", "Regex": r"objective=([-0-9.eE]+)"}],
    hyperparameter_ranges={"x": ContinuousParameter(0, 6), "optimizer": CategoricalParameter(["sgd", "adam"])},
    strategy="Random", max_jobs=4, max_parallel_jobs=2, random_seed=7, base_tuning_job_name="v3-tune")
tuner.tune(inputs=[InputData(channel_name="train",
                             data_source=session.upload_data("train.csv", key_prefix="v3-tune-data"))], wait=True)
described = tuner.describe()
best = tuner.best_training_job()
frame = tuner.analytics().dataframe()
print(json.dumps({
    "tuning_job": described.hyper_parameter_tuning_job_name, "status": described.hyper_parameter_tuning_job_status,
    "best": best, "completed": described.training_job_status_counters.completed,
    "analytics_jobs": sorted(frame["TrainingJobName"]), "analytics_best": float(frame["FinalObjectiveValue"].max())}))
