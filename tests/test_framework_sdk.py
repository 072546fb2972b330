"""AWS's framework images through the SageMaker Python SDK v2, unchanged, against real stand-in containers.

`SKLearn(entry_point, source_dir, framework_version="1.2-1")` names AWS's private ECR image; the
emulator builds its stand-in (once per session here: `sagemaker-emulator images build`) and runs the
whole SDK flow on it: fit -> deploy -> predict -> Transformer -> SKLearnProcessor.run. XGBoost runs as
the built-in algorithm (image_uris.retrieve, no entry point: metrics with no MetricDefinitions) and in
script mode; PyTorch and TensorFlow estimators fit, deploy and predict on their CPU stand-ins.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sagemaker
from sagemaker import image_uris
from sagemaker.estimator import Estimator
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.pytorch import PyTorch
from sagemaker.serializers import CSVSerializer
from sagemaker.sklearn import SKLearn, SKLearnProcessor
from sagemaker.tensorflow import TensorFlow
from sagemaker.xgboost import XGBoost

from .helpers import ROLE, SKLEARN_TRAIN_PY, sdk_environment

BUCKET = "sagemaker-us-east-1-123456789012"
TELEMETRY: list = []  # what the SDK would have sent home (the YAML config opts out: nothing)
SDK_CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
      Session:
        DefaultS3Bucket: sagemaker-us-east-1-123456789012
"""
INSTANCE = "ml.m5.large"


PREPROCESS_PY = '''
import os
import pandas as pd
frame = pd.read_csv("/opt/ml/processing/input/train.csv", header=None)
os.makedirs("/opt/ml/processing/output", exist_ok=True)
(frame * 2).to_csv("/opt/ml/processing/output/doubled.csv", header=False, index=False)
print("processed", len(frame), "rows")
'''

XGB_SCRIPT = '''
import argparse, os
import numpy as np
import xgboost as xgb

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_round", type=int, default=5)
    args, _ = parser.parse_known_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",", ndmin=2)
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(data[:, 1:], label=data[:, 0]),
                        num_boost_round=args.num_round)
    booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model"))
    print("script mode trained", args.num_round, "rounds")
'''


def build_standin(name: str) -> None:
    """Once per session: `sagemaker-emulator images build` is a no-op when the stand-in is current."""
    subprocess.run([sys.executable, "-m", "sagemaker_emulator", "images", "build", name], check=True, timeout=1800)


@pytest.fixture(scope="module")
def session(sagemaker_emulator, docker_ready, tmp_path_factory):
    build_standin("sklearn:1.2-1")
    build_standin("xgboost:1.7-1")
    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, TELEMETRY)
        workdir = tmp_path_factory.mktemp("framework-sdk")
        mp.chdir(workdir)
        # the README's YAML config: default bucket and telemetry opt-out with no session arguments
        (workdir / "config.yaml").write_text(SDK_CONFIG)
        mp.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(workdir / "config.yaml"))
        session = sagemaker.Session()
        assert session.default_bucket() == BUCKET
        yield session


@pytest.fixture(scope="module")
def data(session, tmp_path_factory):
    """y = 2*x1 + 3*x2 + 1 (label first, no header), as the sklearn script and XGBoost expect."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, size=(200, 2))
    rows = np.column_stack([2 * x[:, 0] + 3 * x[:, 1] + 1, x])
    folder = tmp_path_factory.mktemp("data")
    np.savetxt(folder / "train.csv", rows[:150], delimiter=",", fmt="%.5f")
    np.savetxt(folder / "validation.csv", rows[150:], delimiter=",", fmt="%.5f")
    np.savetxt(folder / "features.csv", x[:4], delimiter=",", fmt="%.5f")
    return {name: session.upload_data(str(folder / f"{name}.csv"), key_prefix=f"framework-data/{name}")
            for name in ("train", "validation", "features")}


@pytest.fixture(scope="module")
def sklearn_estimator(session, data, tmp_path_factory):
    source = tmp_path_factory.mktemp("sklearn-src")
    (source / "train.py").write_text(SKLEARN_TRAIN_PY)
    estimator = SKLearn(entry_point="train.py", source_dir=str(source), framework_version="1.2-1",
                        instance_type=INSTANCE, role=ROLE, sagemaker_session=session,
                        hyperparameters={"fit-intercept": 1})
    estimator.fit({"train": data["train"]}, logs=False)
    return estimator


def test_sklearn_fit_runs_the_script_in_the_standin(sklearn_estimator, sagemaker_client):
    assert sklearn_estimator.training_image_uri() == \
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    job = sagemaker_client.describe_training_job(TrainingJobName=sklearn_estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("model.tar.gz")


def test_sklearn_deploy_predict_then_transform(sklearn_estimator, session, data):
    predictor = sklearn_estimator.deploy(initial_instance_count=1, instance_type=INSTANCE)
    try:
        result = predictor.predict(np.array([[1.0, 1.0], [2.0, 0.0]]))  # NumpySerializer / NumpyDeserializer
        assert np.allclose(result, [6.0, 5.0], atol=1e-3)
    finally:
        predictor.delete_endpoint()
    transformer = sklearn_estimator.transformer(instance_count=1, instance_type=INSTANCE, accept="text/csv",
                                                output_path=f"s3://{BUCKET}/framework-transform")
    transformer.transform(data["features"], content_type="text/csv", split_type="Line")
    transformer.wait(logs=False)
    out = session.read_s3_file(BUCKET, "framework-transform/features.csv.out")
    assert len([v for v in out.replace(",", "\n").split() if v.strip()]) == 4


def test_sklearn_processor_runs_a_script(session, data, tmp_path):
    (tmp_path / "preprocess.py").write_text(PREPROCESS_PY)
    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type=INSTANCE, instance_count=1,
                                 sagemaker_session=session)
    processor.run(code=str(tmp_path / "preprocess.py"), logs=False,
                  inputs=[ProcessingInput(source=data["train"], destination="/opt/ml/processing/input")],
                  outputs=[ProcessingOutput(source="/opt/ml/processing/output",
                                            destination=f"s3://{BUCKET}/framework-processed")])
    job = processor.jobs[-1].describe()
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    doubled = session.read_s3_file(BUCKET, "framework-processed/doubled.csv").splitlines()
    assert len(doubled) == 150


def test_xgboost_builtin_algorithm_reports_validation_rmse_and_serves_csv(session, data, sagemaker_client):
    image = image_uris.retrieve("xgboost", "us-east-1", "1.7-1")
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type=INSTANCE,
                          sagemaker_session=session, output_path=f"s3://{BUCKET}/xgb-output",
                          hyperparameters={"objective": "reg:squarederror", "num_round": 30, "max_depth": 4,
                                           "eval_metric": "rmse", "early_stopping_rounds": 5})
    csv = "text/csv"
    estimator.fit({"train": sagemaker.inputs.TrainingInput(data["train"], content_type=csv),
                   "validation": sagemaker.inputs.TrainingInput(data["validation"], content_type=csv)}, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    assert {"train:rmse", "validation:rmse"} <= set(metrics), metrics
    assert metrics["validation:rmse"] < 5
    predictor = estimator.deploy(initial_instance_count=1, instance_type=INSTANCE, serializer=CSVSerializer())
    try:
        reply = predictor.predict([[1.0, 1.0], [2.0, 0.0]]).decode()
        values = [float(v) for v in reply.replace(",", "\n").split()]
        assert len(values) == 2 and abs(values[0] - 6.0) < 4 and abs(values[1] - 5.0) < 4, reply
        runtime = session.boto_session.client("sagemaker-runtime")
        for content_type, body in (("text/libsvm", "0:1.0 1:1.0\n0:2.0\n"),
                                   ("application/json", '{"instances": [[1.0, 1.0], [2.0, 0.0]]}')):
            answer = runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType=content_type,
                                             Accept="application/json", Body=body)
            scores = [p["score"] for p in json.loads(answer["Body"].read())["predictions"]]
            assert len(scores) == 2 and abs(scores[0] - values[0]) < 1e-4, (content_type, scores)
    finally:
        predictor.delete_endpoint()


def test_xgboost_builtin_tuned_on_validation_rmse(session, data, sagemaker_client, sagemaker_emulator):
    """The SDK's HyperparameterTuner on the built-in algorithm, no MetricDefinitions: each child's objective is
    the last `validation-rmse` its XGBoost logged, and the best job is the one with the least."""
    from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

    estimator = Estimator(image_uri=image_uris.retrieve("xgboost", "us-east-1", "1.7-1"), role=ROLE,
                          instance_count=1, instance_type=INSTANCE, sagemaker_session=session,
                          output_path=f"s3://{BUCKET}/xgb-tuning",
                          hyperparameters={"objective": "reg:squarederror", "num_round": 8, "eval_metric": "rmse"})
    tuner = HyperparameterTuner(estimator, objective_metric_name="validation:rmse", objective_type="Minimize",
                                hyperparameter_ranges={"max_depth": IntegerParameter(1, 4),
                                                       "eta": ContinuousParameter(0.05, 0.5)},
                                strategy="Random", random_seed=1, max_jobs=4, max_parallel_jobs=2)
    csv = "text/csv"
    tuner.fit({"train": sagemaker.inputs.TrainingInput(data["train"], content_type=csv),
               "validation": sagemaker.inputs.TrainingInput(data["validation"], content_type=csv)})
    name = tuner.latest_tuning_job.name
    job = sagemaker_client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"]["Completed"] == 4
    found = sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name)["TrainingJobSummaries"]
    logs = sagemaker_emulator.client("logs")
    values = {}
    for child in found:
        events = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{child['TrainingJobName']}/")["events"]
        logged = [float(m.group(1)) for e in events
                  if (m := re.search(r"\[\d+\].*(?:\t|#011)validation-rmse:(\S+)", e["message"]))]
        assert len(logged) == 8, events  # one per round
        values[child["TrainingJobName"]] = child["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        assert values[child["TrainingJobName"]] == pytest.approx(logged[-1], abs=1e-6)
    assert len(set(values.values())) > 1, values  # the tuned values change the model
    best = min(values, key=values.get)
    assert tuner.best_training_job() == best == job["BestTrainingJob"]["TrainingJobName"]
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize", "MetricName": "validation:rmse", "Value": values[best]}


def test_xgboost_builtin_reads_libsvm(session, sagemaker_client):
    """LIBSVM is the built-in algorithm's default content type (label first, then index:value)."""
    rows = "\n".join(f"{2 * i + 1} 0:{i} 1:{i % 3}" for i in range(40)) + "\n"
    train = session.upload_string_as_file_body(rows, BUCKET, "framework-data/libsvm/train.libsvm")
    estimator = Estimator(image_uri=image_uris.retrieve("xgboost", "us-east-1", "3.0-5"), role=ROLE,
                          instance_count=1, instance_type=INSTANCE, sagemaker_session=session,
                          output_path=f"s3://{BUCKET}/xgb-libsvm", hyperparameters={"num_round": 5})
    estimator.fit({"train": train}, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [m["MetricName"] for m in job["FinalMetricDataList"]] == ["train:rmse"]


def test_xgboost_builtin_reads_parquet_channels(session, sagemaker_client):
    """application/x-parquet channels as Spark writes them (tests/data/xgboost-parquet: parts in a `batch=1`
    subfolder, a `_SUCCESS` marker), label in the first column; a content type AWS's container refuses fails
    the job with its reason."""
    folder = Path(__file__).parent / "data" / "xgboost-parquet"
    inputs = {name: sagemaker.inputs.TrainingInput(session.upload_data(str(folder / name),
                                                                       key_prefix=f"framework-data/parquet/{name}"),
                                                   content_type="application/x-parquet")
              for name in ("train", "validation")}

    def estimator():
        return Estimator(image_uri=image_uris.retrieve("xgboost", "us-east-1", "1.7-1"), role=ROLE,
                         instance_count=1, instance_type=INSTANCE, sagemaker_session=session,
                         output_path=f"s3://{BUCKET}/xgb-parquet",
                         hyperparameters={"objective": "reg:squarederror", "num_round": 20, "max_depth": 3})

    parquet = estimator()
    parquet.fit(inputs, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=parquet.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert set(metrics) == {"train:rmse", "validation:rmse"} and metrics["validation:rmse"] < 5, metrics
    refused = estimator()
    with pytest.raises(sagemaker.exceptions.UnexpectedStatusException):
        refused.fit({"train": sagemaker.inputs.TrainingInput(inputs["train"].config["DataSource"]["S3DataSource"][
            "S3Uri"], content_type="application/json")}, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=refused.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "application/json is not an accepted ContentType" in job["FailureReason"], job["FailureReason"]


def test_xgboost_builtin_reads_recordio_protobuf_and_serves_it(session, sagemaker_client, tmp_path):
    """application/x-recordio-protobuf as the SDK's `sagemaker.amazon.common` writes it: a dense float32 train
    channel and a sparse float64 validation channel train with validation:rmse; the model answers the SDK's
    RecordSerializer on an endpoint and a SplitType=RecordIO batch transform."""
    import scipy.sparse
    from sagemaker.amazon.common import RecordSerializer, write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, size=(240, 3))
    y = 2 * x[:, 0] + 3 * x[:, 1] + 1  # the third feature is noise
    with open(tmp_path / "train.rec", "wb") as handle:
        write_numpy_to_dense_tensor(handle, x[:180].astype("float32"), y[:180].astype("float32"))
    with open(tmp_path / "validation.rec", "wb") as handle:
        write_spmatrix_to_sparse_tensor(handle, scipy.sparse.csr_matrix(x[180:]), y[180:])
    proto = "application/x-recordio-protobuf"
    inputs = {name: sagemaker.inputs.TrainingInput(
        session.upload_data(str(tmp_path / f"{name}.rec"), key_prefix=f"framework-data/recordio/{name}"),
        content_type=proto) for name in ("train", "validation")}
    estimator = Estimator(image_uri=image_uris.retrieve("xgboost", "us-east-1", "1.7-1"), role=ROLE,
                          instance_count=1, instance_type=INSTANCE, sagemaker_session=session,
                          output_path=f"s3://{BUCKET}/xgb-recordio",
                          hyperparameters={"objective": "reg:squarederror", "num_round": 40, "max_depth": 4})
    estimator.fit(inputs, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert set(metrics) == {"train:rmse", "validation:rmse"} and metrics["validation:rmse"] < 5, metrics

    probe = np.array([[1.0, 1.0, 5.0], [2.0, 0.0, 5.0]])
    with open(tmp_path / "probe.rec", "wb") as handle:
        write_numpy_to_dense_tensor(handle, probe)
    transformer = estimator.transformer(instance_count=1, instance_type=INSTANCE, accept="text/csv",
                                        assemble_with="Line", output_path=f"s3://{BUCKET}/xgb-recordio-out")
    transformer.transform(session.upload_data(str(tmp_path / "probe.rec"), key_prefix="framework-data/probe"),
                          content_type=proto, split_type="RecordIO")
    transformer.wait(logs=False)
    batch = [float(v) for v in session.read_s3_file(BUCKET, "xgb-recordio-out/probe.rec.out").split()]
    assert len(batch) == 2 and abs(batch[0] - 6.0) < 4 and abs(batch[1] - 5.0) < 4, batch

    predictor = estimator.deploy(initial_instance_count=1, instance_type=INSTANCE, serializer=RecordSerializer())
    try:
        reply = [float(v) for v in predictor.predict(probe).decode().split()]
        assert reply == pytest.approx(batch, abs=1e-4), (reply, batch)
        runtime = session.boto_session.client("sagemaker-runtime")
        with pytest.raises(runtime.exceptions.ModelError) as refused:
            runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType=proto, Body=b"not records")
        assert "recordio-protobuf" in str(refused.value), refused.value
    finally:
        predictor.delete_endpoint()


def test_xgboost_script_mode(session, data, sagemaker_client, tmp_path):
    (tmp_path / "train.py").write_text(XGB_SCRIPT)
    estimator = XGBoost(entry_point="train.py", source_dir=str(tmp_path), framework_version="1.7-1",
                        role=ROLE, instance_count=1, instance_type=INSTANCE, sagemaker_session=session,
                        hyperparameters={"num_round": 3})
    estimator.fit({"train": data["train"]}, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "FinalMetricDataList" not in job  # script mode: only the user's MetricDefinitions count


TORCH_TRAIN = '''
import os
import numpy as np
import torch

if __name__ == "__main__":
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",", ndmin=2)
    x = torch.tensor(data[:, 1:], dtype=torch.float32)
    y = torch.tensor(data[:, :1], dtype=torch.float32)
    model = torch.nn.Linear(2, 1)
    solution = torch.linalg.lstsq(torch.cat([x, torch.ones(len(x), 1)], dim=1), y).solution
    with torch.no_grad():
        model.weight.copy_(solution[:2].T)
        model.bias.copy_(solution[2])
    print(f"final loss {torch.nn.functional.mse_loss(model(x), y).item():.4f}")
    torch.jit.script(model).save(os.path.join(os.environ["SM_MODEL_DIR"], "model.pt"))
'''


def fit_and_deploy(framework, standin, version, script, session, data, sagemaker_client, tmp_path):
    """The PyTorch and TensorFlow flow up to a live endpoint: stand-in, script-mode fit on the train channel
    (its job must complete), then deploy. The caller predicts and deletes the endpoint."""
    build_standin(standin)
    (tmp_path / "train.py").write_text(script)
    estimator = framework(entry_point="train.py", source_dir=str(tmp_path), framework_version=version,
                          py_version="py310", role=ROLE, instance_count=1, instance_type=INSTANCE,
                          sagemaker_session=session)
    estimator.fit({"train": data["train"]}, logs=False)
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return estimator.deploy(initial_instance_count=1, instance_type=INSTANCE)


def test_pytorch_fit_deploy_predict(session, data, sagemaker_client, tmp_path):
    predictor = fit_and_deploy(PyTorch, "pytorch:2.13.0", "2.1", TORCH_TRAIN, session, data, sagemaker_client,
                               tmp_path)
    try:
        result = predictor.predict(np.array([[1.0, 1.0], [2.0, 0.0]], dtype=np.float32))
        assert np.asarray(result).shape == (2, 1)
        assert np.allclose(np.asarray(result).ravel(), [6.0, 5.0], atol=1e-2), result
    finally:
        predictor.delete_endpoint()


TF_TRAIN = '''
import argparse, os
import numpy as np
import tensorflow as tf


class Linear(tf.Module):
    def __init__(self, weights, bias):
        self.w = tf.Variable(weights)
        self.b = tf.Variable(bias)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def serve(self, x):
        return {"y": tf.matmul(x, self.w) + self.b}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_dir")  # the SDK's S3 model_dir; the SavedModel goes to SM_MODEL_DIR
    parser.parse_known_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",", ndmin=2)
    design = np.column_stack([data[:, 1:], np.ones(len(data))]).astype("float32")
    solution = np.linalg.lstsq(design, data[:, :1].astype("float32"), rcond=None)[0]
    model = Linear(solution[:2], solution[2])
    tf.saved_model.save(model, os.path.join(os.environ["SM_MODEL_DIR"], "1"),
                        signatures={"serving_default": model.serve})
    print("saved", solution.ravel().tolist())
'''


def test_tensorflow_fit_deploy_predict(session, data, sagemaker_client, tmp_path):
    predictor = fit_and_deploy(TensorFlow, "tensorflow:2.19.0", "2.13", TF_TRAIN, session, data,
                               sagemaker_client, tmp_path)
    try:
        result = predictor.predict({"instances": [[1.0, 1.0], [2.0, 0.0]]})
        assert np.allclose(np.asarray(result["predictions"]).ravel(), [6.0, 5.0], atol=1e-2), result
    finally:
        predictor.delete_endpoint()


def test_the_sdk_sent_no_telemetry(session):
    assert TELEMETRY == []
