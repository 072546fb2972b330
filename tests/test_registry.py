"""Model registry through plain boto3: groups, versions, approval, updates, listing, policies, Search."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import ROLE, error_of, unique

SPEC = {"Containers": [{"Image": "my-serve:latest", "ModelDataUrl": "s3://b/model.tar.gz",
                        "Environment": {"A": "1"}}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}


def _group(sm, **extra) -> str:
    name = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription="d", **extra)
    return name


def test_versions_numbered_per_group_and_default_approval(sagemaker_client):
    group, other = _group(sagemaker_client), _group(sagemaker_client)
    arns = [sagemaker_client.create_model_package(ModelPackageGroupName=group, InferenceSpecification=SPEC)
            ["ModelPackageArn"] for _ in range(2)]
    assert arns == [f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group.lower()}/{v}" for v in (1, 2)]
    first_other = sagemaker_client.create_model_package(ModelPackageGroupName=other, InferenceSpecification=SPEC)
    assert first_other["ModelPackageArn"].endswith(f"/{other.lower()}/1")
    got = sagemaker_client.describe_model_package(ModelPackageName=arns[1])
    assert got["ModelPackageVersion"] == 2 and got["ModelPackageGroupName"] == group
    assert got["ModelApprovalStatus"] == "PendingManualApproval"
    assert got["ModelPackageStatus"] == "Completed"
    assert got["InferenceSpecification"] == SPEC
    # a deleted version's number is not handed out again
    sagemaker_client.delete_model_package(ModelPackageName=arns[1])
    third = sagemaker_client.create_model_package(ModelPackageGroupName=group, InferenceSpecification=SPEC)
    assert third["ModelPackageArn"].endswith("/3")


def test_fields_stored_and_updated(sagemaker_client):
    group = _group(sagemaker_client)
    metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/stats.json"}}}
    arn = sagemaker_client.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=SPEC, ModelMetrics=metrics,
        CustomerMetadataProperties={"a": "1", "b": "2"}, SourceUri="s3://b/model.tar.gz",
        ModelApprovalStatus="Rejected",
        DriftCheckBaselines={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                             "S3Uri": "s3://b/base.json"}}},
        ModelLifeCycle={"Stage": "Development", "StageStatus": "Approved"},
        AdditionalInferenceSpecifications=[{"Name": "extra", "Containers": [{"Image": "x:1"}]}])["ModelPackageArn"]
    sagemaker_client.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="ok",
        CustomerMetadataProperties={"c": "3"}, CustomerMetadataPropertiesToRemove=["a"],
        AdditionalInferenceSpecificationsToAdd=[{"Name": "more", "Containers": [{"Image": "y:1"}]}])
    got = sagemaker_client.describe_model_package(ModelPackageName=arn)
    assert got["ModelApprovalStatus"] == "Approved" and got["ApprovalDescription"] == "ok"
    assert got["CustomerMetadataProperties"] == {"b": "2", "c": "3"}
    assert [s["Name"] for s in got["AdditionalInferenceSpecifications"]] == ["extra", "more"]
    assert got["ModelMetrics"] == metrics and got["SourceUri"] == "s3://b/model.tar.gz"
    assert got["ModelLifeCycle"]["Stage"] == "Development"
    assert got["DriftCheckBaselines"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://b/base.json"
    with pytest.raises(ClientError) as exc:
        sagemaker_client.update_model_package(
            ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[{"Name": "more", "Containers": [
                {"Image": "y:1"}]}])
    assert error_of(exc)[0] == "ValidationException"


def test_list_filters(sagemaker_client):
    group = _group(sagemaker_client)
    for status in ("Approved", "Rejected", "Approved"):
        sagemaker_client.create_model_package(ModelPackageGroupName=group, InferenceSpecification=SPEC,
                                              ModelApprovalStatus=status)
    unversioned = unique("pkg")
    sagemaker_client.create_model_package(ModelPackageName=unversioned, InferenceSpecification=SPEC)
    listed = sagemaker_client.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in listed] == [1, 2, 3]  # documented default: CreationTime, Ascending
    approved = sagemaker_client.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                                    SortOrder="Descending")["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in approved] == [3, 1]
    paged = sagemaker_client.list_model_packages(ModelPackageGroupName=group, MaxResults=2)
    rest = sagemaker_client.list_model_packages(ModelPackageGroupName=group, MaxResults=2,
                                                NextToken=paged["NextToken"])
    assert len(paged["ModelPackageSummaryList"]) == 2 and len(rest["ModelPackageSummaryList"]) == 1
    names = {p["ModelPackageName"] for p in sagemaker_client.list_model_packages(
        NameContains=unversioned)["ModelPackageSummaryList"]}
    assert names == {unversioned}  # default type: unversioned only
    versioned = sagemaker_client.list_model_packages(ModelPackageType="Versioned", MaxResults=100)
    assert all("ModelPackageGroupName" in p for p in versioned["ModelPackageSummaryList"])
    assert sagemaker_client.describe_model_package(ModelPackageName=unversioned)["ModelPackageName"] == unversioned
    groups = sagemaker_client.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupName"] for g in groups] == [group]
    batch = sagemaker_client.batch_describe_model_package(
        ModelPackageArnList=[listed[0]["ModelPackageArn"], listed[0]["ModelPackageArn"][:-1] + "9"])
    assert list(batch["ModelPackageSummaries"]) == [listed[0]["ModelPackageArn"]]
    assert len(batch["BatchDescribeModelPackageErrorMap"]) == 1


def test_rules_and_errors(sagemaker_client):
    group = _group(sagemaker_client)
    cases = [dict(ModelPackageName="x", ModelPackageGroupName=group, InferenceSpecification=SPEC),
             dict(InferenceSpecification=SPEC),
             dict(ModelPackageName=unique("p"), InferenceSpecification=SPEC, ModelApprovalStatus="Approved"),
             dict(ModelPackageGroupName="no-such-group", InferenceSpecification=SPEC)]
    for params in cases:
        with pytest.raises(ClientError) as exc:
            sagemaker_client.create_model_package(**params)
        assert error_of(exc)[0] == "ValidationException", params
    arn = sagemaker_client.create_model_package(ModelPackageGroupName=group, InferenceSpecification=SPEC)[
        "ModelPackageArn"]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.delete_model_package_group(ModelPackageGroupName=group)
    assert error_of(exc)[0] == "ConflictException"
    sagemaker_client.delete_model_package(ModelPackageName=arn)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_model_package(ModelPackageName=arn)
    assert error_of(exc)[0] == "ValidationException" and arn in error_of(exc)[1]
    sagemaker_client.delete_model_package_group(ModelPackageGroupName=group)
    with pytest.raises(ClientError):
        sagemaker_client.describe_model_package_group(ModelPackageGroupName=group)


def test_group_policy(sagemaker_client):
    group = _group(sagemaker_client)
    with pytest.raises(ClientError):
        sagemaker_client.get_model_package_group_policy(ModelPackageGroupName=group)
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    sagemaker_client.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=policy)
    assert sagemaker_client.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"] == policy
    sagemaker_client.delete_model_package_group_policy(ModelPackageGroupName=group)
    with pytest.raises(ClientError):
        sagemaker_client.get_model_package_group_policy(ModelPackageGroupName=group)


@pytest.mark.parametrize("form", ["PrimaryContainer", "Containers"])
def test_create_model_from_package(sagemaker_client, form):
    group = _group(sagemaker_client)
    arn = sagemaker_client.create_model_package(ModelPackageGroupName=group, InferenceSpecification=SPEC)[
        "ModelPackageArn"]
    container = {"ModelPackageName": arn, "Environment": {"B": "2"}}
    spec = {"PrimaryContainer": container} if form == "PrimaryContainer" else {"Containers": [container]}
    name = unique("m")
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=ROLE, **spec)
    code, message, _ = error_of(exc)
    assert code == "ValidationException" and arn in message and "Approved" in message
    sagemaker_client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sagemaker_client.create_model(ModelName=name, ExecutionRoleArn=ROLE, **spec)
    got = sagemaker_client.describe_model(ModelName=name)
    resolved = got["PrimaryContainer"] if form == "PrimaryContainer" else got["Containers"][0]
    assert resolved["Image"] == "my-serve:latest" and resolved["ModelDataUrl"] == "s3://b/model.tar.gz"
    assert resolved["Environment"] == {"A": "1", "B": "2"} and resolved["ModelPackageName"] == arn
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_model(ModelName=unique("m"), ExecutionRoleArn=ROLE,
                                      Containers=[{"ModelPackageName": arn[:-1] + "7"}])
    assert error_of(exc)[0] == "ValidationException"


def test_search_model_package_groups_and_packages(sagemaker_client):
    group = _group(sagemaker_client, Tags=[{"Key": "team", "Value": "blue"}])
    for status in ("Approved", "PendingManualApproval"):
        sagemaker_client.create_model_package(ModelPackageGroupName=group, InferenceSpecification=SPEC,
                                              ModelApprovalStatus=status)
    found = sagemaker_client.search(Resource="ModelPackageGroup", SearchExpression={"Filters": [
        {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": group}]})["Results"]
    assert [r["ModelPackageGroup"]["ModelPackageGroupName"] for r in found] == [group]
    assert found[0]["ModelPackageGroup"]["Tags"] == [{"Key": "team", "Value": "blue"}]
    by_tag = sagemaker_client.search(Resource="ModelPackageGroup", SearchExpression={"Filters": [
        {"Name": "Tags.team", "Operator": "Equals", "Value": "blue"},
        {"Name": "ModelPackageGroupName", "Operator": "Contains", "Value": group[-6:]}]})["Results"]
    assert len(by_tag) == 1
    packages = sagemaker_client.search(Resource="ModelPackage", SearchExpression={"Filters": [
        {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": group},
        {"Name": "ModelApprovalStatus", "Operator": "NotEquals", "Value": "Approved"}]})["Results"]
    assert [r["ModelPackage"]["ModelPackageVersion"] for r in packages] == [2]
    ordered = sagemaker_client.search(Resource="ModelPackage", SortBy="ModelPackageVersion", SortOrder="Ascending",
                                      SearchExpression={"Filters": [{"Name": "ModelPackageGroupName",
                                                                     "Operator": "Equals", "Value": group}]},
                                      MaxResults=1)
    assert ordered["Results"][0]["ModelPackage"]["ModelPackageVersion"] == 1 and ordered["TotalHits"]["Value"] == 2
    more = sagemaker_client.search(Resource="ModelPackage", SortBy="ModelPackageVersion", SortOrder="Ascending",
                                   SearchExpression={"Filters": [{"Name": "ModelPackageGroupName",
                                                                  "Operator": "Equals", "Value": group}]},
                                   MaxResults=1, NextToken=ordered["NextToken"])
    assert more["Results"][0]["ModelPackage"]["ModelPackageVersion"] == 2 and "NextToken" not in more


def test_list_groups_default_to_creation_time_ascending(sagemaker_client):
    """ListModelPackageGroups' documented default order is CreationTime Ascending."""
    prefix = unique("ordered")
    for suffix in ("a", "b"):
        sagemaker_client.create_model_package_group(ModelPackageGroupName=f"{prefix}-{suffix}")
        time.sleep(0.01)
    listed = sagemaker_client.list_model_package_groups(NameContains=prefix)["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupName"] for g in listed] == [f"{prefix}-a", f"{prefix}-b"]
