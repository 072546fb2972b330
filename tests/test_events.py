"""Lifecycle events (emulator/events.py): every committed status change of jobs and endpoints, in order."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from sagemaker_emulator.config import Config
from sagemaker_emulator.events import EventBus, StatusChange
from sagemaker_emulator.services import Services
from sagemaker_emulator.storage import resources

from .helpers import ROLE, containers_with, processing_request, training_request, unique, wait_until


def change(name: str, previous: str | None, status: str | None, kind: str = "training-job") -> StatusChange:
    return StatusChange(kind, "us-east-1", name, f"arn:{name}", previous, status)


class Recorder:
    """A subscriber that keeps what it heard, and the stored status when it heard it."""

    def __init__(self, bus: EventBus, kinds=None) -> None:
        self.events: list[StatusChange] = []
        self.stored: list[str | None] = []
        self.subscription = bus.subscribe(self.hear, kinds=kinds, name="recorder")

    def hear(self, event: StatusChange) -> None:
        row = resources.get_by_arn(event.arn)
        self.stored.append(row.status if row else None)
        self.events.append(event)

    def of(self, name: str) -> list[tuple]:
        return [(e.previous, e.status) for e in self.events if e.name == name]

    def wait_for(self, name: str, status: str | None, timeout: float = 30) -> None:
        wait_until(lambda: any(e.name == name and e.status == status for e in self.events), timeout,
                   lambda: f"{name} to reach {status}: heard {self.of(name)}")


# -- the bus ----------------------------------------------------------------------------------------
def test_order_filter_and_slow_subscribers():
    bus = EventBus()
    release = threading.Event()
    slow_heard: list[StatusChange] = []
    fast_heard: list[StatusChange] = []
    bus.subscribe(lambda e: (release.wait(10), slow_heard.append(e)), name="slow")
    bus.subscribe(fast_heard.append, kinds=["training-job"], name="fast")
    events = [change(f"j{i}", "InProgress", "Completed") for i in range(50)]
    started = time.perf_counter()
    for event in events:
        bus.publish(event)
    bus.publish(change("ep", "Creating", "InService", kind="endpoint"))
    assert time.perf_counter() - started < 0.5  # publishing never waits for a subscriber
    wait_until(lambda: len(fast_heard) == 50, 5, "the fast subscriber")
    assert fast_heard == events  # in order, and only its kinds, while the slow one is still stuck
    assert slow_heard == []
    release.set()
    wait_until(lambda: len(slow_heard) == 51, 5, "the slow subscriber")
    assert slow_heard[:50] == events and slow_heard[50].kind == "endpoint"
    bus.close()


def test_a_failing_subscriber_keeps_hearing():
    bus = EventBus()
    heard: list[str] = []

    def flaky(event: StatusChange) -> None:
        heard.append(event.name)
        if event.name == "boom":
            raise RuntimeError("subscriber bug")

    bus.subscribe(flaky)
    for name in ("a", "boom", "b"):
        bus.publish(change(name, None, "InProgress"))
    wait_until(lambda: heard == ["a", "boom", "b"], 5, "every event")
    bus.close()


def test_recover_runs_in_order_and_unsubscribe_stops_delivery():
    bus = EventBus()
    heard: list[str] = []
    subscription = bus.subscribe(lambda e: heard.append(e.name), recover=lambda: heard.append("recovered"))
    bus.publish(change("before", None, "InProgress"))
    bus.recover()
    bus.publish(change("after", None, "InProgress"))
    wait_until(lambda: len(heard) == 3, 5, "three items")
    assert heard == ["before", "recovered", "after"]
    bus.unsubscribe(subscription)
    bus.publish(change("unheard", None, "InProgress"))
    time.sleep(0.2)
    assert heard == ["before", "recovered", "after"]


# -- through the services (no container runs) ----------------------------------------------------------
@pytest.fixture
def services(tmp_path):
    services = Services(Config(data_dir=tmp_path, pull_images=False))
    yield services
    services.close()


def test_endpoint_whose_image_is_missing_fails(services):
    heard = Recorder(services.events)
    model, config, endpoint = unique("ev-model"), unique("ev-config"), unique("ev-endpoint")
    services.sagemaker.call("CreateModel", {"ModelName": model, "ExecutionRoleArn": ROLE,
                                            "PrimaryContainer": {"Image": "no-such-image-anywhere:never"}})
    services.sagemaker.call("CreateEndpointConfig", {"EndpointConfigName": config, "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}]})
    arn = services.sagemaker.call("CreateEndpoint", {"EndpointName": endpoint,
                                                     "EndpointConfigName": config})["EndpointArn"]
    heard.wait_for(endpoint, "Failed")
    assert heard.of(endpoint) == [(None, "Creating"), ("Creating", "Failed")]
    assert heard.stored[-1] == "Failed"  # committed before it was heard
    first = heard.events[0]
    assert (first.kind, first.region, first.arn) == ("endpoint", services.config.region, arn)
    assert services.events.current_status([arn]) == {arn: "Failed"}
    services.sagemaker.call("DeleteEndpoint", {"EndpointName": endpoint})
    heard.wait_for(endpoint, None)
    assert heard.of(endpoint)[-1] == ("Failed", None)
    assert services.events.current_status([arn]) == {}
    # models and configs have no lifecycle: nothing was published for them
    assert {e.kind for e in heard.events} == {"endpoint"}


def stopped_before_running(data_dir) -> tuple[str, Recorder]:
    """A training job created and stopped while no run exists (the process "dies" before it runs)."""
    first = Services(Config(data_dir=data_dir, pull_images=False))
    first.training.submit = lambda region, name: None
    heard = Recorder(first.events)
    name = unique("ev-job")
    arn = first.sagemaker.call("CreateTrainingJob", training_request(name, "ev-bucket", "img:1"))["TrainingJobArn"]
    first.sagemaker.call("StopTrainingJob", {"TrainingJobName": name})
    heard.wait_for(name, "Stopping")
    first.events.close()
    first.db.close()
    return arn, heard


def test_job_created_then_stopped(tmp_path):
    _, heard = stopped_before_running(tmp_path)
    created, stopping = heard.events
    assert (created.previous, created.status, created.secondary_status) == (None, "InProgress", "Starting")
    assert (stopping.previous, stopping.status) == ("InProgress", "Stopping")
    assert (stopping.previous_secondary_status, stopping.secondary_status) == ("Starting", "Stopping")
    assert heard.stored[-1] == "Stopping"


def test_processing_and_transform_jobs_publish_too(services):
    services.processing.submit = services.transform.submit = lambda region, name: None  # records only
    heard = Recorder(services.events)
    processing = unique("ev-proc")
    services.sagemaker.call("CreateProcessingJob", processing_request(processing, "ev-bucket", "img:1"))
    model, transform = unique("ev-model"), unique("ev-tx")
    services.sagemaker.call("CreateModel", {"ModelName": model, "ExecutionRoleArn": ROLE,
                                            "PrimaryContainer": {"Image": "img:1"}})
    services.sagemaker.call("CreateTransformJob", {
        "TransformJobName": transform, "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    services.sagemaker.call("StopTransformJob", {"TransformJobName": transform})
    heard.wait_for(transform, "Stopping")
    assert [(e.kind, e.name, e.previous, e.status, e.secondary_status) for e in heard.events] == [
        ("processing-job", processing, None, "InProgress", None),
        ("transform-job", transform, None, "InProgress", None),
        ("transform-job", transform, "InProgress", "Stopping", None)]


def restarted(data_dir, arn: str) -> tuple[Services, dict, list[StatusChange]]:
    """A new process on the same data dir, with a subscriber that rebuilds what it waits for on start-up."""
    services = Services(Config(data_dir=data_dir, pull_images=False))
    waiting: dict[str, str | None] = {}
    after: list[StatusChange] = []
    services.events.subscribe(after.append, kinds=["training-job"],
                              recover=lambda: waiting.update(services.events.current_status([arn])))
    services.start_background()  # events.recover() first, then (with an engine) the jobs' recovery
    return services, waiting, after


def test_subscribers_recover_from_the_database_after_a_restart(tmp_path, monkeypatch):
    arn, _ = stopped_before_running(tmp_path)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # no engine: only the subscribers recover
    services, waiting, after = restarted(tmp_path, arn)
    try:
        wait_until(lambda: waiting, 10, "the recover hook")
        assert waiting == {arn: "Stopping"} and after == []
    finally:
        services.close()


def test_recovery_of_an_orphaned_job_is_heard(tmp_path, docker_ready):
    arn, _ = stopped_before_running(tmp_path)
    services, waiting, after = restarted(tmp_path, arn)
    try:
        wait_until(lambda: after, 30, "the recovery's status change")
        assert waiting == {arn: "Stopping"}  # the hook ran before the engine failed the job
        assert (after[0].previous, after[0].status) == ("Stopping", "Failed")
        assert resources.get_by_arn(arn).status == "Failed"
    finally:
        services.close()


def read_status(path, arn: str) -> str | None:
    """The committed status, through a connection of its own (not the writer's)."""
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT status FROM resource WHERE arn = ?", (arn.lower(),)).fetchone()
    return row[0] if row else None


# -- with real containers ---------------------------------------------------------------------------
@pytest.fixture
def running(tmp_path, docker_ready):
    """An emulator in this process (so the test reaches its event bus), serving on a free port."""
    from sagemaker_emulator.cli import Running

    server = Running(Config(data_dir=tmp_path, port=0))
    server.start()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.close()


def checked_publish(services: Services, seen: list) -> None:
    """Check, at the moment each event is published, that another connection reads its status."""
    publish, path = services.events.publish, services.config.data_dir / "emulator.db"

    def publish_checked(event: StatusChange) -> None:
        seen.append((event.status, read_status(path, event.arn)))
        publish(event)

    services.events.publish = publish_checked


def new_bucket(running) -> str:
    import boto3

    bucket = unique("ev-bucket")
    boto3.client("s3", endpoint_url=running.url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return bucket


def test_training_events_in_order_after_commit(running, training_image):
    services = running.app.services
    at_publish: list = []
    checked_publish(services, at_publish)
    heard = Recorder(services.events, kinds=["training-job"])
    bucket, name = new_bucket(running), unique("ev-train")
    services.sagemaker.call("CreateTrainingJob", training_request(name, bucket, training_image))
    heard.wait_for(name, "Completed", 180)
    statuses = [e.status for e in heard.events]
    assert statuses[0] == "InProgress" and heard.events[0].previous is None
    assert statuses[-1] == "Completed" and statuses.count("Completed") == 1
    assert set(statuses[:-1]) == {"InProgress"}
    for before, after in zip(heard.events, heard.events[1:], strict=False):  # each starts where the last ended
        assert (after.previous, after.previous_secondary_status) == (before.status, before.secondary_status)
    job = services.sagemaker.call("DescribeTrainingJob", {"TrainingJobName": name})
    assert [e.secondary_status for e in heard.events] == [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert all(published == stored for published, stored in at_publish), at_publish  # committed first
    assert heard.stored[-1] == "Completed"


def test_training_job_stopped_while_running(running, training_image):
    services = running.app.services
    heard = Recorder(services.events, kinds=["training-job"])
    name = unique("ev-stop")
    request = training_request(name, new_bucket(running), training_image, HyperParameters={"behaviour": "sleep"})
    services.sagemaker.call("CreateTrainingJob", request)
    wait_until(lambda: any(e.secondary_status == "Training" for e in heard.events), 120, "Training")
    wait_until(lambda: containers_with(heard.events[0].arn, running_only=True), 60, "the container")
    time.sleep(1.5)  # its SIGTERM handler installed
    services.sagemaker.call("StopTrainingJob", {"TrainingJobName": name})
    heard.wait_for(name, "Stopped", 60)
    primary = [e.status for e in heard.events if e.status != e.previous]
    assert primary == ["InProgress", "Stopping", "Stopped"]
    assert heard.events[-1].secondary_status == "Stopped" and heard.events[-1].terminal
