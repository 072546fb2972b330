"""The Resource Groups Tagging API lists and tags our SageMaker resources next to moto's services."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, make_model, unique


@pytest.fixture(scope="module")
def tagging(sagemaker_emulator):
    return sagemaker_emulator.client("resourcegroupstaggingapi")


def _arns(tagging, **kwargs) -> set[str]:
    return {r["ResourceARN"] for page in tagging.get_paginator("get_resources").paginate(**kwargs)
            for r in page["ResourceTagMappingList"]}


def test_get_resources_lists_ours_and_moto_s(tagging, sagemaker_client, sagemaker_emulator):
    team = unique("team")
    model_name = unique("m")
    model = make_model(sagemaker_client, model_name, Tags=[{"Key": "team", "Value": team}])["ModelArn"]
    config = unique("cfg")
    config_arn = sagemaker_client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "A", "ModelName": model_name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        Tags=[{"Key": "team", "Value": team}, {"Key": "tier", "Value": "gold"}])["EndpointConfigArn"]
    make_model(sagemaker_client, unique("m"), Tags=[{"Key": "team", "Value": "someone-else"}])
    sqs = sagemaker_emulator.client("sqs")
    queue = sqs.create_queue(QueueName=unique("q"), tags={"team": team})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    assert _arns(tagging, TagFilters=[{"Key": "team", "Values": [team]}]) == {model, config_arn, queue_arn}
    assert _arns(tagging, TagFilters=[{"Key": "team", "Values": [team]}],
                 ResourceTypeFilters=["sagemaker:endpoint-config"]) == {config_arn}
    assert _arns(tagging, TagFilters=[{"Key": "team", "Values": [team]}], ResourceTypeFilters=["sagemaker"]) \
        == {model, config_arn}
    assert _arns(tagging, TagFilters=[{"Key": "team", "Values": [team]}, {"Key": "tier"}]) == {config_arn}
    mapping = tagging.get_resources(ResourceARNList=[config_arn])["ResourceTagMappingList"]
    assert mapping == [{"ResourceARN": config_arn, "Tags": [{"Key": "team", "Value": team},
                                                            {"Key": "tier", "Value": "gold"}]}]
    assert team in tagging.get_tag_values(Key="team")["TagValues"]
    assert {"team", "tier"} <= set(tagging.get_tag_keys()["TagKeys"])


def test_pagination(tagging, sagemaker_client):
    group = unique("page")
    made = {make_model(sagemaker_client, unique("m"), Tags=[{"Key": "page", "Value": group}])["ModelArn"]
            for _ in range(5)}
    pages = list(tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "page", "Values": [group]}], ResourcesPerPage=2))
    assert [len(p["ResourceTagMappingList"]) for p in pages] == [2, 2, 1]
    assert {r["ResourceARN"] for p in pages for r in p["ResourceTagMappingList"]} == made
    assert pages[-1]["PaginationToken"] == ""
    with pytest.raises(ClientError) as exc:
        tagging.get_resources(PaginationToken="not-a-token")
    assert error_of(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        tagging.get_resources(ResourcesPerPage=101)
    assert error_of(exc)[0] == "InvalidParameterException"


def test_tag_and_untag_resources(tagging, sagemaker_client, sagemaker_emulator):
    model = make_model(sagemaker_client, unique("m"))["ModelArn"]
    sns = sagemaker_emulator.client("sns")
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    missing = model.rsplit("/", 1)[0] + "/" + unique("nope")
    answer = tagging.tag_resources(ResourceARNList=[model, topic, missing], Tags={"owner": "me", "cost": "1"})
    assert set(answer["FailedResourcesMap"]) == {missing}
    assert answer["FailedResourcesMap"][missing]["ErrorCode"] == "InvalidParameterException"
    assert {t["Key"]: t["Value"] for t in sagemaker_client.list_tags(ResourceArn=model)["Tags"]} == \
        {"owner": "me", "cost": "1"}
    assert {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=topic)["Tags"]} == \
        {"owner": "me", "cost": "1"}
    assert tagging.untag_resources(ResourceARNList=[model, topic], TagKeys=["cost"])["FailedResourcesMap"] == {}
    assert sagemaker_client.list_tags(ResourceArn=model)["Tags"] == [{"Key": "owner", "Value": "me"}]
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "owner", "Value": "me"}]


