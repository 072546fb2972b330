"""The declarative resource layer (emulator/resources) over HTTP with boto3: every declared resource's
lifecycle from its smallest valid Create, then the shared behaviours (filters, sorting, pages, tags,
errors, parents, versions, settling) on a few resources.

The server runs in this process on a FakeRuntime: declared resources start no container.
"""

from __future__ import annotations

import time

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from sagemaker_emulator.resources.catalog import MODELS
from sagemaker_emulator.resources.engine import TERMINAL
from sagemaker_emulator.resources.spec import Model
from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import wait_until
from .minimal_requests import ROLE, minimal


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    serving = Script(lines=["serving"], after=3600, http=lambda method, path, body: (200, b"{}"))
    with InProcessServer(FakeRuntime(scripts={"server:1": serving}),
                         data_dir=tmp_path_factory.mktemp("resources")) as srv:
        yield srv


@pytest.fixture(scope="module")
def sm(server):
    return server.client("sagemaker")


def call(sm, operation: str, params: dict):
    return getattr(sm, xform_name(operation))(**params)


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def _endpoint(sm, seed: str) -> dict:
    """An endpoint and its model (hand-written resources a declared one refers to)."""
    sm.create_model(ModelName=f"{seed}-m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "server:1"})
    sm.create_endpoint_config(EndpointConfigName=f"{seed}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{seed}-m", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=f"{seed}-e", EndpointConfigName=f"{seed}-c")
    return {"EndpointName": f"{seed}-e", "Specification": {"ModelName": f"{seed}-m"}}


def _monitoring_config(sm, seed: str) -> dict:
    """A schedule runs a job definition that exists (an hourly one: no run starts during the test)."""
    sm.create_data_quality_job_definition(
        JobDefinitionName=f"{seed}-dq", DataQualityAppSpecification={"ImageUri": "server:1"},
        DataQualityJobInput={"EndpointInput": {"EndpointName": f"{seed}-e", "LocalPath": "/opt/ml/processing/in"}},
        DataQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {
            "S3Uri": "s3://sm-lt-bucket/out", "LocalPath": "/opt/ml/processing/out"}}]},
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        RoleArn=ROLE)
    return {"MonitoringScheduleConfig": {"ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                                         "MonitoringJobDefinitionName": f"{seed}-dq", "MonitoringType": "DataQuality"}}


# what a resource's Create needs that is not a declared parent: members to set, made by the function
NEEDS = {"InferenceComponent": _endpoint, "MonitoringSchedule": _monitoring_config}


def make(sm, model: Model, seed: str) -> dict:
    """Create one resource (and its parents first); the values that name it (request + answer)."""
    op = model.op("Create")
    params = minimal(op.input_shape, seed=seed)
    if model.spec.noun in NEEDS:
        params.update(NEEDS[model.spec.noun](sm, seed))
    for alternatives in model.spec.parents:
        parent = MODELS[alternatives.split("|")[0]]
        known = make(sm, parent, seed)
        params.update({m: known[m] for alt in parent.path for m in alt.split("|") if m in known})
    params["Tags"] = [{"Key": "seed", "Value": seed}] if "Tags" in op.input_shape.members else None
    params = {k: v for k, v in params.items() if v is not None}
    answer = call(sm, op.name, params)
    known = {**params, **answer}
    arn = answer.get(model.arn_member) if model.arn_member else None
    known.update({"Arn": arn, "Identifier": arn, f"{model.spec.noun}Arn": arn} if arn else {})
    return known


def request(model: Model, verb: str, known: dict, seed: str) -> dict:
    shape = model.op(verb).input_shape
    params = minimal(shape, seed=seed)
    params.update({m: known[m] for m in shape.members
                   if m in known and shape.members[m].type_name in ("string", "integer")})
    if model.spec.noun in NEEDS:  # what Create needed, later operations need too (an Update's config)
        params.update({m: known[m] for m in shape.members if m in known and shape.members[m].type_name == "structure"})
    return params


DECLARED = sorted(noun for noun, model in MODELS.items() if "Create" in model.operations)


@pytest.mark.parametrize("noun", DECLARED)
def test_declared_lifecycle(sm, noun):
    """Create -> Describe (AWS's end status, ARN, times, echoed members) -> List -> tags -> Update ->
    Stop/Start -> Delete -> Describe answers the not-found error the operation declares."""
    model = MODELS[noun]
    seed = f"{noun.lower()[:20]}{int(time.time() * 1000) % 100000}"
    known = make(sm, model, seed)
    described = call(sm, model.operations["Describe"], request(model, "Describe", known, seed))
    document = described[model.spec.wrapped] if model.spec.wrapped else described
    if model.arn_member in model.describe_members:
        assert document[model.arn_member] == known.get(model.create_arn_member, document[model.arn_member])
        if "Tags" in model.op("Create").input_shape.members:
            assert {"Key": "seed", "Value": seed} in sm.list_tags(ResourceArn=document[model.arn_member])["Tags"]
    if model.status_member:
        _during, after, _gone = model.step("Create")
        assert document[model.status_member] == (after or document[model.status_member])
    created = model.time_member(("CreationTime", "CreatedTime", "CreateTime", "CreationTimestamp", "CreateDate"))
    if created:
        assert abs(document[created].timestamp() - time.time()) < 60
    for member in model.path:  # the members that name it are echoed
        name = next((m for m in member.split("|") if m in known), None)
        if name and name in model.describe_members:
            assert str(document[name]) == str(known[name])
    if "List" in model.operations and model.list_key:
        listing = call(sm, model.operations["List"], request(model, "List", known, seed))
        assert len(listing[model.list_key[0]]) >= 1
    if "Update" in model.operations:
        call(sm, model.operations["Update"], request(model, "Update", known, seed))
    status = document.get(model.status_member or "")
    stoppable = model.status(model.spec.stop_when[0]) == status if model.spec.stop_when else (
        str(status).lower() not in TERMINAL)
    if "Stop" in model.operations and model.step("Stop")[1] and stoppable:
        call(sm, model.operations["Stop"], request(model, "Stop", known, seed))
    if "Delete" in model.operations:
        call(sm, model.operations["Delete"], request(model, "Delete", known, seed))
        with pytest.raises(ClientError) as exc:
            call(sm, model.operations["Describe"], request(model, "Describe", known, seed))
        assert code_of(exc) == ("ResourceNotFound" if model.declares("Describe", "ResourceNotFound")
                                else "ValidationException")


# -- the shared behaviours, on a few resources ------------------------------------------------------
def notebook(sm, name: str, **extra) -> str:
    return sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE,
                                       **extra)["NotebookInstanceArn"]


def test_duplicates_answer_what_each_create_declares(sm):
    name = f"dup{int(time.time() * 1000)}"
    notebook(sm, name)
    with pytest.raises(ClientError) as exc:  # CreateNotebookInstance declares no ResourceInUse
        notebook(sm, name)
    assert code_of(exc) == "ValidationException"
    sm.create_hub(HubName=name, HubDescription="d")
    with pytest.raises(ClientError) as exc:
        sm.create_hub(HubName=name, HubDescription="d")
    assert code_of(exc) == "ResourceInUse"


def test_list_filters_sorting_and_pages(sm):
    prefix = f"pg{int(time.time() * 1000)}"
    before = time.time() - 1
    for suffix in ("c", "a", "b"):
        notebook(sm, f"{prefix}-{suffix}")
    sm.stop_notebook_instance(NotebookInstanceName=f"{prefix}-b")
    first = sm.list_notebook_instances(NameContains=prefix, SortBy="Name", SortOrder="Ascending", MaxResults=2)
    assert [n["NotebookInstanceName"] for n in first["NotebookInstances"]] == [f"{prefix}-a", f"{prefix}-b"]
    rest = sm.list_notebook_instances(NameContains=prefix, SortBy="Name", SortOrder="Ascending", MaxResults=2,
                                      NextToken=first["NextToken"])
    assert [n["NotebookInstanceName"] for n in rest["NotebookInstances"]] == [f"{prefix}-c"]
    assert "NextToken" not in rest
    stopped = sm.list_notebook_instances(NameContains=prefix, StatusEquals="Stopped")["NotebookInstances"]
    assert [n["NotebookInstanceName"] for n in stopped] == [f"{prefix}-b"]
    by_default = sm.list_notebook_instances(NameContains=prefix)["NotebookInstances"]  # documented: by Name
    assert [n["NotebookInstanceName"] for n in by_default] == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    newest = sm.list_notebook_instances(NameContains=prefix, CreationTimeAfter=before, SortBy="CreationTime",
                                        SortOrder="Descending")["NotebookInstances"]
    assert [n["NotebookInstanceName"] for n in newest] == [f"{prefix}-b", f"{prefix}-a", f"{prefix}-c"]
    assert sm.list_notebook_instances(NameContains=prefix, CreationTimeBefore=before)["NotebookInstances"] == []
    with pytest.raises(ClientError) as exc:
        sm.list_notebook_instances(NameContains=prefix, NextToken="bm90LWEtdG9rZW4=")
    assert code_of(exc) == "ValidationException"


def test_update_rules_and_state_checks(sm):
    name = f"up{int(time.time() * 1000)}"
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    notebook(sm, name, LifecycleConfigName=name)
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceLifecycleConfigName"] == name
    with pytest.raises(ClientError) as exc:  # AWS: stop a notebook instance before deleting it
        sm.delete_notebook_instance(NotebookInstanceName=name)
    assert code_of(exc) == "ValidationException"
    with pytest.raises(ClientError):
        sm.start_notebook_instance(NotebookInstanceName=name)  # already InService
    sm.stop_notebook_instance(NotebookInstanceName=name)
    sm.update_notebook_instance(NotebookInstanceName=name, DisassociateLifecycleConfig=True, VolumeSizeInGB=20)
    described = sm.describe_notebook_instance(NotebookInstanceName=name)
    assert "NotebookInstanceLifecycleConfigName" not in described and described["VolumeSizeInGB"] == 20
    assert described["NotebookInstanceStatus"] == "InService"  # Updating -> InService, as AWS
    sm.stop_notebook_instance(NotebookInstanceName=name)
    sm.delete_notebook_instance(NotebookInstanceName=name)


def test_parents_children_and_versions(sm):
    domain = sm.create_domain(DomainName="d", AuthMode="IAM", DefaultUserSettings={"ExecutionRole": ROLE},
                              SubnetIds=["subnet-1"], VpcId="vpc-1")["DomainId"]
    with pytest.raises(ClientError) as exc:  # the domain must exist
        sm.create_user_profile(DomainId="d-doesnotexist1", UserProfileName="u")
    assert code_of(exc) == "ValidationException"
    sm.create_user_profile(DomainId=domain, UserProfileName="u")
    with pytest.raises(ClientError) as exc:
        sm.delete_domain(DomainId=domain)
    assert code_of(exc) == "ResourceInUse"
    assert [p["UserProfileName"] for p in sm.list_user_profiles(DomainIdEquals=domain)["UserProfiles"]] == ["u"]
    sm.delete_user_profile(DomainId=domain, UserProfileName="u")
    sm.delete_domain(DomainId=domain)
    image = f"img{int(time.time() * 1000)}"
    sm.create_image(ImageName=image, RoleArn=ROLE)
    for tag in ("1", "2"):
        sm.create_image_version(ImageName=image, BaseImage=f"repo:{tag}", ClientToken=f"{image}-{tag}")
    assert sm.describe_image_version(ImageName=image)["Version"] == 2  # no Version: the latest
    assert sm.describe_image_version(ImageName=image, Version=1)["BaseImage"] == "repo:1"
    sm.delete_image(ImageName=image)  # AWS deletes the versions with the image
    with pytest.raises(ClientError) as exc:
        sm.list_image_versions(ImageName=image)
    assert code_of(exc) == "ResourceNotFound"


def test_image_version_aliases(sm):
    """Aliases name a version for Describe/Update/Delete, move with AliasesToAdd/AliasesToDelete, are unique
    within the image, and ListAliases lists them (of one version, or of all)."""
    image = f"ali{int(time.time() * 1000)}"
    sm.create_image(ImageName=image, RoleArn=ROLE)
    sm.create_image_version(ImageName=image, BaseImage="repo:1", ClientToken=f"{image}-1", Aliases=["stable", "v1"])
    sm.create_image_version(ImageName=image, BaseImage="repo:2", ClientToken=f"{image}-2", Aliases=["latest"])
    assert sm.describe_image_version(ImageName=image, Alias="stable")["BaseImage"] == "repo:1"
    assert sm.describe_image_version(ImageName=image, Alias="latest")["Version"] == 2
    assert sorted(sm.list_aliases(ImageName=image)["SageMakerImageVersionAliases"]) == ["latest", "stable", "v1"]
    assert sm.list_aliases(ImageName=image, Version=1)["SageMakerImageVersionAliases"] == ["stable", "v1"]
    assert sm.list_aliases(ImageName=image, Alias="latest")["SageMakerImageVersionAliases"] == ["latest"]
    with pytest.raises(ClientError) as exc:  # an alias names one version of an image
        sm.create_image_version(ImageName=image, BaseImage="repo:3", ClientToken=f"{image}-3", Aliases=["stable"])
    assert code_of(exc) == "ResourceInUse"
    with pytest.raises(ClientError) as exc:
        sm.update_image_version(ImageName=image, Version=2, AliasesToAdd=["v1"])
    assert code_of(exc) == "ResourceInUse"
    sm.update_image_version(ImageName=image, Alias="stable", AliasesToDelete=["stable"])
    sm.update_image_version(ImageName=image, Version=2, AliasesToAdd=["stable"])
    assert sm.describe_image_version(ImageName=image, Alias="stable")["Version"] == 2
    assert sm.list_aliases(ImageName=image, Version=1)["SageMakerImageVersionAliases"] == ["v1"]
    for missing in ({"Alias": "nope"}, {"Alias": "v1", "Version": 2}):
        with pytest.raises(ClientError) as exc:
            sm.describe_image_version(ImageName=image, **missing)
        assert code_of(exc) == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        sm.list_aliases(ImageName=image, Version=9)
    assert code_of(exc) == "ResourceNotFound"
    sm.delete_image_version(ImageName=image, Alias="v1")
    assert [v["Version"] for v in sm.list_image_versions(ImageName=image)["ImageVersions"]] == [2]
    with pytest.raises(ClientError) as exc:
        sm.list_aliases(ImageName=f"{image}-none")
    assert code_of(exc) == "ResourceNotFound"
    sm.delete_image(ImageName=image)


def test_inference_component_on_an_endpoint(sm):
    """CreateInferenceComponent needs its endpoint and model; RuntimeConfig reads as Describe's summary,
    and UpdateInferenceComponentRuntimeConfig (or UpdateInferenceComponent) changes the copy count."""
    seed = f"ic{int(time.time() * 1000)}"
    _endpoint(sm, seed)
    endpoint = sm.describe_endpoint(EndpointName=f"{seed}-e")["EndpointArn"]
    spec = {"ModelName": f"{seed}-m", "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 512}}
    for wrong in ({"EndpointName": f"{seed}-none"}, {"Specification": {**spec, "ModelName": f"{seed}-none"}}):
        with pytest.raises(ClientError) as exc:
            sm.create_inference_component(**{"InferenceComponentName": f"{seed}-x", "EndpointName": f"{seed}-e",
                                              "VariantName": "AllTraffic", "Specification": spec,
                                              "RuntimeConfig": {"CopyCount": 1}, **wrong})
        assert code_of(exc) == "ValidationException" and "Could not find" in exc.value.response["Error"]["Message"]
    name = f"{seed}-ic"
    sm.create_inference_component(InferenceComponentName=name, EndpointName=f"{seed}-e", VariantName="AllTraffic",
                                  Specification=spec, RuntimeConfig={"CopyCount": 2})
    described = sm.describe_inference_component(InferenceComponentName=name)
    assert described["EndpointArn"] == endpoint
    assert described["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
    arn = sm.update_inference_component_runtime_config(InferenceComponentName=name,
                                                       DesiredRuntimeConfig={"CopyCount": 3})["InferenceComponentArn"]
    assert arn == described["InferenceComponentArn"]
    assert sm.describe_inference_component(InferenceComponentName=name)["RuntimeConfig"]["DesiredCopyCount"] == 3
    sm.update_inference_component(InferenceComponentName=name, RuntimeConfig={"CopyCount": 1})
    assert sm.describe_inference_component(InferenceComponentName=name)["RuntimeConfig"] == {
        "DesiredCopyCount": 1, "CurrentCopyCount": 1}
    with pytest.raises(ClientError) as exc:
        sm.update_inference_component_runtime_config(InferenceComponentName=f"{seed}-none",
                                                     DesiredRuntimeConfig={"CopyCount": 1})
    assert code_of(exc) == "ValidationException"
    sm.delete_inference_component(InferenceComponentName=name)
    sm.delete_endpoint(EndpointName=f"{seed}-e")


def test_devices_of_a_fleet(sm):
    """RegisterDevices/UpdateDevices work per fleet; UpdateDevices declares no ResourceNotFound, so a
    missing device is SageMaker's ValidationException (found by tests/test_fuzz.py)."""
    sm.create_device_fleet(DeviceFleetName="fleet-a", OutputConfig={"S3OutputLocation": "s3://b/fleet"})
    sm.register_devices(DeviceFleetName="fleet-a", Devices=[{"DeviceName": "dev-1", "Description": "one"}])
    sm.update_devices(DeviceFleetName="fleet-a", Devices=[{"DeviceName": "dev-1", "Description": "uno"}])
    assert sm.describe_device(DeviceFleetName="fleet-a", DeviceName="dev-1")["Description"] == "uno"
    with pytest.raises(ClientError) as exc:
        sm.update_devices(DeviceFleetName="fleet-a", Devices=[{"DeviceName": "dev-2"}])
    assert code_of(exc) == "ValidationException" and "fleet-a/dev-2" in str(exc.value)

def test_transitions_settle_after_the_configured_time(server, sm):
    server.services.config.settle_seconds = 0.5
    try:
        name = f"st{int(time.time() * 1000)}"
        notebook(sm, name)
        assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Pending"
        sm.get_waiter("notebook_instance_in_service").wait(NotebookInstanceName=name,
                                                           WaiterConfig={"Delay": 1, "MaxAttempts": 10})
        sm.stop_notebook_instance(NotebookInstanceName=name)
        assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Stopping"
        time.sleep(0.6)
        sm.delete_notebook_instance(NotebookInstanceName=name)
        assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Deleting"
        sm.get_waiter("notebook_instance_deleted").wait(NotebookInstanceName=name,
                                                        WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    finally:
        server.services.config.settle_seconds = 0


def test_a_job_in_progress_can_be_stopped(server, sm):
    """StopAutoMLJob is for a running job: it applies while the Create has not settled (InProgress)."""
    server.services.config.settle_seconds = 30
    try:
        name = f"aml{int(time.time() * 1000)}"
        request = minimal(MODELS["AutoMLJobV2"].op("Create").input_shape)
        call(sm, "CreateAutoMLJobV2", {**request, "AutoMLJobName": name})
        assert sm.describe_auto_ml_job_v2(AutoMLJobName=name)["AutoMLJobStatus"] == "InProgress"
        sm.stop_auto_ml_job(AutoMLJobName=name)
        assert sm.describe_auto_ml_job_v2(AutoMLJobName=name)["AutoMLJobStatus"] == "Stopping"
        with pytest.raises(ClientError) as exc:
            sm.stop_auto_ml_job(AutoMLJobName=name)
        assert code_of(exc) == "ValidationException"
    finally:
        server.services.config.settle_seconds = 0


def test_endpoint_policies(sm):
    """Put/Get/DeleteEndpointPolicy: a JSON policy kept with the endpoint, replaced by the next put; no policy
    is a ValidationException on Get and fine on Delete; a missing endpoint is ResourceNotFound."""
    seed = f"pol{int(time.time() * 1000)}"
    _endpoint(sm, seed)
    name = f"{seed}-e"
    wait_until(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService", timeout=20,
               what="InService")
    with pytest.raises(ClientError) as exc:
        sm.get_endpoint_policy(EndpointName=name)
    assert code_of(exc) == "ValidationException"
    sm.delete_endpoint_policy(EndpointName=name)  # none attached: still fine
    policy = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": '
              '"arn:aws:iam::111122223333:root"}, "Action": "sagemaker:InvokeEndpoint", "Resource": "*"}]}')
    arn = sm.put_endpoint_policy(EndpointName=name, ResourcePolicy=policy)["EndpointArn"]
    got = sm.get_endpoint_policy(EndpointName=name)
    assert got["ResourcePolicy"] == policy and got["EndpointArn"] == arn and got["EndpointName"] == name
    replaced = policy.replace("111122223333", "444455556666")
    sm.put_endpoint_policy(EndpointName=name, ResourcePolicy=replaced)
    assert sm.get_endpoint_policy(EndpointName=name)["ResourcePolicy"] == replaced
    for bad in ("not json", '{"Statement": []}', '{"Statement": [{"Effect": "Allow"}]}'):
        with pytest.raises(ClientError) as exc:
            sm.put_endpoint_policy(EndpointName=name, ResourcePolicy=bad)
        assert code_of(exc) == "ValidationException"
    assert sm.get_endpoint_policy(EndpointName=name)["ResourcePolicy"] == replaced  # a refused put changes nothing
    sm.delete_endpoint_policy(EndpointName=name)
    with pytest.raises(ClientError) as exc:
        sm.get_endpoint_policy(EndpointName=name)
    assert code_of(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sm.put_endpoint_policy(EndpointName=f"{seed}-none", ResourcePolicy=policy)
    assert code_of(exc) == "ResourceNotFound"
    sm.put_endpoint_policy(EndpointName=name, ResourcePolicy=policy)
    sm.delete_endpoint(EndpointName=name)  # the policy goes with the endpoint
    with pytest.raises(ClientError) as exc:
        sm.get_endpoint_policy(EndpointName=name)
    assert code_of(exc) == "ResourceNotFound"
