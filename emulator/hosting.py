"""Real-time endpoints: serving containers per production variant, health checks, routing (spec §3).

An endpoint's variants each run InitialInstanceCount containers of their model with `serve`,
the model data extracted into /opt/ml/model, port 8080 published on 127.0.0.1. The endpoint is
InService once every container answers `GET /ping` with 200, Failed if one exits or never does
within ContainerStartupHealthCheckTimeoutInSeconds. Invocations pick a variant by weight (or
TargetVariant) and an instance round-robin, and are forwarded to the container's /invocations.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import images, staging
from emulator.docker_runtime import ContainerHandle, ContainerSpec, ContainerStartError
from emulator.jobs.data import JobData
from emulator.jobs.logsink import LogSink
from emulator.jobs.records import JobRecord
from emulator.protocol.errors import AwsError, ValidationError
from storage import resources

log = logging.getLogger(__name__)

KIND = "endpoint"
DEFAULT_HEALTH_TIMEOUT = 240  # the 2023 developer guide's 4 minutes (docs/decisions.md)
INVOKE_TIMEOUT = 60
SERVING_PORT = 8080


@dataclass
class Instance:
    handle: ContainerHandle
    port: int
    sink: LogSink
    log_thread: threading.Thread | None = None


@dataclass
class Variant:
    name: str
    weight: float
    instances: list[Instance] = field(default_factory=list)
    _cycle: Any = None

    def next_instance(self) -> Instance:
        if self._cycle is None:
            self._cycle = itertools.cycle(self.instances)
        return next(self._cycle)


@dataclass
class LiveEndpoint:
    variants: dict[str, Variant] = field(default_factory=dict)


class DeployError(Exception):
    """The fleet could not be brought up; the message is the FailureReason."""


class HostingEngine:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._live: dict[tuple[str, str], LiveEndpoint] = {}
        self._lock = threading.Lock()

    @property
    def runtime(self):
        return self.services.runtime

    def record(self, region: str, name: str) -> JobRecord:
        return JobRecord(KIND, region, name, "EndpointStatus")

    # -- lifecycle ------------------------------------------------------------------------------
    def create(self, region: str, name: str) -> None:
        threading.Thread(target=self._deploy_thread, args=(region, name), name=f"endpoint:{name}",
                         daemon=True).start()

    def _deploy_thread(self, region: str, name: str) -> None:
        record = self.record(region, name)
        doc = record.read()
        if doc is None:
            return
        try:
            live = self._deploy(region, name, doc)
        except DeployError as exc:
            self._fail(record, str(exc))
            return
        except Exception as exc:
            log.exception("endpoint %s: deployment failed inside the emulator", name)
            self._fail(record, f"InternalServerError: {exc}")
            return
        with self._lock:
            self._live[(region, name)] = live

        def in_service(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "InService"
            for summary in d["ProductionVariants"]:
                summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"]
                summary["CurrentWeight"] = summary["DesiredWeight"]

        if record.edit(in_service) is None:  # deleted while deploying
            self._teardown(live)
        log.info("endpoint %s: InService", name)

    def _fail(self, record: JobRecord, reason: str) -> None:
        def failed(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "Failed"
            d["FailureReason"] = reason[:1024]

        record.edit(failed)
        log.info("endpoint %s: Failed - %s", record.name, reason)

    def _deploy(self, region: str, name: str, doc: dict[str, Any]) -> LiveEndpoint:
        config = resources.get("endpoint-config", region, doc["EndpointConfigName"])
        if config is None:
            raise DeployError(f"Endpoint configuration {doc['EndpointConfigName']} no longer exists.")
        live = LiveEndpoint()
        workdir = Path(self.services.config.data_dir) / "endpoints" / region / name
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            for variant in config.document["ProductionVariants"]:
                live.variants[variant["VariantName"]] = self._deploy_variant(region, name, doc, variant, workdir)
        except BaseException:
            self._teardown(live)
            raise
        return live

    def _deploy_variant(self, region: str, endpoint: str, doc: dict[str, Any], variant: dict[str, Any],
                        workdir: Path) -> Variant:
        model_row = resources.get("model", region, variant["ModelName"])
        if model_row is None:
            raise DeployError(f"Model {variant['ModelName']} of variant {variant['VariantName']} no longer exists.")
        model = model_row.document
        container = model.get("PrimaryContainer") or model["Containers"][0]
        config = self.services.config
        try:
            image = images.resolve(container["Image"], config.image_map, self.runtime.image_exists).local
        except images.ImageUnavailable as exc:
            raise DeployError(str(exc)) from None
        model_dir = workdir / variant["VariantName"] / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        source = container.get("ModelDataUrl")
        if source:
            try:
                staging.stage_model_data(JobData(self.services, region).store, source, model_dir)
            except staging.StagingError as exc:
                raise DeployError(f"ClientError: Could not download model data from {source}: {exc}") from None
        out = Variant(variant["VariantName"], float(variant.get("InitialVariantWeight", 1.0)))
        count = variant.get("InitialInstanceCount") or 1
        labels = {"sagemaker-emulator.kind": "endpoint", "sagemaker-emulator.resource": doc["EndpointArn"]}
        for index in range(1, count + 1):
            try:
                handle = self.runtime.run(ContainerSpec(
                image=image, command=["serve"], environment=dict(container.get("Environment") or {}),
                mounts={str(model_dir): ("/opt/ml/model", "ro")}, ports=[SERVING_PORT],
                labels={**labels, "sagemaker-emulator.host": f"{variant['VariantName']}-{index}"}))
            except ContainerStartError as exc:
                raise DeployError(f"ClientError: The primary container for production variant "
                                  f"{variant['VariantName']} could not start: {exc}") from None
            instance_id = f"i-{handle.id[:17]}"
            sink = LogSink(region, f"/aws/sagemaker/Endpoints/{endpoint}", f"{variant['VariantName']}/{instance_id}")
            instance = Instance(handle, self.runtime.host_port(handle, SERVING_PORT), sink)
            instance.log_thread = self.runtime.stream_logs(handle, sink.write)
            out.instances.append(instance)
        timeout = variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_HEALTH_TIMEOUT
        for instance in out.instances:
            self._wait_healthy(instance, timeout, variant["VariantName"])
        return out

    def _wait_healthy(self, instance: Instance, timeout: float, variant: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            code = self.runtime.wait(instance.handle, timeout=0)
            if code is not None:
                tail = " | ".join(instance.sink.recent(5))
                raise DeployError(f"The primary container for production variant {variant} exited with code "
                                  f"{code} before passing the ping health check. Last log lines: {tail}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise DeployError(f"The primary container for production variant {variant} did not pass the ping health "
                          f"check within {int(timeout)} seconds (ContainerStartupHealthCheckTimeoutInSeconds).")

    def _teardown(self, live: LiveEndpoint) -> None:
        for variant in live.variants.values():
            for instance in variant.instances:
                self.runtime.remove(instance.handle)
                if instance.log_thread is not None:
                    instance.log_thread.join(5)
                instance.sink.close()

    def delete(self, region: str, name: str) -> None:
        with self._lock:
            live = self._live.pop((region, name), None)
        if live is not None:
            self._teardown(live)
        shutil.rmtree(Path(self.services.config.data_dir) / "endpoints" / region / name, ignore_errors=True)

    def shutdown(self) -> None:
        with self._lock:
            lives, self._live = list(self._live.values()), {}
        for live in lives:
            self._teardown(live)
        self.runtime.cleanup_kind("endpoint")

    def recover(self) -> None:
        """After a restart: endpoints that were serving (or being created) are deployed again."""
        self.runtime.cleanup_kind("endpoint")
        for row in resources.all_with_status(KIND, ("InService", "Creating", "Updating", "SystemUpdating")):
            def redeploying(d: dict[str, Any]) -> None:
                # SageMaker's status for a platform-side redeploy; waiters keep polling through it
                d["EndpointStatus"] = "Creating" if d["EndpointStatus"] == "Creating" else "SystemUpdating"

            self.record(row.region, row.name).edit(redeploying)
            self.create(row.region, row.name)

    # -- invocations ----------------------------------------------------------------------------
    def invoke(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            live = self._live.get((region, name))
        if live is None:
            raise ValidationError(f"Endpoint {name} of account {account} not found.", code="ValidationError")
        target = params.get("TargetVariant")
        if target:
            variant = live.variants.get(target)
            if variant is None:
                raise AwsError(f"Variant {target} not found for endpoint {name}.", code="ValidationError")
        else:
            choices = list(live.variants.values())
            weights = [v.weight for v in choices]
            variant = random.choices(choices, weights=weights)[0] if sum(weights) > 0 else choices[0]
        instance = variant.next_instance()
        headers = {"Content-Type": params.get("ContentType") or "application/octet-stream"}
        for key, header in (("Accept", "Accept"), ("CustomAttributes", "X-Amzn-SageMaker-Custom-Attributes"),
                            ("InferenceId", "X-Amzn-SageMaker-Inference-Id"),
                            ("TargetModel", "X-Amzn-SageMaker-Target-Model")):
            if params.get(key):
                headers[header] = params[key]
        log_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=INVOKE_TIMEOUT)
            conn.request("POST", "/invocations", body=params.get("Body") or b"", headers=headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError:
            raise self._model_error(0, "Your invocation timed out while waiting for a response from container "
                                       "primary. Review the latency metrics for each container in Amazon CloudWatch, "
                                       "resolve the issue, and try again.", log_arn) from None
        except OSError as exc:
            raise self._model_error(0, f"Could not reach container primary: {exc}", log_arn) from None
        if not 200 <= response.status < 300:
            raise self._model_error(response.status, body.decode(errors="replace"), log_arn)
        return {"Body": body, "ContentType": response.getheader("Content-Type"),
                "InvokedProductionVariant": variant.name,
                "CustomAttributes": response.getheader("X-Amzn-SageMaker-Custom-Attributes")}

    @staticmethod
    def _model_error(status: int, original: str, log_arn: str) -> AwsError:
        kind = "client" if 400 <= status < 500 else "server"
        message = f'Received {kind} error ({status}) from primary with message "{original}". See {log_arn} ' \
                  "for more information."
        return AwsError(message, code="ModelError", status=424, extra={
            "OriginalStatusCode": status, "OriginalMessage": original, "LogStreamArn": log_arn,
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if kind == "client" else "SERVER_ERROR_FROM_MODEL"})
