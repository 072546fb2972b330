"""In-process operation calls (`services.sagemaker.call`, `services.logs.call`): the wire's path, minus HTTP.

The answer must be what a client decodes from the wire, and errors the same AwsErrors, so every
check here compares a call with the same request sent through `dispatch` (the wire's entry point).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sagemaker_emulator.config import Config
from sagemaker_emulator.protocol.errors import AwsError, UnknownOperation, ValidationError
from sagemaker_emulator.services import Services

from .helpers import ROLE, unique


@pytest.fixture
def services(tmp_path):
    services = Services(Config(data_dir=tmp_path, pull_images=False))
    yield services
    services.close()


def wire(services: Services, operation: str, params: dict, region: str | None = None) -> tuple[int, dict]:
    """The same request through the wire's dispatch: (status, decoded JSON body)."""
    service = services.logs if operation in services.logs.model.operation_names else services.sagemaker
    status, _, body = service.dispatch(f"{service.prefix}.{operation}", json.dumps(params).encode(),
                                       services.request_context(region))
    return status, json.loads(body)


def model_params(name: str) -> dict:
    return {"ModelName": name, "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"Image": "my-serve:latest", "Environment": {"A": "1"}},
            "Tags": [{"Key": "team", "Value": "ml"}]}


def test_success_is_what_a_client_decodes(services):
    name = unique("call-model")
    created = services.sagemaker.call("CreateModel", model_params(name), region="eu-west-1")
    assert created == {"ModelArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model/{name}"}
    described = services.sagemaker.call("DescribeModel", {"ModelName": name}, region="eu-west-1")
    assert wire(services, "DescribeModel", {"ModelName": name}, "eu-west-1") == (200, described)
    assert isinstance(described["CreationTime"], float)  # epoch seconds, as on the wire
    assert "Tags" not in described  # the output shape decides what comes back
    # a copy: changing the answer changes nothing stored
    described["PrimaryContainer"]["Image"] = "changed"
    assert services.sagemaker.call("DescribeModel", {"ModelName": name},
                                   region="eu-west-1")["PrimaryContainer"]["Image"] == "my-serve:latest"
    tags = services.sagemaker.call("ListTags", {"ResourceArn": created["ModelArn"]}, region="eu-west-1")
    assert tags["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_default_region_and_boto3_values(services):
    name = unique("call-model")
    assert services.sagemaker.call("CreateModel", model_params(name))["ModelArn"].startswith(
        f"arn:aws:sagemaker:{services.config.region}:")
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # a datetime, as boto3 takes it
    listed = services.sagemaker.call("ListModels", {"CreationTimeAfter": since, "NameContains": name})
    assert [m["ModelName"] for m in listed["Models"]] == [name]


def test_validation_error_is_the_wires(services):
    bad = model_params("not_a_valid_name")
    with pytest.raises(ValidationError) as err:
        services.sagemaker.call("CreateModel", bad)
    status, body = wire(services, "CreateModel", bad)
    assert (err.value.status, err.value.code, err.value.message) == (status, body["__type"], body["message"])
    assert "Member must satisfy regular expression pattern" in err.value.message
    with pytest.raises(AwsError) as missing:
        services.sagemaker.call("CreateTrainingJob", {"TrainingJobName": "x"})  # required members
    assert missing.value.code == "ValidationException"
    assert "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in missing.value.message


def test_not_found_is_the_wires(services):
    for operation, params in (("DescribeModel", {"ModelName": "no-such-model"}),
                              ("DescribeTrainingJob", {"TrainingJobName": "no-such-job"}),
                              ("DescribeEndpoint", {"EndpointName": "no-such-endpoint"})):
        with pytest.raises(AwsError) as err:
            services.sagemaker.call(operation, params)
        status, body = wire(services, operation, params)
        assert (err.value.status, err.value.code, err.value.message) == (status, body["__type"], body["message"])
    with pytest.raises(AwsError) as gone:
        services.sagemaker.call("DeleteTrainingJob", {"TrainingJobName": "no-such-job"})
    assert gone.value.code == "ResourceNotFound"


def test_unknown_operation(services):
    with pytest.raises(UnknownOperation):
        services.sagemaker.call("CreateNothing", {})


def test_logs_calls(services):
    group, stream = "/aws/sagemaker/Internal", "caller/1"
    services.logs.call("CreateLogGroup", {"logGroupName": group})
    services.logs.call("CreateLogStream", {"logGroupName": group, "logStreamName": stream})
    stamp = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    services.logs.call("PutLogEvents", {"logGroupName": group, "logStreamName": stream,
                                        "logEvents": [{"timestamp": stamp, "message": "hello"}]})
    got = services.logs.call("GetLogEvents", {"logGroupName": group, "logStreamName": stream, "startFromHead": True})
    assert [e["message"] for e in got["events"]] == ["hello"]
    with pytest.raises(AwsError) as err:
        services.logs.call("CreateLogGroup", {"logGroupName": group})
    assert err.value.code == "ResourceAlreadyExistsException"


def test_a_bug_of_ours_is_an_internal_failure(services, monkeypatch):
    def broken(ctx, params):
        raise KeyError("oops")

    monkeypatch.setitem(services.sagemaker.handlers, "ListModels", broken)
    with pytest.raises(AwsError) as err:
        services.sagemaker.call("ListModels", {})
    assert (err.value.code, err.value.status) == ("InternalFailure", 500)
