"""Endpoint lifecycles: create, blue/green update, weights and capacities, delete, restart (spec §3.4).

Every change that needs new containers builds them completely (started and passing `/ping`)
before traffic moves; the running fleet is replaced by swapping one `LiveEndpoint` for another, so
invocations during an update never fail. Old containers leave once their in-flight requests are
done. A fleet that fails to come up is removed and the endpoint stays on what it had (RollingBack
→ InService with a FailureReason), as SageMaker does.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sagemaker_emulator.hosting.fleet import ModelFleet, ServingError, ServingInstance
from sagemaker_emulator.jobs.records import JobRecord
from sagemaker_emulator.storage import resources

from .async_inference import AsyncInference
from .capture import DataCapture
from .invoke import Invoker
from .live import LiveEndpoint, VariantFleet
from .metrics import EndpointMetrics

log = logging.getLogger(__name__)

KIND = "endpoint"
LIVE_STATUSES = ("InService", "Creating", "Updating", "SystemUpdating", "RollingBack")


class DeployError(Exception):
    """The fleet could not be brought up; the message is the FailureReason."""


class DeployCancelled(Exception):
    """The endpoint was deleted while its fleet was being brought up."""


def log_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def variant_summaries(live: LiveEndpoint) -> list[dict[str, Any]]:
    """DescribeEndpoint's ProductionVariants for what is running."""
    out = []
    for variant in live.variants.values():
        summary: dict[str, Any] = {"VariantName": variant.name, "DeployedImages": variant.fleet.deployed_images,
                                   "CurrentWeight": variant.weight, "DesiredWeight": variant.weight}
        if variant.serverless is not None:
            summary["CurrentServerlessConfig"] = summary["DesiredServerlessConfig"] = variant.serverless
        else:
            summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = len(variant.instances)
        out.append(summary)
    return out


class HostingEngine:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._live: dict[tuple[str, str], LiveEndpoint] = {}
        # set by DeleteEndpoint: a deployment still starting (Creating/Updating) stops at once
        self._cancels: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()
        self.metrics = EndpointMetrics(services)
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()
        self.invoker = Invoker(self)
        self.async_inference = AsyncInference(self)

    @property
    def runtime(self):
        return self.services.runtime

    def record(self, region: str, name: str) -> JobRecord:
        return JobRecord(KIND, region, name, "EndpointStatus", self.services.events)

    def live(self, region: str, name: str) -> LiveEndpoint | None:
        # one dict read is atomic; writers swap whole LiveEndpoints under the lock (every invocation
        # comes here, so it does not queue behind a lifecycle change holding the lock)
        return self._live.get((region, name))

    def _workdir(self, region: str, name: str) -> Path:
        return Path(self.services.config.data_dir) / "endpoints" / region / name

    # -- building and removing fleets -----------------------------------------------------------
    def _build(self, region: str, name: str, arn: str, config: dict[str, Any],
               desired: dict[str, tuple[float | None, int | None]] | None = None) -> LiveEndpoint:
        """Start and health-check every variant of `config`; nothing is left running on failure.

        A DeleteEndpoint meanwhile sets the endpoint's cancel event: the build then stops at once and
        removes what it started (DeployCancelled), instead of waiting out the health-check window.
        """
        cancel = self._cancel_event(region, name)
        deployment = uuid.uuid4().hex[:8]
        live = LiveEndpoint(region, name, arn, config["EndpointConfigName"], deployment,
                            async_config=config.get("AsyncInferenceConfig"))
        workdir = self._workdir(region, name) / deployment
        labels = {"sagemaker-emulator.kind": "endpoint", "sagemaker-emulator.resource": arn,
                  "sagemaker-emulator.deployment": deployment}
        try:
            for variant in config["ProductionVariants"]:
                model_row = resources.get("model", region, variant["ModelName"])
                if model_row is None:
                    raise DeployError(f"Model {variant['ModelName']} of variant {variant['VariantName']} no longer "
                                      "exists.")
                weight, count = (desired or {}).get(variant["VariantName"], (None, None))
                fleet = ModelFleet(self.services, region, model_row.document,
                                   workdir / variant["VariantName"], labels)
                vf = VariantFleet(variant["VariantName"],
                                  float(variant.get("InitialVariantWeight", 1.0) if weight is None else weight),
                                  fleet, variant, serverless=variant.get("ServerlessConfig"))
                live.variants[vf.name] = vf
                fleet.prepare(cancel)
                if vf.serverless is None:
                    for _ in range(count or variant.get("InitialInstanceCount") or 1):
                        if cancel.is_set():
                            raise DeployCancelled(name)
                        vf.instances.append(self._start(live, vf))
            for vf in live.variants.values():
                for instance in vf.instances:
                    self._wait_healthy(vf, instance, cancel)
            capture = config.get("DataCaptureConfig")
            if capture and capture.get("EnableCapture", True):
                live.capture = DataCapture(self.services, region, name, capture)
        except ServingError as exc:
            self._teardown(live)
            if cancel.is_set():
                raise DeployCancelled(name) from None
            raise DeployError(str(exc)) from None
        except BaseException:
            self._teardown(live)
            raise
        if any(v.serverless is not None for v in live.variants.values()):
            self._start_reaper()
        return live

    def _start(self, live: LiveEndpoint, vf: VariantFleet) -> ServingInstance:
        single = vf.fleet.mode == "Single"
        return vf.fleet.start_instance(
            log_group(live.name),
            lambda iid, cname: f"{vf.name}/{iid}" if single else f"{vf.name}/{iid}/{cname}",
            host_label=f"{vf.name}/")

    def _wait_healthy(self, vf: VariantFleet, instance: ServingInstance,
                      cancel: threading.Event | None = None) -> None:
        timeout = vf.config.get("ContainerStartupHealthCheckTimeoutInSeconds") \
            or self.services.config.health_check_timeout_seconds
        vf.fleet.wait_healthy(instance, timeout, f"production variant {vf.name}", cancel)

    def _cancel_event(self, region: str, name: str) -> threading.Event:
        """The endpoint's cancel event: one per name, replaced when a deleted name is created again."""
        with self._lock:
            return self._cancels.setdefault((region, name), threading.Event())

    def _retire(self, vf: VariantFleet, instances: list[ServingInstance]) -> None:
        """Instances already out of rotation: wait for their requests, then remove them."""
        vf.wait_idle(instances)
        for instance in instances:
            vf.fleet.stop_instance(instance)

    def _teardown(self, live: LiveEndpoint) -> None:
        for vf in live.variants.values():
            with vf.lock:
                instances, vf.instances = vf.instances, []
            self._retire(vf, instances)
        if live.capture is not None:
            live.capture.close()
        shutil.rmtree(self._workdir(live.region, live.name) / live.deployment, ignore_errors=True)

    # -- create ---------------------------------------------------------------------------------
    def create(self, region: str, name: str) -> None:
        with self._lock:
            self._cancels[(region, name)] = threading.Event()  # a fresh one: the name may have been deleted
        threading.Thread(target=self._create_thread, args=(region, name), name=f"endpoint:{name}",
                         daemon=True).start()

    def _create_thread(self, region: str, name: str) -> None:
        record = self.record(region, name)
        doc = record.read()
        if doc is None:
            return
        log.info("endpoint %s: Creating - deploying endpoint config %s", name, doc["EndpointConfigName"])
        try:
            config = self._config(region, doc["EndpointConfigName"])
            live = self._build(region, name, doc["EndpointArn"], config)
        except DeployCancelled:
            log.info("endpoint %s: deleted while Creating; its containers are removed", name)
            return
        except DeployError as exc:
            self._set_failed(record, str(exc))
            return
        except Exception as exc:
            log.exception("endpoint %s: deployment failed inside the emulator", name)
            self._set_failed(record, f"InternalServerError: {exc}")
            return
        with self._lock:
            self._live[(region, name)] = live

        def in_service(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "InService"
            d["ProductionVariants"] = variant_summaries(live)
            d.pop("PendingDeploymentSummary", None)

        if record.edit(in_service) is None:  # deleted while deploying
            self.delete(region, name)
        log.info("endpoint %s: InService - endpoint config %s deployed", name, doc["EndpointConfigName"])

    def _config(self, region: str, config_name: str) -> dict[str, Any]:
        row = resources.get("endpoint-config", region, config_name)
        if row is None:
            raise DeployError(f"Endpoint configuration {config_name} no longer exists.")
        return row.document

    def _set_failed(self, record: JobRecord, reason: str) -> None:
        def failed(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "Failed"
            d["FailureReason"] = reason[:1024]

        if record.edit(failed) is not None:  # None: deleted meanwhile, nothing to report
            log.info("endpoint %s: Failed - %s", record.name, reason)

    def _roll_back(self, record: JobRecord, reason: str, restore: Any = None) -> None:
        """A change failed: RollingBack, then InService on what was running, with the reason."""
        record.edit(lambda d: d.update(EndpointStatus="RollingBack"))

        def back(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "InService"
            d["FailureReason"] = reason[:1024]
            d.pop("PendingDeploymentSummary", None)
            if restore is not None:
                restore(d)

        record.edit(back)
        log.info("endpoint %s: InService - update rolled back: %s", record.name, reason)

    # -- UpdateEndpoint (blue/green) -------------------------------------------------------------
    def update(self, region: str, name: str, config_name: str, retain: bool, excluded: list[str]) -> None:
        threading.Thread(target=self._update_thread, args=(region, name, config_name, retain, excluded),
                         name=f"endpoint-update:{name}", daemon=True).start()

    def _update_thread(self, region: str, name: str, config_name: str, retain: bool, excluded: list[str]) -> None:
        record = self.record(region, name)
        doc = record.read()
        old = self.live(region, name)
        if doc is None:
            return
        log.info("endpoint %s: Updating - deploying endpoint config %s", name, config_name)
        desired: dict[str, tuple[float | None, int | None]] = {}
        if retain and old is not None:
            for vf in old.variants.values():
                desired[vf.name] = (None if "DesiredWeight" in excluded else vf.weight,
                                    None if "DesiredInstanceCount" in excluded else len(vf.instances) or None)
        try:
            config = self._config(region, config_name)
            new = self._build(region, name, doc["EndpointArn"], config, desired)
        except DeployCancelled:
            log.info("endpoint %s: deleted while Updating; the new deployment's containers are removed", name)
            return
        except Exception as exc:
            if not isinstance(exc, DeployError):
                log.exception("endpoint %s: update failed inside the emulator", name)
            self._roll_back(record, f"Update failed: {exc}")
            return
        with self._lock:
            if (region, name) not in self._live and old is not None:  # deleted meanwhile
                gone = True
            else:
                gone = False
                self._live[(region, name)] = new
        if gone:
            self._teardown(new)
            return
        if old is not None:
            self._teardown(old)  # out of rotation now: drains in-flight requests, then removes

        def updated(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "InService"
            d["EndpointConfigName"] = config_name
            d["ProductionVariants"] = variant_summaries(new)
            d.pop("PendingDeploymentSummary", None)
            d.pop("FailureReason", None)
            for key in ("DataCaptureConfig", "AsyncInferenceConfig"):
                if config.get(key):
                    d[key] = config[key]
                else:
                    d.pop(key, None)

        if record.edit(updated) is None:
            self.delete(region, name)
        log.info("endpoint %s: InService - updated to endpoint config %s", name, config_name)

    # -- UpdateEndpointWeightsAndCapacities ------------------------------------------------------
    def update_weights(self, region: str, name: str, desired: list[dict[str, Any]]) -> None:
        threading.Thread(target=self._weights_thread, args=(region, name, desired),
                         name=f"endpoint-weights:{name}", daemon=True).start()

    def _weights_thread(self, region: str, name: str, desired: list[dict[str, Any]]) -> None:
        record = self.record(region, name)
        live = self.live(region, name)
        if live is None:
            return
        try:
            for change in desired:
                vf = live.variants[change["VariantName"]]
                count = change.get("DesiredInstanceCount")
                if count is not None and vf.serverless is None:
                    self._resize(live, vf, count)
                if change.get("DesiredWeight") is not None:
                    vf.weight = float(change["DesiredWeight"])
        except Exception as exc:
            if not isinstance(exc, ServingError):
                log.exception("endpoint %s: capacity change failed inside the emulator", name)
            current = variant_summaries(live)
            self._roll_back(record, f"Capacity update failed: {exc}",
                            restore=lambda d: d.update(ProductionVariants=current))
            return

        def done(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "InService"
            d["ProductionVariants"] = variant_summaries(live)
            d.pop("FailureReason", None)

        record.edit(done)
        log.info("endpoint %s: InService - variant weights/capacities updated", name)

    def _resize(self, live: LiveEndpoint, vf: VariantFleet, count: int) -> None:
        current = len(vf.instances)
        if count > current:
            added: list[ServingInstance] = []
            try:
                for _ in range(count - current):
                    added.append(self._start(live, vf))
                for instance in added:
                    self._wait_healthy(vf, instance)
            except BaseException:
                for instance in added:
                    vf.fleet.stop_instance(instance)
                raise
            with vf.lock:
                vf.instances = vf.instances + added
        elif count < current:
            with vf.lock:
                keep, drop = vf.instances[:count], vf.instances[count:]
                vf.instances = keep
            self._retire(vf, drop)

    # -- serverless -----------------------------------------------------------------------------
    def ensure_serverless(self, live: LiveEndpoint, vf: VariantFleet) -> None:
        """Cold start: the first invocation of an idle serverless variant starts its container."""
        with vf.fleet_lock:
            if vf.instances:
                return
            instance = self._start(live, vf)
            try:
                self._wait_healthy(vf, instance)
            except BaseException:
                vf.fleet.stop_instance(instance)
                raise
            with vf.lock:
                vf.instances = [instance]
                vf.last_used = time.time()

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap_idle, name="serverless-reaper", daemon=True)
            self._reaper.start()

    def _reap_idle(self) -> None:
        """Stop serverless containers idle for longer than the configured time."""
        while not self._closing.wait(1.0):
            idle = self.services.config.serverless_idle_seconds
            with self._lock:
                lives = list(self._live.values())
            for live in lives:
                for vf in live.variants.values():
                    if vf.serverless is None or not vf.instances:
                        continue
                    with vf.lock:
                        if time.time() - vf.last_used < idle or any(i.inflight for i in vf.instances):
                            continue
                        drop, vf.instances = vf.instances, []
                    log.info("endpoint %s: serverless variant %s idle, stopping its container", live.name, vf.name)
                    self._retire(vf, drop)

    # -- invocations ----------------------------------------------------------------------------
    def invoke(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.invoker.invoke(region, account, name, params)

    def invoke_async(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.async_inference.submit(region, account, name, params)

    def invoke_stream(self, region: str, account: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.invoker.invoke_stream(region, account, name, params)

    # -- delete, shutdown, restart ---------------------------------------------------------------
    def delete(self, region: str, name: str) -> None:
        log.info("endpoint %s: Deleting", name)
        with self._lock:
            live = self._live.pop((region, name), None)
            cancel = self._cancels.pop((region, name), None)
        if cancel is not None:
            cancel.set()  # a deployment still starting stops now and removes its containers
        if live is not None:
            self._teardown(live)
            self.metrics.flush()
        shutil.rmtree(self._workdir(region, name), ignore_errors=True)

    def shutdown(self) -> None:
        self._closing.set()
        self.async_inference.close()
        with self._lock:
            lives, self._live = list(self._live.values()), {}
        for live in lives:
            self._teardown(live)
        self.metrics.close()
        self.runtime.cleanup_kind("endpoint")

    def recover(self) -> None:
        """After a restart: endpoints that were serving (or being created or updated) are deployed again."""
        self.runtime.cleanup_kind("endpoint")
        # every deployment is rebuilt from scratch: the old ones' model directories are leftovers
        shutil.rmtree(Path(self.services.config.data_dir) / "endpoints", ignore_errors=True)
        for row in resources.all_with_status(KIND, LIVE_STATUSES):
            def redeploying(d: dict[str, Any]) -> None:
                # SageMaker's status for a platform-side redeploy; waiters keep polling through it
                d["EndpointStatus"] = "Creating" if d["EndpointStatus"] == "Creating" else "SystemUpdating"
                d.pop("PendingDeploymentSummary", None)

            self.record(row.region, row.name).edit(redeploying)
            self.create(row.region, row.name)
        self.async_inference.recover()  # each waits for its endpoint to serve again
