"""Hyperparameter tuning jobs: real training jobs, launched and watched through the public API.

The engine never polls. It starts children with `services.sagemaker.call("CreateTrainingJob")`
(related to the tuning job as `RELATION`), hears their ends on the event bus, hears their intermediate
objective values from the training engine's metric listeners (early stopping, Hyperband), and
stops them with StopTrainingJob. Every decision is recomputed from the stored children, so after a
restart `recover` only rebuilds which child belongs to which tuning job and fills free slots.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from typing import Any

from sagemaker_emulator.events import StatusChange, change_of
from sagemaker_emulator.jobs.records import TERMINAL
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import summary
from .space import parse, text
from .strategies import HyperbandStopper, MedianStopper, Stopper, Trial, strategy_for

log = logging.getLogger(__name__)

KIND = "hyper-parameter-tuning-job"
STATUS = "HyperParameterTuningJobStatus"
RELATION = "tuning-job/training-job"
HYPERBAND_EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")


def name_of(doc: dict[str, Any]) -> str:
    return doc["HyperParameterTuningJobName"]


def max_jobs(doc: dict[str, Any]) -> int:
    """MaxNumberOfTrainingJobs, or (Grid without it) the number of grid points of every definition."""
    config = doc["HyperParameterTuningJobConfig"]
    limit = config["ResourceLimits"].get("MaxNumberOfTrainingJobs")
    if limit is not None:
        return limit
    from .space import grid_size

    return sum(grid_size(parse(summary.ranges(doc, d))) for d in summary.definitions(doc))


def hyperband_resources(doc: dict[str, Any], definition: dict[str, Any]) -> tuple[int, int] | None:
    """(MinResource, MaxResource) when the strategy is Hyperband; MaxResource may come from the epochs HP."""
    config = doc["HyperParameterTuningJobConfig"]
    if config["Strategy"] != "Hyperband":
        return None
    hb = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    maximum = hb.get("MaxResource")
    if maximum is None:
        static = definition.get("StaticHyperParameters") or {}
        found = [static[k] for k in HYPERBAND_EPOCH_KEYS if k in static]
        maximum = int(float(found[0])) if found else None
    return hb.get("MinResource") or 1, maximum or 1


def resource_config_of(definition: dict[str, Any]) -> dict[str, Any]:
    """The children's ResourceConfig: the definition's, or the first of HyperParameterTuningResourceConfig
    (its InstanceConfigs are alternatives; the emulator has one kind of machine)."""
    if definition.get("ResourceConfig"):
        return definition["ResourceConfig"]
    hp = definition["HyperParameterTuningResourceConfig"]
    instance = hp["InstanceConfigs"][0] if hp.get("InstanceConfigs") else hp
    keys = ("InstanceType", "InstanceCount", "VolumeSizeInGB")
    config = {k: instance[k] for k in keys if instance.get(k) is not None}
    if hp.get("VolumeKmsKeyId"):
        config["VolumeKmsKeyId"] = hp["VolumeKmsKeyId"]
    return config


class TuningEngine:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._lock = threading.RLock()
        self._owner: dict[str, tuple[str, str]] = {}  # child training-job name (region-qualified) -> tuning key
        self._stoppers: dict[tuple[str, str], Stopper] = {}
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._closing = False
        services.events.subscribe(self._on_change, kinds={"training-job"}, recover=self.recover, name="tuning")
        services.training.metric_listeners.append(self._on_metric)

    # -- entry points ---------------------------------------------------------------------------
    def submit(self, region: str, name: str) -> None:
        """A new tuning job (the Create handler stored it): start its first children."""
        with self._lock:
            row = resources.get(KIND, region, name)
            if row is not None:
                self._arm(row)
                self._advance(row)

    def stop(self, region: str, name: str) -> None:
        """StopHyperParameterTuningJob: Stopping, every running child stopped, Stopped when all ended."""
        with self._lock:
            row = resources.get(KIND, region, name)
            if row is None or row.status != "InProgress":
                return
            self._set_status(row, "Stopping")
            self._stop_children(row)
            self._advance(resources.get(KIND, region, name))

    def recover(self) -> None:
        """After a restart (the event hook, before any later event): re-learn every unfinished tuning
        job's children. Nothing is launched yet: the training engine has not re-attached its jobs."""
        with self._lock:
            for row in resources.all_with_status(KIND, ("InProgress", "Stopping")):
                for child in resources.children(row, RELATION):
                    self._owner[f"{child.region}/{child.name}"] = (row.region, row.name)
                self._arm(row)

    def resume(self) -> None:
        """Once the training engine re-attached or failed the interrupted children (Services.start_background):
        launch what the free slots allow, or end the tuning jobs that are done."""
        with self._lock:
            for row in resources.all_with_status(KIND, ("InProgress", "Stopping")):
                self._advance(row)

    def shutdown(self) -> None:
        """Server shutdown: launch nothing more (the training engine is about to fail what runs)."""
        self._closing = True
        for timer in list(self._timers.values()):
            timer.cancel()

    # -- events ---------------------------------------------------------------------------------
    def _on_change(self, change: StatusChange) -> None:
        if not change.terminal and change.status is not None:
            return
        with self._lock:
            key = self._owner.get(f"{change.region}/{change.name}")
            if key is None:
                return
            row = resources.get(KIND, *key)
            if row is not None:
                self._advance(row)

    def _on_metric(self, region: str, name: str, metric: str, value: float) -> None:
        """A datapoint of a running training job (training engine's metric listener)."""
        with self._lock:
            key = self._owner.get(f"{region}/{name}")
            stopper = self._stoppers.get(key) if key else None
            if stopper is None or key is None:
                return
            row = resources.get(KIND, *key)
            if row is None or row.status != "InProgress":
                return
            if metric != row.document.get("_objectives", {}).get(name):
                return
            if not stopper.record(name, value) or not math.isfinite(value):
                return
            log.info("tuning job %s: stopping %s early (objective %s)", key[1], name, value)
        threading.Thread(target=self._call_quietly, args=("StopTrainingJob", {"TrainingJobName": name}, region),
                         daemon=True).start()

    # -- the decisions --------------------------------------------------------------------------
    def _advance(self, row: Resource | None) -> None:
        """Everything that follows from the children's current state: fill free slots, end the job."""
        if row is None or row.status not in ("InProgress", "Stopping") or self._closing:
            return
        doc = row.document
        children = resources.children(row, RELATION)
        running = [c for c in children if c.status not in TERMINAL]
        if row.status == "InProgress":
            reason = self._completion(doc, children)
            if reason is not None:
                doc["_completion"] = reason
                resources.save(row, doc)
                self._stop_children(row)
            else:
                config = doc["HyperParameterTuningJobConfig"]
                parallel = config["ResourceLimits"]["MaxParallelTrainingJobs"]
                total = max_jobs(doc)
                while len(running) < parallel and len(children) < total:
                    child = self._launch(row, len(children), children)
                    if child is None:
                        break
                    children.append(child)
                    running.append(child)
                running = [c for c in resources.children(row, RELATION) if c.status not in TERMINAL]
                children = resources.children(row, RELATION)
        self._refresh(row, children)
        if not running:
            self._finish(row, children)

    def _completion(self, doc: dict[str, Any], children: list[Resource]) -> str | None:
        """Why the tuning job should end before its limit, if it should (TuningJobCompletionCriteria, time)."""
        if doc.get("_completion"):
            return doc["_completion"]
        config = doc["HyperParameterTuningJobConfig"]
        limit = config["ResourceLimits"].get("MaxRuntimeInSeconds")
        if limit and time.time() - doc["CreationTime"] >= limit:
            return "MaxRuntimeInSeconds"
        criteria = config.get("TuningJobCompletionCriteria") or {}
        scored = summary.scored(doc, name_of(doc), children)
        if not scored:
            return None
        minimize = summary.minimizing(doc)
        best = summary.best_of(scored, minimize)
        target = criteria.get("TargetObjectiveMetricValue")
        if target is not None and (best[1] <= target if minimize else best[1] >= target):
            return "TargetObjectiveMetricValue"
        not_improving = summary.not_improving(scored, minimize)
        patience = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
        if patience and not_improving >= patience:
            return "BestObjectiveNotImproving"
        if (criteria.get("ConvergenceDetected") or {}).get("CompleteOnConvergence") == "Enabled":
            window = max(5, math.ceil(0.2 * max_jobs(doc)))
            if len(scored) >= 2 * window and not_improving >= window:
                doc["TuningJobCompletionDetails"] = {**doc.get("TuningJobCompletionDetails", {}),
                                                     "ConvergenceDetectedTime": time.time()}
                return "ConvergenceDetected"
        return None

    def _launch(self, row: Resource, index: int, children: list[Resource]) -> Resource | None:
        doc = row.document
        definitions = summary.definitions(doc)
        definition = definitions[index % len(definitions)]
        space = parse(summary.ranges(doc, definition), definition.get("StaticHyperParameters"))
        objective = summary.objective(doc, definition)
        minimize = objective["Type"] == "Minimize"
        seed = doc["HyperParameterTuningJobConfig"].get("RandomSeed")
        seed = seed if seed is not None else int(doc["CreationTime"] * 1000) % (2**31)
        history = [Trial(summary.typed(space, summary.tuned(doc, row.name, c)),
                         summary.objective_value(c.document, objective))
                   for c in children if c.status in TERMINAL
                   and summary.definition_of(doc, row.name, c.name) is definition]
        history = [Trial(point, value) for point, value in summary.parent_trials(doc, space, objective)] + history
        strategy = strategy_for(doc["HyperParameterTuningJobConfig"]["Strategy"], space, seed, minimize)
        try:
            point = strategy.propose(index // len(definitions), history)
        except Exception as exc:  # a bug of ours must end the tuning job, not leave it InProgress
            log.exception("tuning job %s: the %s strategy failed", row.name, strategy.__class__.__name__)
            doc = row.document
            doc["FailureReason"] = f"InternalServerError: the tuning strategy failed: {exc}"[:1024]
            doc["_completion"] = "Failed"
            resources.save(row, doc)
            return None
        if point is None:
            return None
        name = f"{row.name}-{index + 1:03d}-{secrets.token_hex(4)}"
        request = self._child_request(doc, definition, name, {k: text(v) for k, v in point.items()}, objective)
        try:
            self.services.sagemaker.call("CreateTrainingJob", request, region=row.region,
                                         internal={"TuningJobArn": row.arn})
        except AwsError as err:
            log.warning("tuning job %s: could not create %s: %s", row.name, name, err.message)
            doc = row.document
            doc["FailureReason"] = f"Could not create training job {name}: {err.message}"[:1024]
            doc["_completion"] = "Failed"
            resources.save(row, doc)
            return None
        child = resources.get("training-job", row.region, name)
        if child is None:
            return None
        self._owner[f"{row.region}/{name}"] = (row.region, row.name)
        resources.relate(row, child, RELATION)
        doc = row.document
        doc.setdefault("_objectives", {})[name] = objective["MetricName"]
        resources.save(row, doc)
        return child

    @staticmethod
    def _child_request(doc: dict[str, Any], definition: dict[str, Any], name: str, tuned: dict[str, str],
                       objective: dict[str, Any]) -> dict[str, Any]:
        """CreateTrainingJob from a definition: static + tuned hyperparameters + `_tuning_objective_metric`."""
        request: dict[str, Any] = {"TrainingJobName": name}
        for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "StoppingCondition", "VpcConfig",
                    "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining",
                    "CheckpointConfig", "RetryStrategy", "Environment"):
            if definition.get(key) is not None:
                request[key] = definition[key]
        spec = {k: v for k, v in definition["AlgorithmSpecification"].items() if v is not None}
        request["AlgorithmSpecification"] = spec
        request["ResourceConfig"] = resource_config_of(definition)
        static = dict(definition.get("StaticHyperParameters") or {})
        static.pop("_tuning_objective_metric", None)
        request["HyperParameters"] = {**static, **tuned, "_tuning_objective_metric": objective["MetricName"]}
        return request

    def _stop_children(self, row: Resource) -> None:
        for child in resources.children(row, RELATION):
            if child.status == "InProgress":
                self._call_quietly("StopTrainingJob", {"TrainingJobName": child.name}, row.region)

    def _call_quietly(self, operation: str, params: dict[str, Any], region: str) -> None:
        try:
            self.services.sagemaker.call(operation, params, region=region)
        except AwsError as err:  # it ended meanwhile
            log.info("%s %s: %s", operation, params, err.message)

    def _refresh(self, row: Resource, children: list[Resource]) -> None:
        doc = row.document
        doc.update(summary.counters(children, row.name, doc))
        best = summary.best_summary(doc, row.name, children)
        if best is not None:
            doc["BestTrainingJob"] = best
        overall = summary.overall_best(doc, best)
        if overall is not None:
            doc["OverallBestTrainingJob"] = overall
        doc["ConsumedResources"] = {"RuntimeInSeconds": summary.runtime_seconds(children)}
        resources.save(row, doc)

    def _finish(self, row: Resource, children: list[Resource]) -> None:
        doc = row.document
        if row.status == "Stopping":
            status = "Stopped"
        elif doc.get("_completion") == "Failed":
            status = "Failed"
        elif children and not summary.scored(doc, row.name, children):
            status = "Failed"
            doc.setdefault("FailureReason", "No training job succeeded with an objective metric value.")
        else:
            status = "Completed"
        doc["HyperParameterTuningEndTime"] = time.time()
        if status == "Completed" and not doc.get("TuningJobCompletionDetails"):
            doc["TuningJobCompletionDetails"] = {}
        doc.setdefault("TuningJobCompletionDetails", {})["NumberOfTrainingJobsObjectiveNotImproving"] = (
            summary.not_improving(summary.scored(doc, row.name, children), summary.minimizing(doc)))
        self._set_status(row, status, doc)
        timer = self._timers.pop((row.region, row.name), None)
        if timer is not None:
            timer.cancel()
        self._stoppers.pop((row.region, row.name), None)

    def _set_status(self, row: Resource, status: str, doc: dict[str, Any] | None = None) -> None:
        before = row.document
        doc = doc if doc is not None else row.document
        doc[STATUS] = status
        resources.save(row, doc, status=status)
        change = change_of(KIND, row.region, row.name, row.arn, before, doc)
        if change is not None:
            self.services.events.publish(change)

    def _arm(self, row: Resource) -> None:
        """The stopper of an early-stopping or Hyperband job, and the MaxRuntimeInSeconds timer."""
        key = (row.region, row.name)
        doc = row.document
        definition = summary.definitions(doc)[0]
        minimize = summary.minimizing(doc)
        resources_hb = hyperband_resources(doc, definition)
        if resources_hb is not None:
            self._stoppers[key] = HyperbandStopper(minimize, *resources_hb)
        elif doc["HyperParameterTuningJobConfig"].get("TrainingJobEarlyStoppingType") == "Auto":
            self._stoppers[key] = MedianStopper(minimize)
        limit = doc["HyperParameterTuningJobConfig"]["ResourceLimits"].get("MaxRuntimeInSeconds")
        if limit and key not in self._timers:
            delay = max(0.0, doc["CreationTime"] + limit - time.time())
            timer = threading.Timer(delay, self._on_deadline, args=key)
            timer.daemon = True
            self._timers[key] = timer
            timer.start()

    def _on_deadline(self, region: str, name: str) -> None:
        with self._lock:
            self._timers.pop((region, name), None)
            self._advance(resources.get(KIND, region, name))
