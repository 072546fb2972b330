"""Endpoint changes with real containers: blue/green UpdateEndpoint, rollback, weights and capacities."""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import endpoint_config, endpoint_containers, error_of, serving_model, unique, wait_endpoint


class InvokeLoop:
    """Invokes an endpoint as fast as it can in a thread, recording every answer and failure."""

    def __init__(self, runtime_client, endpoint: str) -> None:
        self.client, self.endpoint = runtime_client, endpoint
        self.tags: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                body = self.client.invoke_endpoint(EndpointName=self.endpoint, Body=b"{}",
                                                   ContentType="application/json")["Body"].read()
                self.tags.append(json.loads(body)["variant"])
            except Exception as exc:  # any failure at all is what the test counts
                self.failures.append(repr(exc))

    def __enter__(self) -> InvokeLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def test_update_endpoint_is_blue_green(sagemaker_client, sagemaker_runtime_client, serving_image):
    sm = sagemaker_client
    old_model, new_model = serving_model(sm, serving_image, "old"), serving_model(sm, serving_image, "new")
    old_config = endpoint_config(sm, ("AllTraffic", old_model, 1, 1.0))
    new_config = endpoint_config(sm, ("AllTraffic", new_model, 2, 1.0))
    name = unique("ep-bg")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=old_config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    try:
        with InvokeLoop(sagemaker_runtime_client, name) as loop:
            time.sleep(0.3)
            sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
            updating = sm.describe_endpoint(EndpointName=name)
            assert updating["EndpointStatus"] == "Updating"
            assert updating["EndpointConfigName"] == old_config
            assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == new_config
            with pytest.raises(ClientError) as exc:  # one change at a time
                sm.update_endpoint(EndpointName=name, EndpointConfigName=old_config)
            assert error_of(exc)[0] == "ValidationException" and "in-progress" in error_of(exc)[1]
            done = wait_endpoint(sm, name, "InService")
            time.sleep(0.3)
        assert loop.failures == [] and len(loop.tags) > 10
        assert loop.tags[0] == "old" and loop.tags[-1] == "new"
        assert done["EndpointConfigName"] == new_config and "PendingDeploymentSummary" not in done
        variant = done["ProductionVariants"][0]
        assert (variant["CurrentInstanceCount"], variant["DeployedImages"][0]["SpecifiedImage"]) == (2, serving_image)
        assert len(endpoint_containers(name)) == 2  # the old fleet is gone
    finally:
        sm.delete_endpoint(EndpointName=name)
    assert endpoint_containers(name) == []


def test_failed_update_rolls_back(sagemaker_client, sagemaker_runtime_client, serving_image, training_image):
    sm = sagemaker_client
    good = endpoint_config(sm, ("AllTraffic", serving_model(sm, serving_image, "good"), 1, 1.0))
    broken = endpoint_config(sm, ("AllTraffic", serving_model(sm, training_image, "broken"), 1, 1.0))  # no server
    name = unique("ep-rb")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=good)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    try:
        with InvokeLoop(sagemaker_runtime_client, name) as loop:
            sm.update_endpoint(EndpointName=name, EndpointConfigName=broken)
            time.sleep(0.5)
            ep = wait_endpoint(sm, name, "InService")
            time.sleep(0.2)
        assert loop.failures == [] and set(loop.tags) == {"good"}
        assert ep["EndpointConfigName"] == good and "Update failed" in ep["FailureReason"]
        assert len(endpoint_containers(name)) == 1
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_update_weights_and_capacities(sagemaker_client, sagemaker_runtime_client, serving_image):
    sm = sagemaker_client
    config = endpoint_config(sm, ("A", serving_model(sm, serving_image, "a"), 1, 1.0),
                                ("B", serving_model(sm, serving_image, "b"), 1, 1.0))
    name = unique("ep-wc")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    try:
        with pytest.raises(ClientError) as exc:
            sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
                {"VariantName": "nope", "DesiredWeight": 1.0}])
        assert error_of(exc)[0] == "ValidationException" and "nope" in error_of(exc)[1]
        with InvokeLoop(sagemaker_runtime_client, name) as loop:
            sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
                {"VariantName": "A", "DesiredWeight": 0.0}, {"VariantName": "B", "DesiredInstanceCount": 2}])
            assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
            ep = wait_endpoint(sm, name, "InService")
        assert loop.failures == []
        summary = {v["VariantName"]: v for v in ep["ProductionVariants"]}
        assert (summary["A"]["CurrentWeight"], summary["B"]["CurrentInstanceCount"]) == (0.0, 2)
        assert len(endpoint_containers(name)) == 3
        tags = {json.loads(sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}")["Body"].read())
                ["variant"] for _ in range(20)}
        assert tags == {"b"}
        sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "B", "DesiredInstanceCount": 1}])
        ep = wait_endpoint(sm, name, "InService")
        assert {v["VariantName"]: v["CurrentInstanceCount"] for v in ep["ProductionVariants"]} == {"A": 1, "B": 1}
        assert len(endpoint_containers(name)) == 2
    finally:
        sm.delete_endpoint(EndpointName=name)
