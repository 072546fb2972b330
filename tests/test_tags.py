"""AddTags / ListTags / DeleteTags on stored resources."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, make_model


def test_tag_lifecycle(sagemaker_client, name):
    arn = make_model(sagemaker_client, name, Tags=[{"Key": "team", "Value": "ml"}])["ModelArn"]
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    added = sagemaker_client.add_tags(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"},
                                                             {"Key": "team", "Value": "data"}])
    assert added["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "data"}]
    tags = {t["Key"]: t["Value"] for t in sagemaker_client.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "data", "env": "test"}
    sagemaker_client.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]
    # The ARN is matched case-insensitively.
    prefix, _, resource = arn.rpartition(":")
    assert sagemaker_client.list_tags(ResourceArn=f"{prefix}:{resource.upper()}")["Tags"]


def test_list_tags_paginator(sagemaker_client, name):
    arn = make_model(sagemaker_client, name)["ModelArn"]
    sagemaker_client.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": str(i)} for i in range(50)])
    pages = list(sagemaker_client.get_paginator("list_tags").paginate(
        ResourceArn=arn, PaginationConfig={"PageSize": 50}))
    assert [t["Key"] for p in pages for t in p["Tags"]] == [f"k{i}" for i in range(50)]
    assert "NextToken" not in pages[-1]


def test_tag_limit(sagemaker_client, name):
    arn = make_model(sagemaker_client, name)["ModelArn"]
    sagemaker_client.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])
    with pytest.raises(ClientError) as exc:
        sagemaker_client.add_tags(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": ""}])
    assert error_of(exc)[0] == "ResourceLimitExceeded"


def test_unknown_arn(sagemaker_client):
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model/nope"
    for call, kwargs in ((sagemaker_client.list_tags, {}),
                         (sagemaker_client.add_tags, {"Tags": [{"Key": "a", "Value": "b"}]}),
                         (sagemaker_client.delete_tags, {"TagKeys": ["a"]})):
        with pytest.raises(ClientError) as exc:
            call(ResourceArn=arn, **kwargs)
        assert error_of(exc)[0] == "ValidationException"


def test_tags_go_with_the_resource(sagemaker_client, name):
    arn = make_model(sagemaker_client, name, Tags=[{"Key": "a", "Value": "1"}])["ModelArn"]
    sagemaker_client.delete_model(ModelName=name)
    make_model(sagemaker_client, name)
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == []


def test_invalid_tag_key(sagemaker_client, name):
    arn = make_model(sagemaker_client, name)["ModelArn"]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.add_tags(ResourceArn=arn, Tags=[{"Key": "bad{key}", "Value": "v"}])
    code, message, _ = error_of(exc)
    assert code == "ValidationException"
    assert "tags.1.member.key" in message and "regular expression pattern" in message
