"""Serving containers of a SageMaker model (spec §3.1, §3.2, §3.6): shared by endpoints and batch transform.

A model is one container (`PrimaryContainer`) or several (`Containers`: a serial inference pipeline,
or `Direct` multi-container). `ModelFleet` prepares a model once (images resolved, model data staged
under a work directory) and then starts *instances*: one container per ContainerDefinition, each with
`serve`, its model data at /opt/ml/model (read-only), its Environment plus SAGEMAKER_BIND_TO_PORT, and
its port published and reached at the runtime's `Address` for it. `invoke` posts to an instance the
way SageMaker does: straight to the single container, hop by hop through a pipeline, or to the
container a Direct request names.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_emulator import staging
from sagemaker_emulator.jobs.data import JobData
from sagemaker_emulator.jobs.logsink import LogSink
from sagemaker_emulator.runtime import container_access, container_http, framework_images, images
from sagemaker_emulator.runtime.container_http import Reply
from sagemaker_emulator.runtime.interface import (
    Address,
    ContainerHandle,
    ContainerRuntime,
    ContainerSpec,
    ContainerStartError,
)

from . import isolation

log = logging.getLogger(__name__)

SERVING_PORT = 8080
SAFE_PORT_RANGE = "8081-8999"  # the second port a pipeline container may use (spec §3.2)
PING_TIMEOUT = 2.0


class ServingError(Exception):
    """The model's containers could not be brought up; the message is a FailureReason."""


class TargetModelError(Exception):
    """A multi-model endpoint's TargetModel could not be fetched (the caller's mistake: 400)."""


class ContainerReplyError(Exception):
    """A container answered non-2xx, timed out or could not be reached."""

    def __init__(self, container: str, status: int, message: str, timed_out: bool = False) -> None:
        super().__init__(f"{container}: {status} {message}")
        self.container, self.status, self.message, self.timed_out = container, status, message, timed_out


@dataclass
class ModelContainer:
    """What a ContainerDefinition becomes once prepared: the local image and its staged model dir."""

    name: str  # "primary" for a single container, else ContainerHostname or container-<n>
    image: str
    specified_image: str
    environment: dict[str, str]
    model_dir: Path | None
    port: int
    multi_model: bool = False


@dataclass
class RunningContainer:
    name: str
    handle: ContainerHandle
    address: Address  # where its serving port is reached
    sink: LogSink
    model: ModelContainer | None = None
    log_thread: threading.Thread | None = None
    loaded_models: dict[str, float] = field(default_factory=dict)  # multi-model: id -> last use
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ServingInstance:
    """One instance (ml.* host) of a model: its containers, in pipeline order."""

    instance_id: str
    containers: list[RunningContainer]
    inflight: int = 0
    isolated: isolation.IsolatedInstance | None = None  # EnableNetworkIsolation: its relay (gateways)


class ModelFleet:
    """Everything needed to run instances of one model: prepared once, started many times."""

    def __init__(self, services: Any, region: str, model: dict[str, Any], workdir: Path,
                 labels: dict[str, str], extra_env: dict[str, str] | None = None) -> None:
        self.services, self.region, self.model = services, region, model
        self.workdir, self.labels = workdir, labels
        self.extra_env = extra_env or {}
        definitions = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else list(model["Containers"])
        self.definitions = definitions
        self.mode = "Single" if len(definitions) == 1 else \
            (model.get("InferenceExecutionConfig") or {}).get("Mode", "Serial")
        self.containers: list[ModelContainer] = []
        self.deployed_images: list[dict[str, Any]] = []
        self.data = JobData(services, region)  # one S3 client for model data (and multi-model fetches)

    @property
    def runtime(self) -> ContainerRuntime:
        return self.services.runtime

    def prepare(self, cancel: threading.Event | None = None) -> None:
        """Resolve every image and stage every container's model data (once for all instances). Setting
        `cancel` (StopTransformJob, DeleteEndpoint) ends a wait for a stand-in build at once: ServingError."""
        config = self.services.config
        for index, definition in enumerate(self.definitions, start=1):
            name = "primary" if self.mode == "Single" else (definition.get("ContainerHostname") or f"container-{index}")
            try:
                image = framework_images.resolve(definition["Image"], config.image_map, self.runtime,
                                                 cancel=cancel).local
            except images.ImageUnavailable as exc:
                raise ServingError(str(exc)) from None
            self.deployed_images.append({"SpecifiedImage": definition["Image"], "ResolvedImage": image,
                                         "ResolutionTime": time.time()})
            multi = definition.get("Mode") == "MultiModel"
            model_dir = self.workdir / name / ("models" if multi else "model")
            model_dir.mkdir(parents=True, exist_ok=True)
            source = definition.get("ModelDataUrl")
            s3_source = (definition.get("ModelDataSource") or {}).get("S3DataSource")
            if s3_source and not source:
                source = s3_source["S3Uri"]
            if source and not multi:
                try:
                    staging.stage_model_data(self.data.store, source, model_dir)
                except staging.StagingError as exc:
                    raise ServingError(f"ClientError: Could not download model data from {source}: {exc}") from None
            port = SERVING_PORT + (0 if self.mode == "Single" else index - 1)
            # like AWS's framework containers fetching SAGEMAKER_SUBMIT_DIRECTORY with the instance role
            access = {} if self.model.get("EnableNetworkIsolation") else \
                container_access.environment(config, self.region, definition.get("Environment"))
            env = {**access, **(definition.get("Environment") or {}), **self.extra_env}
            if self.mode != "Single":
                env.update({"SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_SAFE_PORT_RANGE": SAFE_PORT_RANGE})
            if multi:
                env["SAGEMAKER_MULTI_MODEL"] = "true"
            self.containers.append(ModelContainer(name, image, definition["Image"], env, model_dir, port, multi))

    def start_instance(self, log_group: str, stream_for: Callable[[str, str], str],
                       host_label: str = "") -> ServingInstance:
        """Start one instance's containers (not yet healthy: see `wait_healthy`)."""
        instance = ServingInstance(f"i-{uuid.uuid4().hex[:17]}", [])
        if self.model.get("EnableNetworkIsolation"):  # no network at all; reached through a relay
            instance.isolated = isolation.for_instance(instance.instance_id)
        isolated = instance.isolated
        try:
            for container in self.containers:
                mount_point = "/opt/ml/models" if container.multi_model else "/opt/ml/model"
                spec = ContainerSpec(
                    image=container.image, command=["serve"], environment=dict(container.environment),
                    mounts={str(container.model_dir): (mount_point, "ro")}, ports=[container.port],
                    labels={**self.labels, "sagemaker-emulator.host": f"{host_label}{instance.instance_id}"
                                                                      f"/{container.name}"})
                try:
                    handle = self.services.workspace.start(isolated.serving_spec(spec) if isolated else spec)
                    if isolated:
                        isolated.attach(self.runtime, handle, container.name, container.port, self.labels)
                except ContainerStartError as exc:
                    raise ServingError(f"ClientError: The {container.name} container could not start: {exc}") \
                        from None
                sink = LogSink(self.region, log_group, stream_for(instance.instance_id, container.name))
                running = RunningContainer(container.name, handle, Address("", 0) if isolated else
                                           self.runtime.address(handle, container.port), sink, container)
                running.log_thread = self.runtime.stream_logs(handle, sink.write)
                instance.containers.append(running)
            if isolated:
                isolated.open(self.runtime, [c.name for c in self.containers], self.labels)
                for running in instance.containers:
                    running.address = isolated.address_of(self.runtime, running.name)
        except BaseException:
            self.stop_instance(instance)
            raise
        return instance

    def wait_healthy(self, instance: ServingInstance, timeout: float, what: str,
                     cancelled: threading.Event | None = None) -> None:
        """Every container answers `GET /ping` 200 within `timeout`, else ServingError naming why.

        `cancelled` (set when the endpoint is deleted meanwhile) ends the wait at once.
        """
        deadline = time.time() + timeout
        for container in instance.containers:
            label = f"{container.name} container for {what}"
            while True:
                if cancelled is not None and cancelled.is_set():
                    raise ServingError(f"The deployment of {what} was cancelled.")
                code = self.runtime.wait(container.handle, timeout=0)
                if code is not None:
                    time.sleep(0.3)  # let the last lines reach the sink
                    tail = " | ".join(line.strip() for line in container.sink.recent(5))
                    raise ServingError(f"The {label} exited with code {code} before passing the ping health "
                                       f"check. Last log lines: {tail}")
                if ping(container.address):
                    break
                if time.time() >= deadline:
                    raise ServingError(f"The {label} did not pass the ping health check within {int(timeout)} "
                                       "seconds (ContainerStartupHealthCheckTimeoutInSeconds).")
                time.sleep(0.05)

    def stop_instance(self, instance: ServingInstance, grace: float = 0) -> None:
        """Stop (SIGTERM, SIGKILL after `grace`), let each log stream reach its end, then remove.

        Removing a running container would lose the output Docker has not streamed to us yet.
        """
        for container in instance.containers:
            container_http.pool.forget(container.address)
            self.runtime.stop(container.handle, grace)
        for container in instance.containers:
            if container.log_thread is not None:
                container.log_thread.join(10)
            self.runtime.remove(container.handle)
            container.sink.close()
        if instance.isolated is not None:
            instance.isolated.remove(self.runtime)
            instance.isolated = None

    # -- invocations ----------------------------------------------------------------------------
    def invoke(self, instance: ServingInstance, body: bytes, headers: dict[str, str], timeout: float,
               target_container: str | None = None, target_model: str | None = None) -> Reply:
        """POST /invocations as SageMaker does for this model's mode (pipeline hops, Direct target, MME)."""
        last, body, headers = self.lead_in(instance, body, headers, timeout, target_container, target_model)
        return self._post_model(last, body, headers, timeout, target_model)

    def lead_in(self, instance: ServingInstance, body: bytes, headers: dict[str, str], timeout: float,
                target_container: str | None = None, target_model: str | None = None
                ) -> tuple[RunningContainer, bytes, dict[str, str]]:
        """Run every hop before the last (a serial pipeline's first containers); returns the last
        container with the body and headers it must get. Direct mode: the named container, at once.
        Each reply's Content-Type becomes the next request's; the client's Accept is the last hop's."""
        if self.mode == "Direct":
            return next(c for c in instance.containers if c.name == target_container), body, headers
        for container in instance.containers[:-1]:
            hop_headers = {k: v for k, v in headers.items() if k != "Accept"}
            reply = self._post_model(container, body, hop_headers, timeout, target_model)
            body = reply.body
            if reply.content_type:
                headers = {**headers, "Content-Type": reply.content_type}
        return instance.containers[-1], body, headers

    def _post_model(self, container: RunningContainer, body: bytes, headers: dict[str, str], timeout: float,
                    target_model: str | None) -> Reply:
        if container.model is not None and container.model.multi_model and target_model:
            from sagemaker_emulator.hosting.multi_model import invoke_target_model

            return invoke_target_model(self, container.model, container, body, headers, timeout, target_model)
        return post_checked(container, "/invocations", body, headers, timeout)


def ping(address: Address) -> bool:
    try:
        return post(address, "/ping", b"", {}, PING_TIMEOUT, method="GET").status == 200
    except (OSError, ValueError):
        return False


def post(address: Address, path: str, body: bytes, headers: dict[str, str], timeout: float,
         method: str = "POST") -> Reply:
    """One HTTP request to a container (pooled, kept alive: runtime.container_http)."""
    return container_http.request(address, path, body, headers, timeout, method)


def post_checked(container: RunningContainer, path: str, body: bytes, headers: dict[str, str],
                 timeout: float) -> Reply:
    """`post`, with every failure turned into ContainerReplyError naming the container."""
    try:
        reply = post(container.address, path, body, headers, timeout)
    except TimeoutError:
        raise ContainerReplyError(container.name, 0, "", timed_out=True) from None
    except (OSError, ValueError) as exc:  # ValueError: a malformed reply
        raise ContainerReplyError(container.name, 0, f"Could not reach container {container.name}: {exc}") from None
    if not 200 <= reply.status < 300:
        raise ContainerReplyError(container.name, reply.status, reply.body.decode(errors="replace"))
    return reply


def open_stream(fleet: ModelFleet, instance: ServingInstance, body: bytes, headers: dict[str, str],
                timeout: float, target_container: str | None = None) -> tuple[Reply, Any]:
    """Like `ModelFleet.invoke`, but the last container's body is returned as it arrives (chunked).

    Returns the reply's status and headers (body empty) and an iterator of byte chunks; the
    iterator raises ContainerReplyError if the stream breaks or stalls for `timeout`.
    """
    last, body, headers = fleet.lead_in(instance, body, headers, timeout, target_container)
    conn = http.client.HTTPConnection(last.address.host, last.address.port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=body, headers=headers)
        response = conn.getresponse()
    except TimeoutError:
        conn.close()
        raise ContainerReplyError(last.name, 0, "", timed_out=True) from None
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ContainerReplyError(last.name, 0, f"Could not reach container {last.name}: {exc}") from None
    reply = Reply(response.status, b"", {k.lower(): v for k, v in response.getheaders()})
    if not 200 <= response.status < 300:
        message = response.read().decode(errors="replace")
        conn.close()
        raise ContainerReplyError(last.name, response.status, message)

    def chunks():
        try:
            while True:
                try:
                    chunk = response.read1(65536)
                except TimeoutError:
                    raise ContainerReplyError(last.name, 0, "", timed_out=True) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise ContainerReplyError(last.name, 0, f"The stream broke: {exc}") from None
                if not chunk:
                    return
                yield chunk
        finally:
            conn.close()

    return reply, chunks()
