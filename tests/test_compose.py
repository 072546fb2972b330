"""docker compose: the emulator itself in a container, starting sibling job and endpoint containers.

Runs the README's docker-compose snippet (port, data dir and project name made unique), then a
training job and an endpoint invocation through the containerised emulator, then `down -v`, and
checks that nothing is left: no container, network or volume of the project, and none of the
job/endpoint containers the emulator started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from sagemaker_emulator.config import owner_id

from .helpers import ROLE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OFFLINE_BASE = "sagemaker-emulator-base:py311"


def readme_block(section: str) -> str:
    """The first ```bash block after `<!-- section: <section> ... -->` in the README."""
    text = README.read_text()
    start = text.index(f"<!-- section: {section}")
    match = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert match, f"no bash block in the README's {section} section"
    return match.group(1)


def compose_command() -> list[str] | None:
    """`docker compose` (the v2 plugin) if present, else Debian's `docker-compose` (v1)."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        try:
            if subprocess.run([*cmd, "version"], capture_output=True, timeout=30).returncode == 0:
                return cmd
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def managed_containers(owner: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=sagemaker-emulator.owner={owner}"],
                          capture_output=True, text=True, check=True).stdout.split()


def managed_networks(owner: str) -> list[str]:
    return subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label=sagemaker-emulator.owner={owner}"],
                          capture_output=True, text=True, check=True).stdout.split()


def image_id(tag: str) -> str | None:
    result = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def project_objects(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    found = []
    for kind in (["ps", "-aq"], ["network", "ls", "-q"], ["volume", "ls", "-q"]):
        found += subprocess.run(["docker", *kind, "--filter", label], capture_output=True, text=True,
                                check=True).stdout.split()
    return found


@pytest.fixture
def compose(docker_ready):
    cmd = compose_command()  # scripts/setup (run by docker_ready) installs it through apt when it can
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed and scripts/ensure-docker "
                    "could not install one (needs root and apt)")
    return cmd


def as_shell(line: str, compose_cmd: list[str]) -> str:
    return re.sub(r"^docker compose\b", " ".join(compose_cmd), line.strip())


def test_compose_runs_jobs_and_endpoints_through_the_host_engine(compose, training_image, serving_image):
    lines = [line for line in readme_block("docker-compose").splitlines() if line.strip() and
             not line.lstrip().startswith("#")]
    up = next(i for i, line in enumerate(lines) if line.startswith("docker compose up"))
    down = next(i for i, line in enumerate(lines) if line.startswith("docker compose down"))
    assert "--build" in lines[up] and lines[down].split("#")[0].split() == ["docker", "compose", "down"]

    project = "smtest" + uuid.uuid4().hex[:8]
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="sm-compose-"))  # a host path, mounted at the same path
    owner = owner_id(data_dir)
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "SAGEMAKER_EMULATOR_PORT": str(port),
           "SAGEMAKER_EMULATOR_DATA_DIR": str(data_dir), "SAGEMAKER_EMULATOR_IMAGE": "sagemaker-emulator:test"}
    subprocess.run(["docker", "tag", training_image, "my-training:1"], check=True)
    subprocess.run(["docker", "tag", serving_image, "my-serving:1"], check=True)
    previous_image = image_id(env["SAGEMAKER_EMULATOR_IMAGE"])

    def sh(script: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
        text = "\n".join(as_shell(line, compose) for line in script)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{text}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    try:
        sh(lines[:up + 1])  # pip wheel, BASE_IMAGE, up -d --build: as the README says, in one shell
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_emulator/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, sh(["docker compose logs"]).stdout[-3000:]
                time.sleep(0.5)
        try:
            exercise_emulator(url, owner)
        except Exception:
            print(sh(["docker compose logs --no-color"]).stdout[-6000:])  # shown with the failure
            raise
        logs = sh(["docker compose logs --no-color"]).stdout
        assert "training job compose-job: Completed" in logs, logs[-3000:]
    finally:
        subprocess.run(["bash", "-c", as_shell(lines[down].split("#")[0] + " -v", compose)], cwd=ROOT, env=env,
                       capture_output=True, timeout=300)
        leftovers = project_objects(project) + managed_containers(owner) + managed_networks(owner)
        subprocess.run(["docker", "rmi", "my-serving:1"], capture_output=True)
        if previous_image and previous_image != image_id(env["SAGEMAKER_EMULATOR_IMAGE"]):
            # the rebuilt image replaces the last run's, which would stay as a dangling image; the new one
            # stays tagged so that the next run reuses its dependency layer
            subprocess.run(["docker", "rmi", previous_image], capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert not leftovers, f"docker compose down -v left {leftovers}"


def exercise_emulator(url: str, owner: str) -> None:
    """A training job and an endpoint invocation, through the emulator in the container."""
    def client(service: str):
        return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=BotoConfig(retries={"max_attempts": 2}))

    sm, s3, runtime = client("sagemaker"), client("s3"), client("sagemaker-runtime")
    s3.create_bucket(Bucket="compose-data")
    s3.put_object(Bucket="compose-data", Key="train/data.csv", Body=b"1,2\n")
    sm.create_training_job(
        TrainingJobName="compose-job", RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "my-training:1", "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://compose-data/train/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://compose-data/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    deadline = time.monotonic() + 300
    while (job := sm.describe_training_job(TrainingJobName="compose-job"))["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline, job
        time.sleep(1)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert s3.head_object(Bucket="compose-data", Key="output/compose-job/output/model.tar.gz")["ContentLength"] > 0

    sm.create_model(ModelName="compose-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "my-serving:1", "ModelDataUrl": artifact})
    sm.create_endpoint_config(EndpointConfigName="compose-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "compose-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="compose-endpoint", EndpointConfigName="compose-config")
    deadline = time.monotonic() + 240
    while (endpoint := sm.describe_endpoint(EndpointName="compose-endpoint"))["EndpointStatus"] == "Creating":
        assert time.monotonic() < deadline, endpoint
        time.sleep(1)
    assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")
    assert len(managed_containers(owner)) == 1  # the serving container: a sibling on the host engine
    reply = runtime.invoke_endpoint(EndpointName="compose-endpoint", Body=b'{"x": 1}',
                                    ContentType="application/json")
    assert json.loads(reply["Body"].read())["echo"] == '{"x": 1}'
    # The endpoint stays up: `docker compose down` must remove its container too (graceful shutdown).
