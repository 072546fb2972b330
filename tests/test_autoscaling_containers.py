"""Autoscaling with real containers: a target tracking policy on InvocationsPerInstance starts a second
serving container under load, and stops it again once the endpoint is idle, on a server whose metric
period is one second (AWS's is a minute)."""

from __future__ import annotations

import threading

from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, endpoint_config, endpoint_containers, unique, wait_endpoint, wait_until

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def test_load_starts_a_second_container_and_idleness_stops_it(serving_image):
    with EmulatorServer(env={"SAGEMAKER_EMULATOR_AUTOSCALING_PERIOD_SECONDS": "1"}) as server:
        sm, aas, runtime = (server.client(s) for s in ("sagemaker", "application-autoscaling", "sagemaker-runtime"))
        model = unique("scaled")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
        name = unique("ep-scaled")
        sm.create_endpoint(EndpointName=name, EndpointConfigName=endpoint_config(sm, ("AllTraffic", model, 1, 1.0)))
        wait_endpoint(sm, name, "InService")
        resource = f"endpoint/{name}/variant/AllTraffic"
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION,
                                     MinCapacity=1, MaxCapacity=2)
        aas.put_scaling_policy(
            PolicyName="busy", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 3.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                runtime.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
                stop.wait(0.05)  # ~20 a second on one instance: far above 3 per period
        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        try:
            wait_until(lambda: len(endpoint_containers(name)) == 2, 60, "a second serving container")
            wait_endpoint(sm, name, "InService")
            assert sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        finally:
            stop.set()
            worker.join(5)
        wait_until(lambda: len(endpoint_containers(name)) == 1, 90, "back to one container when idle")
        activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)[
            "ScalingActivities"]
        wait_until(lambda: all(a["StatusCode"] == "Successful" for a in aas.describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]), 30, "successful activities")
        assert [a["Description"] for a in activities][-1] == "Setting desired instance count to 2."
        sm.delete_endpoint(EndpointName=name)
