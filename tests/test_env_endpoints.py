"""One variable for everything: botocore's AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>.

Each check runs in a subprocess with a clean environment (no AWS_* but what the test sets), as a
user's shell would be. The global variable points at a dead loopback port whenever a per-service
variable is under test, so a call that succeeds proves the per-service variable was used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

DEAD = "http://127.0.0.1:9"  # discard port: nothing listens there

CHECKS = {
    "sagemaker": """
        sm = boto3.client("sagemaker")
        sm.create_model(ModelName=NAME, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                        PrimaryContainer={"Image": "img"})
        assert sm.describe_model(ModelName=NAME)["ModelName"] == NAME
        sm.delete_model(ModelName=NAME)
    """,
    "sagemaker-runtime": """
        rt = boto3.client("sagemaker-runtime")
        try:
            rt.invoke_endpoint(EndpointName=NAME, Body=b"{}", ContentType="application/json")
        except rt.exceptions.ValidationError as exc:  # the emulator's answer, not a connection error
            assert f"Endpoint {NAME} of account 123456789012 not found" in str(exc), exc
        else:
            raise AssertionError("invoke_endpoint of a missing endpoint succeeded")
    """,
    "s3": """
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=NAME)
        s3.put_object(Bucket=NAME, Key="k", Body=b"v")
        assert s3.get_object(Bucket=NAME, Key="k")["Body"].read() == b"v"
        s3.delete_object(Bucket=NAME, Key="k")
        s3.delete_bucket(Bucket=NAME)
    """,
    "logs": """
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName="/env/" + NAME)
        assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/env/" + NAME)[
            "logGroups"]] == ["/env/" + NAME]
        logs.delete_log_group(logGroupName="/env/" + NAME)
    """,
}

VARIABLES = {
    "sagemaker": "AWS_ENDPOINT_URL_SAGEMAKER",
    "sagemaker-runtime": "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    "s3": "AWS_ENDPOINT_URL_S3",
    "logs": "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",  # botocore names it from the service id "CloudWatch Logs"
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, **extra)
    return env


def run_check(service: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import boto3, uuid\nNAME = 'env-' + uuid.uuid4().hex[:10]\n" + textwrap.dedent(CHECKS[service])
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("service", sorted(CHECKS))
def test_global_variable_reaches_every_service(sagemaker_emulator, service):
    result = run_check(service, clean_env(AWS_ENDPOINT_URL=sagemaker_emulator.endpoint_url))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", sorted(CHECKS))
def test_per_service_variable_wins_over_the_global_one(sagemaker_emulator, service):
    env = clean_env(AWS_ENDPOINT_URL=DEAD, **{VARIABLES[service]: sagemaker_emulator.endpoint_url})
    result = run_check(service, env)
    assert result.returncode == 0, result.stderr
    # The control: without the per-service variable the same code goes to the dead global URL.
    control = run_check(service, clean_env(AWS_ENDPOINT_URL=DEAD))
    assert control.returncode != 0 and "Could not connect to the endpoint URL" in control.stderr, control.stderr


def test_logs_variable_is_named_after_the_service_id(sagemaker_emulator):
    """`AWS_ENDPOINT_URL_LOGS` is not a botocore variable (the README says to use ..._CLOUDWATCH_LOGS)."""
    result = run_check("logs", clean_env(AWS_ENDPOINT_URL=DEAD, AWS_ENDPOINT_URL_LOGS=sagemaker_emulator.endpoint_url))
    assert result.returncode != 0 and "Could not connect to the endpoint URL" in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI (awscli, in the test extra) is not installed")
def test_aws_cli_honours_the_variables(sagemaker_emulator):
    env = clean_env(AWS_ENDPOINT_URL=DEAD, AWS_ENDPOINT_URL_SAGEMAKER=sagemaker_emulator.endpoint_url)
    result = subprocess.run(["aws", "sagemaker", "list-endpoints"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and '"Endpoints"' in result.stdout, result.stderr
    result = subprocess.run(["aws", "s3api", "list-buckets"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Could not connect" in result.stderr, result.stderr
