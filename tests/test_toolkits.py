"""AWS's own container toolkits, unchanged, in the emulator (issue 6).

`sagemaker-training` (what every AWS framework training image runs as `train`) reads the three config
files, downloads `sagemaker_submit_directory` from S3 itself, derives the SM_* environment and runs
the user's script with the hyperparameters as arguments. `sagemaker-inference` (what the framework
serving images run as `serve`) writes its model server's config from SAGEMAKER_* variables and serves
the user's model_fn/predict_fn through its handler service. If our config files, directories, ports
or environment differed from SageMaker's, these toolkits would fail or see different values.

The containers fetch the submit directory themselves, as on SageMaker, so they must reach the
emulator's S3: this module's emulator listens on all interfaces and the jobs get the endpoint and
dummy credentials through `Environment` (what the SDK's local mode passes too).
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import (
    ROLE,
    endpoint_containers,
    error_of,
    model_files,
    sdk_hyperparameters,
    tar_gz,
    training_containers,
    training_request,
    unique,
    wait_training,
)

TRAIN_PY = '''
import argparse, json, os, socket, time
import helper  # a second module of the source dir: the toolkit put the extracted dir on sys.path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--learning-rate", type=float)
parser.add_argument("--mode", default="ok")
args = parser.parse_args()
if args.mode == "fail":
    raise ValueError("user script refuses: mode=fail")
host = os.environ["SM_CURRENT_HOST"]
hosts = json.loads(os.environ["SM_HOSTS"])
train_dir = os.environ["SM_CHANNEL_TRAIN"]
rows = [line for name in sorted(os.listdir(train_dir)) for line in open(os.path.join(train_dir, name))]


def rendezvous():
    """What a framework's process group does first: every worker connects to the master by name."""
    if len(hosts) == 1:
        return []
    if host == hosts[0]:
        server = socket.create_server(("", 7777))
        server.settimeout(60)
        seen = []
        while len(seen) < len(hosts) - 1:
            conn, _ = server.accept()
            seen.append(conn.recv(64).decode())
            conn.sendall(b"welcome " + host.encode())
            conn.close()
        return sorted(seen)
    deadline = time.time() + 60
    while True:  # names may take a moment to resolve (SageMaker's docs say: retry)
        try:
            with socket.create_connection((hosts[0], 7777), timeout=5) as conn:
                conn.sendall(host.encode())
                return [conn.recv(64).decode()]
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


peers = rendezvous()
import gethostname  # the toolkit's C extension (MPI's LD_PRELOAD) parses resourceconfig.json
report = {
    "args": vars(args), "helper": helper.VALUE, "rows": rows, "peers": peers,
    "c_gethostname": gethostname.call(40),
    "env": {k: v for k, v in os.environ.items() if k.startswith("SM_") and k != "SM_TRAINING_ENV"},
    "training_env": json.loads(os.environ["SM_TRAINING_ENV"]),
}
with open(os.path.join(os.environ["SM_MODEL_DIR"], f"model-{host}.json"), "w") as f:
    json.dump(report, f)
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "notes.txt"), "w") as f:
    f.write("written via SM_OUTPUT_DATA_DIR")
print(f"user script trained {args.epochs} epochs on {host} of {hosts}")
'''

INFERENCE_PY = '''
import json, os
import numpy as np

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return np.array(json.load(f)["weights"], dtype=float)

def predict_fn(data, model):
    return np.asarray(data, dtype=float) @ model
'''




@pytest.fixture(scope="module")
def server(sagemaker_emulator):
    """The session emulator, on loopback: job containers reach its S3 through the AWS_ENDPOINT_URL,
    region and credentials it gives them (docs/decisions.md, "Containers calling AWS")."""
    return sagemaker_emulator


@pytest.fixture(scope="module")
def bucket(server) -> str:
    s3 = server.client("s3")
    name = unique("toolkits")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="train/part-0.csv", Body=b"1,2\n3,4\n")
    s3.put_object(Bucket=name, Key="code/sourcedir.tar.gz",
                  Body=tar_gz({"train.py": TRAIN_PY, "helper.py": "VALUE = 'from the source dir'\n"}))
    return name




def training_logs(server: EmulatorServer, name: str) -> dict[str, list[str]]:
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=name + "/")["logStreams"]
    return {s["logStreamName"].split("/")[1].rsplit("-", 1)[0]: [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"], startFromHead=True)["events"]]
        for s in streams}


def run_job(server, bucket, image, name, count=1, **user) -> dict:
    sm = server.client("sagemaker")
    request = training_request(name, bucket, image, HyperParameters=sdk_hyperparameters(bucket, name, **user),
                               InputDataConfig=[
                                   {"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                                       "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}])
    request["ResourceConfig"]["InstanceCount"] = count
    sm.create_training_job(**request)
    try:
        job = wait_training(sm, name, timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; logs: {training_logs(server, name)}") from None
    deadline = time.time() + 30  # the containers are removed right after the final status is written
    while training_containers(name, running_only=False):
        assert time.time() < deadline, f"the containers of {name} outlived it"
        time.sleep(0.5)
    return job


def test_training_toolkit_runs_the_sdk_style_script(server, bucket, toolkit_training_image):
    name = unique("toolkit-train")
    job = run_job(server, bucket, toolkit_training_image, name, epochs=3, **{"learning-rate": 0.25})
    logs = training_logs(server, name)
    assert job["TrainingJobStatus"] == "Completed", (job.get("FailureReason"), logs)
    s3 = server.client("s3")
    files = model_files(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert set(files) == {"model-algo-1.json"}
    report = json.loads(files["model-algo-1.json"])
    assert report["args"] == {"epochs": 3, "learning_rate": 0.25, "mode": "ok"}  # hyperparameters as script args
    assert report["helper"] == "from the source dir" and report["rows"] == ["1,2\n", "3,4\n"]
    env = report["env"]
    assert env["SM_MODEL_DIR"] == "/opt/ml/model"
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "learning-rate": 0.25}
    assert env["SM_HP_EPOCHS"] == "3"
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.large"
    assert env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert env["SM_USER_ENTRY_POINT"] == "train.py" and env["SM_MODULE_NAME"] == "train"
    assert env["SM_MODULE_DIR"] == f"s3://{bucket}/code/sourcedir.tar.gz"
    assert json.loads(env["SM_USER_ARGS"]) == ["--epochs", "3", "--learning-rate", "0.25"]
    assert env["SM_INPUT_CONFIG_DIR"] == "/opt/ml/input/config" and env["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert json.loads(env["SM_INPUT_DATA_CONFIG"])["train"]["ContentType"] == "text/csv"
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_group_name"] == "homogeneousCluster"
    assert int(env["SM_NUM_CPUS"]) >= 1 and env["SM_NUM_GPUS"] == "0"
    training_env = report["training_env"]
    assert training_env["job_name"] == name and training_env["is_master"] is True
    assert training_env["master_hostname"] == "algo-1"
    assert report["c_gethostname"] == "algo-1" and report["peers"] == []
    out_key = f"output/{name}/output/output.tar.gz"
    notes = model_files(s3, f"s3://{bucket}/{out_key}")
    assert notes == {"notes.txt": b"written via SM_OUTPUT_DATA_DIR"}
    lines = logs["algo-1"]
    text = "\n".join(lines)
    assert "Invoking user script" in text  # the toolkit's own logging
    assert "user script trained 3 epochs on algo-1 of ['algo-1']" in lines
    assert "Reporting training SUCCESS" in text


def test_training_toolkit_failure_reaches_failure_reason(server, bucket, toolkit_training_image):
    name = unique("toolkit-fail")
    job = run_job(server, bucket, toolkit_training_image, name, epochs=1, mode="fail")
    assert job["TrainingJobStatus"] == "Failed"
    # The toolkit writes /opt/ml/output/failure; the platform turns it into the FailureReason.
    reason = job["FailureReason"]
    # (Without a framework module the toolkit does not capture stderr: ErrorMessage is "", as on AWS.)
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"), reason
    assert "train.py --epochs 1 --mode fail" in reason
    lines = training_logs(server, name)["algo-1"]
    assert "ValueError: user script refuses: mode=fail" in lines
    assert "Reporting training FAILURE" in "\n".join(lines)


def test_training_toolkit_two_hosts(server, bucket, toolkit_training_image):
    name = unique("toolkit-multi")
    job = run_job(server, bucket, toolkit_training_image, name, count=2, epochs=2,
                  **{"learning-rate": 0.5})
    logs = training_logs(server, name)
    assert job["TrainingJobStatus"] == "Completed", (job.get("FailureReason"), logs)
    files = model_files(server.client("s3"), job["ModelArtifacts"]["S3ModelArtifacts"])
    assert set(files) == {"model-algo-1.json", "model-algo-2.json"}
    for host in ("algo-1", "algo-2"):
        report = json.loads(files[f"model-{host}.json"])
        assert report["env"]["SM_CURRENT_HOST"] == host
        assert json.loads(report["env"]["SM_HOSTS"]) == ["algo-1", "algo-2"]
        assert report["training_env"]["master_hostname"] == "algo-1"
        assert report["training_env"]["is_master"] is (host == "algo-1")
        assert report["c_gethostname"] == host
        # The hosts found each other by name on the job's network.
        assert report["peers"] == (["algo-2"] if host == "algo-1" else ["welcome algo-1"])
        assert report["rows"] == ["1,2\n", "3,4\n"]  # FullyReplicated: both hosts got the channel
        assert f"user script trained 2 epochs on {host} of ['algo-1', 'algo-2']" in logs[host]


def test_inference_toolkit_endpoint(server, toolkit_serving_image):
    sm, s3, runtime = server.client("sagemaker"), server.client("s3"), server.client("sagemaker-runtime")
    bucket, name = unique("toolkit-models"), unique("toolkit-ep")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=tar_gz({
        "model.json": json.dumps({"weights": [1, 2, 3]}), "code/inference.py": INFERENCE_PY}))
    # The environment the SDK's framework models set (PyTorchModel etc.).
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": toolkit_serving_image, "ModelDataUrl": f"s3://{bucket}/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        resp = runtime.invoke_endpoint(EndpointName=name, Body=b"[[1, 2, 3], [0, 1, 0]]",
                                       ContentType="application/json", Accept="application/json")
        assert resp["ContentType"] == "application/json"
        assert json.loads(resp["Body"].read()) == [14.0, 2.0]
        resp = runtime.invoke_endpoint(EndpointName=name, Body=b"1,1,1\n2,0,0", ContentType="text/csv",
                                       Accept="text/csv")
        assert resp["ContentType"] == "text/csv"
        assert resp["Body"].read().decode().split() == ["6.0", "2.0"]
        with pytest.raises(ClientError) as excinfo:  # an Accept the toolkit's encoder does not know
            runtime.invoke_endpoint(EndpointName=name, Body=b"[[1, 2, 3]]", ContentType="application/json",
                                    Accept="application/x-unknown")
        code, _, status = error_of(excinfo)
        assert (code, status) == ("ModelError", 424)
        # The toolkit answers 500 with its error text and traceback (UnsupportedFormatError).
        assert excinfo.value.response["OriginalStatusCode"] == 500
        assert "application/x-unknown" in excinfo.value.response["OriginalMessage"]
        logs = server.client("logs")
        group = f"/aws/sagemaker/Endpoints/{name}"
        stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
        text = "\n".join(e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                                   startFromHead=True)["events"])
        # start_model_server() launched the model server the way it launches MMS.
        assert "Config file: /etc/sagemaker-mms.properties" in text
        assert "Inference address: http://0.0.0.0:8080" in text and "Initial Models: model=/opt/ml/model" in text
        assert "loading model from /opt/ml/model with sagemaker_inference.default_handler_service" in text
    finally:
        sm.delete_endpoint(EndpointName=name)
    deadline = time.time() + 60
    while endpoint_containers(name):
        assert time.time() < deadline, "the endpoint's container outlived DeleteEndpoint"
        time.sleep(0.5)
