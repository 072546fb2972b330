"""Application Auto Scaling for SageMaker variants (handlers/application_autoscaling.py, emulator/autoscaling)
over HTTP with boto3, on a FakeRuntime (the scaling decisions; the fleet change itself is the hosting
engine's, tested with real containers elsewhere). The test drives the scaler's datapoints itself."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import error_of, wait_until
from .minimal_requests import ROLE

VARIANT = "endpoint/scaled/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    serving = Script(lines=["serving"], after=3600, http=lambda method, path, body: (200, b"{}"))
    with InProcessServer(FakeRuntime(scripts={"server:1": serving}), data_dir=tmp_path_factory.mktemp("scaling"),
                         autoscaling_period_seconds=3600) as srv:  # no datapoint but the test's own
        yield srv


@pytest.fixture(scope="module")
def endpoint(server):
    sm = server.client("sagemaker")
    sm.create_model(ModelName="scaled-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "server:1"})
    for name, kind in (("scaled-config", "ml.m5.large"), ("scaled-bigger", "ml.m5.xlarge")):
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "scaled-model", "InstanceType": kind,
            "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="scaled", EndpointConfigName="scaled-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scaled", WaiterConfig={"Delay": 0.2})
    return "scaled"


def instances(sm) -> tuple[str, int | None, int | None]:
    ep = sm.describe_endpoint(EndpointName="scaled")
    variant = ep["ProductionVariants"][0]
    return ep["EndpointStatus"], variant.get("DesiredInstanceCount"), variant.get("CurrentInstanceCount")


def settled(sm, count: int) -> None:
    wait_until(lambda: instances(sm) == ("InService", count, count), 30, lambda: f"{count} instances: {instances(sm)}")


def test_target_tracking_scales_out_and_in(server, endpoint):
    sm, aas, runtime = (server.client(s) for s in ("sagemaker", "application-autoscaling", "sagemaker-runtime"))
    scaler = server.services.autoscaling
    arn = aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=VARIANT,
                                       ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/")
    policy = aas.put_scaling_policy(
        PolicyName="invocations", ServiceNamespace="sagemaker", ResourceId=VARIANT, ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert policy["PolicyARN"].endswith(f":resource/sagemaker/{VARIANT}:policyName/invocations")
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableTargetARN"]) == (1, 3, arn)
    assert target["SuspendedState"] == {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                        "ScheduledScalingSuspended": False}

    scaler.tick()  # the first datapoint: the counter's baseline
    for period in range(3):  # 20 invocations on 1 instance per period, three periods above 5
        for _ in range(20):
            runtime.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")
        assert instances(sm)[1] == 1, f"scaled out after only {period} datapoints"
        scaler.tick()
    settled(sm, 3)  # ceil(1 x 20 / 5) = 4, capped at MaxCapacity 3
    scaler.tick(sample=False)
    [out] = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=VARIANT)["ScalingActivities"]
    assert out["StatusCode"] == "Successful" and out["Description"] == "Setting desired instance count to 3."
    assert out["Cause"].startswith(f"monitor alarm TargetTracking-{VARIANT}-AlarmHigh-")
    assert out["Cause"].endswith("in state ALARM triggered policy invocations")

    for _ in range(14):  # idle: scale-in needs 15 datapoints below 90% of the target
        scaler.tick()
    assert instances(sm)[1] == 3
    scaler.tick()
    settled(sm, 1)
    scaler.tick(sample=False)
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
    assert [a["Description"] for a in activities] == ["Setting desired instance count to 1.",
                                                      "Setting desired instance count to 3."]  # newest first
    assert activities[0]["Cause"].startswith(f"monitor alarm TargetTracking-{VARIANT}-AlarmLow-")
    assert all(a["StatusCode"] == "Successful" for a in activities)


def test_a_new_minimum_and_a_scheduled_action_move_the_capacity(server, endpoint):
    sm, aas = server.client("sagemaker"), server.client("application-autoscaling")
    scaler = server.services.autoscaling
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=VARIANT, ScalableDimension=DIMENSION,
                                 MinCapacity=2)  # an update: MaxCapacity kept
    scaler.tick(sample=False)
    settled(sm, 2)
    scaler.tick(sample=False)
    newest = aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"][0]
    assert newest["Cause"] == "minimum capacity was set to 2" and newest["StatusCode"] == "Successful"

    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=2)
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="evening", ResourceId=VARIANT,
                             ScalableDimension=DIMENSION, Schedule=f"at({at:%Y-%m-%dT%H:%M:%S})",
                             ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 1})
    [action] = aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
    assert action["ScheduledActionARN"].endswith(f":resource/sagemaker/{VARIANT}:scheduledActionName/evening")
    scaler.tick(sample=False)
    assert instances(sm)[1] == 2  # not yet
    wait_until(lambda: dt.datetime.now(dt.timezone.utc) > at, 10, "the scheduled time")
    scaler.tick(sample=False)
    settled(sm, 1)
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[VARIANT])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 1)


def test_a_scaled_variant_keeps_its_instance_type_until_deregistered(server, endpoint):
    sm, aas = server.client("sagemaker"), server.client("application-autoscaling")
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName="scaled-bigger")
    assert error_of(exc)[:2] == ("ValidationException", 'The variant(s) "[AllTraffic]" must be deregistered as '
                                 "scalable targets with AWS Application Auto Scaling before they can be removed or "
                                 "have their instance type updated.")
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=VARIANT, ScalableDimension=DIMENSION)
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []  # gone with it
    assert aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName="scaled-bigger")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.2})


def test_errors_and_other_namespaces(server, endpoint):
    aas = server.client("application-autoscaling")
    where = f"service namespace: sagemaker, resource ID: {VARIANT}, scalable dimension: {DIMENSION}"
    with pytest.raises(ClientError) as exc:
        aas.put_scaling_policy(PolicyName="p", ServiceNamespace="sagemaker", ResourceId=VARIANT,
                               ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration={
                                   "TargetValue": 1.0, "PredefinedMetricSpecification": {
                                       "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert error_of(exc)[:2] == ("ObjectNotFoundException", f"No scalable target registered for {where}")
    with pytest.raises(ClientError) as exc:
        aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=VARIANT, ScalableDimension=DIMENSION)
    assert error_of(exc)[:2] == ("ObjectNotFoundException", f"No scalable target found for {where}")
    for resource_id, dimension in (("endpoint/scaled", DIMENSION), (VARIANT, "sagemaker:inference-component:"
                                                                              "DesiredCopyCount")):
        with pytest.raises(ClientError) as exc:
            aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                         ScalableDimension=dimension, MinCapacity=1, MaxCapacity=2)
        assert error_of(exc)[:2] == ("ValidationException",
                                     "Unsupported service namespace, resource type or scalable dimension")
    with pytest.raises(ClientError) as exc:
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/scaled/variant/nope",
                                     ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=2)
    assert "nope" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=VARIANT, ScalableDimension=DIMENSION,
                                     MinCapacity=3, MaxCapacity=2)
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="x", ResourceId=VARIANT,
                                 ScalableDimension=DIMENSION, Schedule="every day")
    assert error_of(exc)[0] in ("ValidationException", "ObjectNotFoundException")
    # another namespace is moto's: stored there, not here
    server.client("dynamodb").create_table(
        TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId="table/orders",
                                 ScalableDimension="dynamodb:table:ReadCapacityUnits", MinCapacity=1, MaxCapacity=5)
    assert [t["ResourceId"] for t in aas.describe_scalable_targets(ServiceNamespace="dynamodb")[
        "ScalableTargets"]] == ["table/orders"]
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_schedules():
    from sagemaker_emulator.autoscaling import schedules
    from sagemaker_emulator.protocol.errors import ValidationError

    base = {"CreationTime": dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc).timestamp()}

    def fires(schedule: str, after: str, until: str, **extra) -> bool:
        moment = lambda text: dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()  # noqa: E731
        return schedules.fires({**base, "Schedule": schedule, **extra}, moment(after), moment(until))

    assert fires("cron(0 9 * * ? *)", "2026-12-01T08:59:30", "2026-12-01T09:00:10")
    assert not fires("cron(0 9 * * ? *)", "2026-12-01T09:00:10", "2026-12-01T09:30:00")
    assert fires("cron(30 17 ? * MON-FRI *)", "2026-12-01T17:29:00", "2026-12-01T17:31:00")  # a Tuesday
    assert not fires("cron(30 17 ? * SAT,SUN *)", "2026-12-01T17:29:00", "2026-12-01T17:31:00")
    assert fires("rate(2 hours)", "2026-12-01T09:59:00", "2026-12-01T10:00:00")
    assert not fires("rate(2 hours)", "2026-12-01T10:00:00", "2026-12-01T11:59:00")
    assert fires("at(2026-12-01T12:00:00)", "2026-12-01T11:59:59", "2026-12-01T12:00:01")
    assert fires("cron(0 9 * * ? *)", "2026-12-01T08:59:30", "2026-12-01T09:00:10", Timezone="UTC")
    assert not fires("cron(0 9 * * ? *)", "2026-12-01T08:59:30", "2026-12-01T09:00:10", Timezone="Europe/Paris")
    for bad in ("cron(0 9 * *)", "rate(0 hours)", "at(tomorrow)", "cron(0 9 L * ? *)"):
        with pytest.raises((ValidationError, ValueError)):
            schedules.check(bad)
