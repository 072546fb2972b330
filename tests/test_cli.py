"""The real AWS CLI (v1, `awscli` from the test extra) against a running emulator and real containers.

The README's AWS CLI block is run as written (with the test server's URL); further tests use the
`--endpoint-url` flag without any variable, and show what the CLI prints for the emulator's errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ROLE, endpoint_containers, unique, wait_until

README = Path(__file__).resolve().parent.parent / "README.md"


def aws_command() -> str | None:
    beside = Path(sys.executable).with_name("aws")  # the virtualenv's, when pytest runs from one
    return str(beside) if beside.exists() else shutil.which("aws")


AWS = aws_command()
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI is missing: pip install -e '.[test]' installs it")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, **extra)
    env["PATH"] = str(Path(AWS).parent) + os.pathsep + env.get("PATH", "")
    return env


def aws(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([AWS, "--endpoint-url", url, *args], env=clean_env(), capture_output=True, text=True,
                            timeout=120)
    if check:
        assert result.returncode == 0, f"aws {' '.join(args)}\n{result.stderr}"
    return result


def readme_block() -> str:
    text = README.read_text()
    start = text.index("<!-- section: aws-cli")
    match = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert match, "no bash block in the README's aws-cli section"
    return match.group(1)


def wait_gone(name: str, timeout: float = 60) -> None:
    wait_until(lambda: not endpoint_containers(name), timeout, f"the containers of endpoint {name} to go", 0.5)


def test_readme_block(sagemaker_emulator, training_image, serving_image, tmp_path):
    """The README's AWS CLI section: training job, get-log-events, filter-log-events, endpoint, invoke."""
    subprocess.run(["docker", "tag", training_image, "my-training:1"], check=True)
    subprocess.run(["docker", "tag", serving_image, "my-serving:1"], check=True)
    script = readme_block().replace("http://127.0.0.1:5000", sagemaker_emulator.endpoint_url)
    assert "aws sagemaker wait endpoint-in-service" in script and "invoke-endpoint" in script
    try:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=clean_env(),
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = result.stdout
        assert "Completed\ts3://my-cli-data/output/my-cli-job/output/model.tar.gz\n" in out, out
        assert re.search(r"^starting on algo-1 .*\tdone$", out, re.M), out  # get-log-events: tab-joined
        assert re.search(r"epoch=0 train_loss=1\.0000", out), out  # get-log-events / filter-log-events
        assert "my-cli-endpoint\tInService\n" in out, out
        reply = json.loads((tmp_path / "reply.json").read_text())
        assert reply["echo"] == '{"x": 1}' and reply["content_type"] == "application/json"
        assert reply["files"] == ["report-algo-1.json"]  # the trained model reached the serving container
        wait_gone("my-cli-endpoint")
    finally:
        subprocess.run(["docker", "rmi", "my-serving:1"], capture_output=True)
        sm = sagemaker_emulator.client("sagemaker")
        if sm.list_endpoints(NameContains="my-cli-endpoint")["Endpoints"]:
            sm.delete_endpoint(EndpointName="my-cli-endpoint")


def test_endpoint_url_flag(sagemaker_emulator, training_image, serving_image):
    """`aws --endpoint-url URL ...` with no AWS_ENDPOINT_URL: training job, describe, list-endpoints,
    get-log-events, wait endpoint-in-service and invoke-endpoint (reply to an outfile), ModelError."""
    url = sagemaker_emulator.endpoint_url
    job, bucket = unique("cli-job"), unique("cli-bucket")
    aws(url, "s3api", "create-bucket", "--bucket", bucket)
    aws(url, "sagemaker", "create-training-job", "--training-job-name", job, "--role-arn", ROLE,
        "--algorithm-specification", json.dumps({"TrainingImage": training_image, "TrainingInputMode": "File"}),
        "--output-data-config", json.dumps({"S3OutputPath": f"s3://{bucket}/out"}),
        "--resource-config", "InstanceType=ml.m5.large,InstanceCount=1,VolumeSizeInGB=1",
        "--stopping-condition", "MaxRuntimeInSeconds=300", "--hyper-parameters", '{"behaviour": "ok"}')
    deadline = time.monotonic() + 300
    while True:
        doc = json.loads(aws(url, "sagemaker", "describe-training-job", "--training-job-name", job).stdout)
        if doc["TrainingJobStatus"] != "InProgress":
            break
        assert time.monotonic() < deadline, doc
        time.sleep(1)
    assert doc["TrainingJobStatus"] == "Completed", doc.get("FailureReason")
    assert doc["SecondaryStatusTransitions"][-1]["Status"] == "Completed"
    assert doc["HyperParameters"] == {"behaviour": "ok"}

    streams = json.loads(aws(url, "logs", "describe-log-streams", "--log-group-name", "/aws/sagemaker/TrainingJobs",
                             "--log-stream-name-prefix", f"{job}/").stdout)["logStreams"]
    assert [s["logStreamName"].rsplit("-", 1)[0] for s in streams] == [f"{job}/algo-1"]
    events = json.loads(aws(url, "logs", "get-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
                            "--log-stream-name", streams[0]["logStreamName"], "--start-from-head").stdout)["events"]
    assert events[0]["message"].startswith("starting on algo-1") and events[-1]["message"] == "done"

    missing = aws(url, "sagemaker", "describe-training-job", "--training-job-name", "no-such-job", check=False)
    assert missing.returncode != 0
    assert "(ValidationException) when calling the DescribeTrainingJob operation: Requested resource not found" \
        in missing.stderr

    name = unique("cli-ep")
    aws(url, "sagemaker", "create-model", "--model-name", name, "--execution-role-arn", ROLE,
        "--primary-container", f"Image={serving_image},ModelDataUrl={doc['ModelArtifacts']['S3ModelArtifacts']}")
    aws(url, "sagemaker", "create-endpoint-config", "--endpoint-config-name", name, "--production-variants",
        f"VariantName=AllTraffic,ModelName={name},InitialInstanceCount=1,InstanceType=ml.m5.large")
    aws(url, "sagemaker", "create-endpoint", "--endpoint-name", name, "--endpoint-config-name", name)
    try:
        aws(url, "sagemaker", "wait", "endpoint-in-service", "--endpoint-name", name)
        listed = json.loads(aws(url, "sagemaker", "list-endpoints", "--name-contains", name).stdout)["Endpoints"]
        assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [(name, "InService")]
        out_file = Path(sagemaker_emulator.data_dir).parent / f"{name}.out"
        meta = json.loads(aws(url, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", name,
                              "--content-type", "text/csv", "--body", "1,2", str(out_file)).stdout)
        try:
            assert meta["ContentType"] == "text/csv" and meta["InvokedProductionVariant"] == "AllTraffic"
            assert out_file.read_text() == "3.0"
        finally:
            out_file.unlink(missing_ok=True)
        failed = aws(url, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", name, "--body", "error:400",
                     os.devnull, check=False)
        assert failed.returncode != 0 and "(ModelError)" in failed.stderr
        assert "Received client error (400) from primary" in failed.stderr
    finally:
        aws(url, "sagemaker", "delete-endpoint", "--endpoint-name", name, check=False)
    wait_gone(name)


def test_logs_tail_is_v2_only(sagemaker_emulator):
    """What the README says: AWS CLI v1 has no `aws logs tail` (use get-log-events/filter-log-events)."""
    version = subprocess.run([AWS, "--version"], env=clean_env(), capture_output=True, text=True).stdout + \
        subprocess.run([AWS, "--version"], env=clean_env(), capture_output=True, text=True).stderr
    if not version.startswith("aws-cli/1."):
        pytest.skip(f"not AWS CLI v1: {version.strip()}")
    result = aws(sagemaker_emulator.endpoint_url, "logs", "tail", "/aws/sagemaker/TrainingJobs", check=False)
    assert result.returncode != 0 and "Invalid choice" in result.stderr
