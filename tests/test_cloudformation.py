"""CloudFormation stacks provision AWS::SageMaker::* in our store: a stack's endpoint really deploys."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, containers_with, managed_containers, model_tar, unique


def _template(image: str, model_data: str, instances: int, tag: str = "a") -> str:
    return json.dumps({
        "Resources": {
            "Model": {"Type": "AWS::SageMaker::Model", "Properties": {
                "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data,
                                     "Environment": {"VARIANT_TAG": tag}},
                "Tags": [{"Key": "team", "Value": "ml"}]}},
            "Config": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": {
                "ProductionVariants": [{"VariantName": "AllTraffic",
                                        "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                                        "InitialInstanceCount": instances, "InstanceType": "ml.m5.large"}]}},
            "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {
                "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]}}},
        },
        "Outputs": {
            "EndpointName": {"Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}},
            "EndpointArn": {"Value": {"Ref": "Endpoint"}},
            "ModelArn": {"Value": {"Ref": "Model"}},
        },
    })


def _outputs(cfn, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


@pytest.fixture(scope="module")
def cfn(sagemaker_emulator):
    return sagemaker_emulator.client("cloudformation")


def test_stack_deploys_updates_and_deletes_a_real_endpoint(cfn, sagemaker_client, sagemaker_runtime_client,
                                                           s3_client, serving_image):
    bucket = unique("cfn-models")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="m/model.tar.gz", Body=model_tar({"weights": [4, 5]}))
    data = f"s3://{bucket}/m/model.tar.gz"
    stack = unique("stack")
    cfn.create_stack(StackName=stack, TemplateBody=_template(serving_image, data, 1))
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    out = _outputs(cfn, stack)
    name = out["EndpointName"]
    assert out["EndpointArn"] == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name.lower()}"
    endpoint = sagemaker_client.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointArn"] == out["EndpointArn"]
    first_config = endpoint["EndpointConfigName"]
    reply = json.loads(sagemaker_runtime_client.invoke_endpoint(
        EndpointName=name, Body=b'{"x": 1}', ContentType="application/json")["Body"].read())
    assert reply["model"] == {"weights": [4, 5]} and reply["variant"] == "a"
    assert len(containers_with(out["EndpointArn"])) == 1
    tags = {t["Key"]: t["Value"] for t in sagemaker_client.list_tags(ResourceArn=out["ModelArn"])["Tags"]}
    assert tags["team"] == "ml" and tags["aws:cloudformation:stack-name"] == stack
    listed = {r["LogicalResourceId"]: r["PhysicalResourceId"]
              for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    config_arn = sagemaker_client.describe_endpoint_config(EndpointConfigName=first_config)["EndpointConfigArn"]
    assert listed == {"Model": out["ModelArn"], "Endpoint": out["EndpointArn"], "Config": config_arn}

    # Two instances: the config is replaced (a new name), the endpoint moves to it, the old config goes.
    cfn.update_stack(StackName=stack, TemplateBody=_template(serving_image, data, 2))
    cfn.get_waiter("stack_update_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    endpoint = sagemaker_client.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] != first_config
    assert sum(v["CurrentInstanceCount"] for v in endpoint["ProductionVariants"]) == 2
    assert len(containers_with(out["EndpointArn"])) == 2
    assert not sagemaker_client.list_endpoint_configs(NameContains=first_config)["EndpointConfigs"]
    assert _outputs(cfn, stack)["EndpointName"] == name

    new_config = endpoint["EndpointConfigName"]
    model = sagemaker_client.describe_endpoint_config(EndpointConfigName=new_config)["ProductionVariants"][0]
    stack_id = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert not sagemaker_client.list_endpoints(NameContains=name)["Endpoints"]
    assert not sagemaker_client.list_endpoint_configs(NameContains=new_config)["EndpointConfigs"]
    assert not sagemaker_client.list_models(NameContains=model["ModelName"])["Models"]
    assert containers_with(out["EndpointArn"]) == []


def test_failed_create_rolls_back(cfn, sagemaker_client):
    stack = unique("stack")
    marker = unique("rollback")
    template = {"Resources": {
        "Model": {"Type": "AWS::SageMaker::Model", "Properties": {
            "ModelName": marker, "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "my-serve:latest"}}},
        "Config": {"Type": "AWS::SageMaker::EndpointConfig", "DependsOn": "Model", "Properties": {
            "ProductionVariants": [{"VariantName": "A", "ModelName": unique("no-such-model"),
                                    "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]}}},
        "Outputs": {"ModelArn": {"Value": {"Ref": "Model"}}}}
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "ROLLBACK_COMPLETE" and not described.get("Outputs")
    assert cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"] == []
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Config"]
    assert "Could not find model" in failed[0]["ResourceStatusReason"]
    assert not sagemaker_client.list_models(NameContains=marker)["Models"]  # rolled back


def test_unsupported_property_fails_the_resource(cfn):
    stack = unique("stack")
    template = {"Resources": {"Model": {"Type": "AWS::SageMaker::Model", "Properties": {
        "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "x:1"}, "Colour": "blue"}}}}
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]]
    assert any("Colour" in r for r in reasons)


def test_registry_types_tags_in_place_and_tagging_api(cfn, sagemaker_client, sagemaker_emulator):
    stack, group = unique("stack"), unique("group")

    def template(tier: str) -> str:
        return json.dumps({"Resources": {"Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {
            "ModelPackageGroupName": group, "ModelPackageGroupDescription": "models",
            "Tags": [{"Key": "tier", "Value": tier}]}}},
            "Outputs": {"Arn": {"Value": {"Ref": "Group"}},
                        "Status": {"Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupStatus"]}}}})

    cfn.create_stack(StackName=stack, TemplateBody=template("gold"))
    out = _outputs(cfn, stack)
    described = sagemaker_client.describe_model_package_group(ModelPackageGroupName=group)
    assert out == {"Arn": described["ModelPackageGroupArn"], "Status": "Completed"}
    tagging = sagemaker_emulator.client("resourcegroupstaggingapi")
    found = tagging.get_resources(TagFilters=[{"Key": "aws:cloudformation:stack-name", "Values": [stack]}],
                                  ResourceTypeFilters=["sagemaker:model-package-group"])["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in found] == [out["Arn"]]

    cfn.update_stack(StackName=stack, TemplateBody=template("silver"))  # tags change in place
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    again = sagemaker_client.describe_model_package_group(ModelPackageGroupName=group)
    assert again["CreationTime"] == described["CreationTime"]
    tags = {t["Key"]: t["Value"] for t in sagemaker_client.list_tags(ResourceArn=out["Arn"])["Tags"]}
    assert tags["tier"] == "silver" and tags["aws:cloudformation:logical-id"] == "Group"
    cfn.delete_stack(StackName=stack)
    assert not sagemaker_client.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]


def test_custom_named_replacement_fails_the_update(cfn, sagemaker_client):
    stack, model = unique("stack"), unique("named")

    def template(image: str) -> str:
        return json.dumps({"Resources": {"Model": {"Type": "AWS::SageMaker::Model", "Properties": {
            "ModelName": model, "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": image}}}}})

    cfn.create_stack(StackName=stack, TemplateBody=template("a:1"))
    cfn.update_stack(StackName=stack, TemplateBody=template("b:2"))
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason") or "" for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]]
    assert any("custom-named resource requires replacing" in r for r in reasons)
    assert sagemaker_client.describe_model(ModelName=model)["PrimaryContainer"]["Image"] == "a:1"
    assert "a:1" in json.dumps(cfn.get_template(StackName=stack)["TemplateBody"])
    cfn.delete_stack(StackName=stack)
    assert not sagemaker_client.list_models(NameContains=model)["Models"]


def test_yaml_short_forms_and_unknown_attribute(cfn, sagemaker_client):
    stack, prefix = unique("stack"), unique("yaml")
    template = f"""
Parameters:
  Image: {{Type: String, Default: "my-serve:latest"}}
Resources:
  Model:
    Type: AWS::SageMaker::Model
    Properties:
      ModelName: !Sub "{prefix}-${{AWS::Region}}"
      ExecutionRoleArn: {ROLE}
      PrimaryContainer: {{Image: !Ref Image}}
Outputs:
  Name: {{Value: !GetAtt Model.ModelName}}
  Arn: {{Value: !Ref Model}}
"""
    cfn.create_stack(StackName=stack, TemplateBody=template)
    out = _outputs(cfn, stack)
    assert out["Name"] == f"{prefix}-us-east-1"
    assert out["Arn"] == sagemaker_client.describe_model(ModelName=out["Name"])["ModelArn"]
    cfn.delete_stack(StackName=stack)
    assert not sagemaker_client.list_models(NameContains=prefix)["Models"]

    bad = template.replace("!GetAtt Model.ModelName", "!GetAtt Model.Colour")
    with pytest.raises(ClientError) as exc:
        cfn.create_stack(StackName=unique("stack"), TemplateBody=bad)
    assert "Colour" in str(exc.value)
    assert not sagemaker_client.list_models(NameContains=prefix)["Models"]


def test_endpoint_that_fails_rolls_the_stack_back(serving_image):
    with EmulatorServer(env={"SAGEMAKER_EMULATOR_HEALTH_CHECK_TIMEOUT_SECONDS": "3"}) as server:
        cfn, sm = server.client("cloudformation"), server.client("sagemaker")
        template = json.loads(_template(serving_image, "", 1))
        del template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]
        template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Environment"]["NEVER_HEALTHY"] = "1"
        cfn.create_stack(StackName="sick", TemplateBody=json.dumps(template))
        assert cfn.describe_stacks(StackName="sick")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
        failed = [e for e in cfn.describe_stack_events(StackName="sick")["StackEvents"]
                  if e["ResourceStatus"] == "CREATE_FAILED"]
        assert [e["LogicalResourceId"] for e in failed] == ["Endpoint"]
        assert "did not pass the ping health check within 3 seconds" in failed[0]["ResourceStatusReason"]
        assert sm.list_endpoints()["Endpoints"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
        assert sm.list_models()["Models"] == []
        assert managed_containers(server) == []


def test_stack_delete_stops_and_deletes_a_notebook_instance(cfn, sagemaker_client):
    """AWS refuses DeleteNotebookInstance while InService; CloudFormation stops it first. Gone afterwards,
    DescribeNotebookInstance answers AWS's ValidationException "RecordNotFound"."""
    stack, name = unique("stack"), unique("nb")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Nb": {
        "Type": "AWS::SageMaker::NotebookInstance",
        "Properties": {"NotebookInstanceName": name, "InstanceType": "ml.t3.medium", "RoleArn": ROLE}}}}))
    assert sagemaker_client.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
    cfn.delete_stack(StackName=stack)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_notebook_instance(NotebookInstanceName=name)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"] == "RecordNotFound"
