"""CloudFormation stacks provision AWS::SageMaker::* in our store: a stack's endpoint really deploys.

Stack operations with SageMaker resources run in the background, as on AWS: CreateStack answers
CREATE_IN_PROGRESS and clients wait (`_settled`, or boto3's waiters)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, containers_with, managed_containers, model_tar, unique, wait_until


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


def _settled(cfn, stack: str, timeout: float = 120) -> dict:
    """The stack once no operation is in progress (DescribeStacks, as a client polls on AWS)."""
    def done() -> dict | None:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        return None if described["StackStatus"].endswith("_IN_PROGRESS") else described
    return wait_until(done, timeout, what=f"stack {stack} to settle")


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
    created = cfn.create_stack(StackName=stack, TemplateBody=_template(serving_image, data, 1))
    early = cfn.describe_stacks(StackName=stack)["Stacks"][0]  # answered at once; the endpoint still starts
    assert early["StackId"] == created["StackId"] and early["StackStatus"] == "CREATE_IN_PROGRESS"
    assert not early.get("Outputs")
    with pytest.raises(ClientError) as exc:
        cfn.update_stack(StackName=stack, TemplateBody=_template(serving_image, data, 2))
    assert "is in CREATE_IN_PROGRESS state and can not be updated" in str(exc.value)
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    events = [(e["LogicalResourceId"], e["ResourceStatus"])
              for e in reversed(cfn.describe_stack_events(StackName=stack)["StackEvents"])]
    assert events[0] == (stack, "CREATE_IN_PROGRESS") and events[-1] == (stack, "CREATE_COMPLETE")
    assert events.index(("Config", "CREATE_COMPLETE")) < events.index(("Endpoint", "CREATE_IN_PROGRESS")) \
        < events.index(("Endpoint", "CREATE_COMPLETE"))
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    assert sorted(r["LogicalResourceId"] for r in resources) == ["Config", "Endpoint", "Model"]
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
    described = _settled(cfn, stack)
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
    assert _settled(cfn, stack)["StackStatus"] == "ROLLBACK_COMPLETE"
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
    assert _settled(cfn, stack)["StackStatus"] == "CREATE_COMPLETE"
    out = _outputs(cfn, stack)
    described = sagemaker_client.describe_model_package_group(ModelPackageGroupName=group)
    assert out == {"Arn": described["ModelPackageGroupArn"], "Status": "Completed"}
    tagging = sagemaker_emulator.client("resourcegroupstaggingapi")
    found = tagging.get_resources(TagFilters=[{"Key": "aws:cloudformation:stack-name", "Values": [stack]}],
                                  ResourceTypeFilters=["sagemaker:model-package-group"])["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in found] == [out["Arn"]]

    cfn.update_stack(StackName=stack, TemplateBody=template("silver"))  # tags change in place
    assert _settled(cfn, stack)["StackStatus"] == "UPDATE_COMPLETE"
    again = sagemaker_client.describe_model_package_group(ModelPackageGroupName=group)
    assert again["CreationTime"] == described["CreationTime"]
    tags = {t["Key"]: t["Value"] for t in sagemaker_client.list_tags(ResourceArn=out["Arn"])["Tags"]}
    assert tags["tier"] == "silver" and tags["aws:cloudformation:logical-id"] == "Group"
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert not sagemaker_client.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]


def test_custom_named_replacement_fails_the_update(cfn, sagemaker_client):
    stack, model = unique("stack"), unique("named")

    def template(image: str) -> str:
        return json.dumps({"Resources": {"Model": {"Type": "AWS::SageMaker::Model", "Properties": {
            "ModelName": model, "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": image}}}}})

    cfn.create_stack(StackName=stack, TemplateBody=template("a:1"))
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    cfn.update_stack(StackName=stack, TemplateBody=template("b:2"))
    described = _settled(cfn, stack)
    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason") or "" for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]]
    assert any("custom-named resource requires replacing" in r for r in reasons)
    assert sagemaker_client.describe_model(ModelName=model)["PrimaryContainer"]["Image"] == "a:1"
    assert "a:1" in json.dumps(cfn.get_template(StackName=stack)["TemplateBody"])
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
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
    stack_id = cfn.create_stack(StackName=stack, TemplateBody=template)["StackId"]
    assert _settled(cfn, stack)["StackStatus"] == "CREATE_COMPLETE"
    out = _outputs(cfn, stack)
    assert out["Name"] == f"{prefix}-us-east-1"
    assert out["Arn"] == sagemaker_client.describe_model(ModelName=out["Name"])["ModelArn"]
    cfn.delete_stack(StackName=stack)
    assert _settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"  # by name: gone once deleted
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
        assert _settled(cfn, "sick")["StackStatus"] == "ROLLBACK_COMPLETE"
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
    stack_id = cfn.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Nb": {
        "Type": "AWS::SageMaker::NotebookInstance",
        "Properties": {"NotebookInstanceName": name, "InstanceType": "ml.t3.medium", "RoleArn": ROLE}}}}))["StackId"]
    assert _settled(cfn, stack)["StackStatus"] == "CREATE_COMPLETE"
    assert sagemaker_client.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
    cfn.delete_stack(StackName=stack)
    assert _settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_notebook_instance(NotebookInstanceName=name)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"] == "RecordNotFound"


def test_delete_during_create_runs_after_it(cfn, sagemaker_client, s3_client, serving_image):
    """A DeleteStack sent while the stack is still being created waits for the create, then deletes everything."""
    bucket = unique("cfn-models")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="m/model.tar.gz", Body=model_tar({"weights": [1]}))
    stack = unique("stack")
    stack_id = cfn.create_stack(StackName=stack, TemplateBody=_template(serving_image, f"s3://{bucket}/m/model.tar.gz",
                                                                         1))["StackId"]
    cfn.delete_stack(StackName=stack)
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_IN_PROGRESS"
    assert _settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    events = list(reversed(cfn.describe_stack_events(StackName=stack_id)["StackEvents"]))
    statuses = [e["ResourceStatus"] for e in events if e["LogicalResourceId"] == stack]
    assert statuses == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_COMPLETE"]
    endpoint_arn = next(e["PhysicalResourceId"] for e in events
                        if e["LogicalResourceId"] == "Endpoint" and e["ResourceStatus"] == "CREATE_COMPLETE")
    listed = sagemaker_client.list_endpoints(MaxResults=100, SortBy="CreationTime", SortOrder="Descending")
    assert endpoint_arn.startswith("arn:aws:sagemaker:") and endpoint_arn not in [
        e["EndpointArn"] for e in listed["Endpoints"]]
    assert containers_with(endpoint_arn) == []


def test_restart_during_create_rolls_the_stack_back(serving_image, tmp_path):
    """The stack's worker dies with the process; at the next start the stack (CREATE_IN_PROGRESS in moto's
    snapshot) is rolled back, including the endpoint it was still waiting for."""
    env = {"SAGEMAKER_EMULATOR_HEALTH_CHECK_TIMEOUT_SECONDS": "600"}
    template = json.loads(_template(serving_image, "", 1))
    del template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"]
    template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Environment"]["NEVER_HEALTHY"] = "1"
    server = EmulatorServer(data_dir=tmp_path, env=env).start()
    try:
        cfn = server.client("cloudformation")
        cfn.create_stack(StackName="slow", TemplateBody=json.dumps(template))
        wait_until(lambda: ("Endpoint", "CREATE_IN_PROGRESS") in [
            (e["LogicalResourceId"], e["ResourceStatus"]) for e in cfn.describe_stack_events(StackName="slow")[
                "StackEvents"]], 60, what="the endpoint to be under way")
        listed = [r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName="slow")["StackResources"]]
        assert sorted(listed) == ["Config", "Endpoint", "Model"]
        server.restart()
        cfn, sm = server.client("cloudformation"), server.client("sagemaker")
        described = _settled(cfn, "slow")
        assert described["StackStatus"] == "ROLLBACK_COMPLETE"
        assert "restarted while the stack was being created" in described["StackStatusReason"]
        assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
        assert sm.list_endpoint_configs()["EndpointConfigs"] == []
        wait_until(lambda: managed_containers(server) == [], 30, what="the endpoint's containers to go")
    finally:
        server.stop()
