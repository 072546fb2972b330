"""Models through plain boto3 against a running server."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import ROLE, error_of, make_model, unique


def test_create_describe_delete(sagemaker_client, name):
    arn = make_model(sagemaker_client, name, EnableNetworkIsolation=True,
                     VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]})["ModelArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"
    got = sagemaker_client.describe_model(ModelName=name)
    assert got["ModelName"] == name and got["ModelArn"] == arn
    assert got["PrimaryContainer"] == {"Image": "my-serve:latest", "Environment": {"A": "1"}}
    assert got["ExecutionRoleArn"] == ROLE
    assert got["EnableNetworkIsolation"] is True
    assert got["VpcConfig"]["Subnets"] == ["subnet-1"]
    assert isinstance(got["CreationTime"], dt.datetime)
    sagemaker_client.delete_model(ModelName=name)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_model(ModelName=name)
    assert error_of(exc) == ("ValidationException", f'Could not find model "{arn}".', 400)


def test_containers_and_inference_execution_config(sagemaker_client, name):
    sagemaker_client.create_model(
        ModelName=name, ExecutionRoleArn=ROLE,
        Containers=[{"Image": "a:1", "ContainerHostname": "first"}, {"Image": "b:1", "ContainerHostname": "second"}],
        InferenceExecutionConfig={"Mode": "Direct"})
    got = sagemaker_client.describe_model(ModelName=name)
    assert [c["ContainerHostname"] for c in got["Containers"]] == ["first", "second"]
    assert got["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert "PrimaryContainer" not in got


def test_duplicate_name(sagemaker_client, name):
    arn = make_model(sagemaker_client, name)["ModelArn"]
    with pytest.raises(ClientError) as exc:
        make_model(sagemaker_client, name)
    assert error_of(exc) == ("ValidationException", f'Cannot create already existing model "{arn}".', 400)


def test_missing_model_errors(sagemaker_client):
    for call in (sagemaker_client.describe_model, sagemaker_client.delete_model):
        with pytest.raises(ClientError) as exc:
            call(ModelName="no-such-model")
        code, message, status = error_of(exc)
        assert (code, status) == ("ValidationException", 400)
        assert message == 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/no-such-model".'


def test_needs_a_container(sagemaker_client, name):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=ROLE)
    assert error_of(exc)[0] == "ValidationException"
    assert "PrimaryContainer or Containers" in error_of(exc)[1]


@pytest.mark.parametrize("form", ["PrimaryContainer", "Containers"])
def test_missing_model_package_refused(sagemaker_client, name, form):
    """A container naming a model package that does not exist is refused at CreateModel, naming it
    (packages that exist: tests/test_registry.py)."""
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/my-group/1"
    container = {"ModelPackageName": package}
    spec = {"PrimaryContainer": container} if form == "PrimaryContainer" else {"Containers": [container]}
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=ROLE, **spec)
    code, message, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert package in message and "does not exist" in message
    with pytest.raises(ClientError):
        sagemaker_client.describe_model(ModelName=name)


def test_region_from_signature(sagemaker_emulator, name):
    sm = sagemaker_emulator.client("sagemaker", region_name="eu-west-1")
    arn = make_model(sm, name)["ModelArn"]
    assert arn.startswith("arn:aws:sagemaker:eu-west-1:123456789012:model/")
    # Regions are separate namespaces, as on AWS.
    with pytest.raises(ClientError):
        sagemaker_emulator.client("sagemaker").describe_model(ModelName=name)


def test_list_pagination_sorting_filters(sagemaker_client):
    prefix = unique("lst")
    names = [f"{prefix}-{i:02d}" for i in range(7)]
    for i, n in enumerate(names):
        if i == 3:
            time.sleep(1.2)  # request timestamps travel as whole seconds
        make_model(sagemaker_client, n)
    # Default: CreationTime, Descending.
    got = sagemaker_client.list_models(NameContains=prefix)["Models"]
    assert [m["ModelName"] for m in got] == names[::-1]
    # Pages of 3 in name order, via NextToken and via the botocore paginator.
    seen, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sagemaker_client.list_models(NameContains=prefix, SortBy="Name", SortOrder="Ascending",
                                            MaxResults=3, **kwargs)
        assert len(page["Models"]) <= 3
        seen += [m["ModelName"] for m in page["Models"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == names
    pages = sagemaker_client.get_paginator("list_models").paginate(
        NameContains=prefix, SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 2})
    assert [m["ModelName"] for p in pages for m in p["Models"]] == names[::-1]
    # Time filters.
    third = sagemaker_client.describe_model(ModelName=names[3])["CreationTime"]
    cutoff = third.replace(microsecond=0)
    after = sagemaker_client.list_models(NameContains=prefix, CreationTimeAfter=cutoff)["Models"]
    assert sorted(m["ModelName"] for m in after) == names[3:]
    before = sagemaker_client.list_models(NameContains=prefix, CreationTimeBefore=cutoff)["Models"]
    assert sorted(m["ModelName"] for m in before) == names[:3]
    assert sagemaker_client.list_models(NameContains=unique("nothing"))["Models"] == []


def test_bad_next_token(sagemaker_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.list_models(NextToken="garbage")
    assert error_of(exc)[0] == "ValidationException"
