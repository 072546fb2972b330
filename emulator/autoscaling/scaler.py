"""The scaler: what Application Auto Scaling does to SageMaker variants, on the emulator's clock.

Every `autoscaling_period_seconds` (AWS's one-minute metric period; tests shorten it) it takes one
datapoint per variant target: the invocations of that period divided by the variant's instances
(`InvocationsPerInstance`, counted by the hosting engine's metrics). A target tracking policy on
SageMakerVariantInvocationsPerInstance scales out when its last 3 datapoints are above the target
and in when its last 15 are below 90% of it (the alarms AWS creates for it), to
ceil(instances x datapoint / target) within [MinCapacity, MaxCapacity], honouring ScaleOutCooldown /
ScaleInCooldown (300 s unless given), DisableScaleIn and the target's SuspendedState. A target
outside its range (a new MinCapacity, a scheduled action) is brought into it. Each change is a
scaling activity and an UpdateEndpointWeightsAndCapacities call, through the in-process call path;
the activity is Successful once the endpoint is InService with the new count.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import defaultdict, deque
from typing import Any

from sagemaker_emulator.background import BackgroundLoop
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

from . import schedules

log = logging.getLogger(__name__)

TARGET, POLICY, SCHEDULED, ACTIVITY = "scalable-target", "scaling-policy", "scheduled-action", "scaling-activity"
HIGH_POINTS, LOW_POINTS, LOW_FACTOR = 3, 15, 0.9
DEFAULT_COOLDOWN = 300.0
INSTANCES = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"


class Scaler:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.clock = time.time
        self._lock = threading.Lock()
        self._loop = BackgroundLoop("autoscaling", self._step)
        self._next_point: float | None = None
        self._seen: dict[tuple[str, str, str], int] = {}  # invocations counted at the last datapoint
        self._points: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=LOW_POINTS))
        self._last_tick: float | None = None

    @property
    def period(self) -> float:
        return float(self.services.config.autoscaling_period_seconds)

    def start(self) -> None:
        self._loop.start()

    def wake(self) -> None:
        self._loop.wake()

    def shutdown(self) -> None:
        self._loop.shutdown()

    def _step(self) -> float:
        """One pass of the loop: a datapoint when a period has passed; the seconds until the next one."""
        now = self.clock()
        if self._next_point is None:
            self._next_point = now + self.period
        sample = now >= self._next_point
        if sample:
            self._next_point = now + self.period
        self.tick(sample=sample)
        return self._next_point - self.clock()

    # -- one tick -------------------------------------------------------------------------------
    def tick(self, sample: bool = True) -> None:
        """Scheduled actions, ranges and (with `sample`, once a period) the policies' datapoints."""
        with self._lock:
            now = self.clock()
            previous, self._last_tick = self._last_tick, now
            for action in resources.all_of(SCHEDULED):
                self._scheduled(action, previous if previous is not None else now, now)
            for target in resources.all_of(TARGET):
                if target.document["ScalableDimension"] == INSTANCES:
                    self._target(target, now, sample)

    def _scheduled(self, row: Any, after: float, now: float) -> None:
        doc = row.document
        target = resources.get(TARGET, row.region, row.name.rsplit("|", 1)[0])
        if target is None or target.document["SuspendedState"].get("ScheduledScalingSuspended"):
            return
        if not schedules.fires(doc, max(after, doc.get("_last") or doc["CreationTime"]), now):
            return
        action = doc.get("ScalableTargetAction") or {}
        tdoc = target.document
        for member in ("MinCapacity", "MaxCapacity"):
            if action.get(member) is not None:
                tdoc[member] = action[member]
        resources.save(target, tdoc)
        doc["_last"] = now
        resources.save(row, doc)
        log.info("autoscaling: scheduled action %s set %s to min %s max %s", doc["ScheduledActionName"],
                 tdoc["ResourceId"], tdoc["MinCapacity"], tdoc["MaxCapacity"])

    def _target(self, row: Any, now: float, sample: bool) -> None:
        doc = row.document
        endpoint, variant = doc["ResourceId"].split("/")[1], doc["ResourceId"].split("/")[3]
        described = self._describe(row.region, endpoint)
        if described is None:
            return
        current = next((v for v in described.get("ProductionVariants") or [] if v["VariantName"] == variant), None)
        if current is None:
            return
        count = int(current.get("DesiredInstanceCount") or current.get("CurrentInstanceCount") or 0)
        self._settle(row, described, variant)
        invocations = self.services.hosting.metrics.invocations(row.region, endpoint, variant)
        key = (row.region, endpoint, variant)
        if sample:
            point = (invocations - self._seen.get(key, invocations)) / max(count, 1)
            self._seen[key] = invocations
            self._points[row.arn].append(point)
        elif key not in self._seen:
            self._seen[key] = invocations
        if described["EndpointStatus"] != "InService":
            return
        low, high = int(doc["MinCapacity"]), int(doc["MaxCapacity"])
        if count < low or count > high:
            bound = low if count < low else high
            cause = f"{'minimum' if count < low else 'maximum'} capacity was set to {bound}"
            self._scale(row, endpoint, variant, count, bound, cause, now)
            return
        points = list(self._points[row.arn])
        for policy in resources.all_of(POLICY, row.region):
            pdoc = policy.document
            if not policy.name.startswith(row.name + "|") or pdoc.get("PolicyType") != "TargetTrackingScaling":
                continue
            config = pdoc["TargetTrackingScalingPolicyConfiguration"]
            if (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType") != METRIC:
                continue
            desired = self._decide(doc, pdoc, config, points, count, now)
            if desired is not None and desired != count:
                side = "High" if desired > count else "Low"
                cause = (f"monitor alarm TargetTracking-{doc['ResourceId']}-Alarm{side}-{pdoc['_id']} in state "
                         f"ALARM triggered policy {pdoc['PolicyName']}")
                self._scale(row, endpoint, variant, count, desired, cause, now, policy=policy)
                return

    def _decide(self, target: dict[str, Any], policy: dict[str, Any], config: dict[str, Any], points: list[float],
                count: int, now: float) -> int | None:
        value = float(config["TargetValue"])
        suspended = target.get("SuspendedState") or {}
        low, high = int(target["MinCapacity"]), int(target["MaxCapacity"])
        last = policy.get("_last_scaled") or 0.0
        if len(points) >= HIGH_POINTS and all(p > value for p in points[-HIGH_POINTS:]):
            if suspended.get("DynamicScalingOutSuspended"):
                return None
            if now - last < float(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN)):
                return None
            return min(high, max(count + 1, math.ceil(count * points[-1] / value)))
        if len(points) >= LOW_POINTS and all(p < LOW_FACTOR * value for p in points[-LOW_POINTS:]):
            if config.get("DisableScaleIn") or suspended.get("DynamicScalingInSuspended"):
                return None
            if now - last < float(config.get("ScaleInCooldown", DEFAULT_COOLDOWN)):
                return None
            return max(low, min(count - 1, math.ceil(count * points[-1] / value)))
        return None

    # -- acting ---------------------------------------------------------------------------------
    def _describe(self, region: str, endpoint: str) -> dict[str, Any] | None:
        try:
            return self.services.sagemaker.call("DescribeEndpoint", {"EndpointName": endpoint}, region=region)
        except AwsError:
            return None

    def _scale(self, target: Any, endpoint: str, variant: str, count: int, desired: int, cause: str, now: float,
               policy: Any = None) -> None:
        doc = target.document
        activity = {"ActivityId": str(uuid.uuid4()), "ServiceNamespace": "sagemaker", "ResourceId": doc["ResourceId"],
                    "ScalableDimension": doc["ScalableDimension"],
                    "Description": f"Setting desired instance count to {desired}.",
                    "Cause": f"{cause}", "StartTime": now, "StatusCode": "InProgress",
                    "StatusMessage": f"Setting desired instance count to {desired}.", "_desired": desired,
                    "_variant": variant}
        try:
            self.services.sagemaker.call("UpdateEndpointWeightsAndCapacities", {
                "EndpointName": endpoint, "DesiredWeightsAndCapacities": [
                    {"VariantName": variant, "DesiredInstanceCount": desired}]}, region=target.region)
        except AwsError as err:
            activity.update(StatusCode="Failed", EndTime=now,
                            StatusMessage=f"Failed to set desired instance count to {desired}. Reason: {err.message}")
        arn = f"arn:aws:application-autoscaling:{target.region}:activity/{activity['ActivityId']}"
        resources.create(ACTIVITY, target.region, activity["ActivityId"], arn, activity)
        self._points[target.arn].clear()  # the alarms start over on the new fleet
        if policy is not None:
            pdoc = policy.document
            pdoc["_last_scaled"] = now
            resources.save(policy, pdoc)
        log.info("autoscaling: %s from %d to %d instances (%s)", doc["ResourceId"], count, desired, cause)

    def _settle(self, target: Any, described: dict[str, Any], variant: str) -> None:
        """InProgress activities of this target end once the endpoint is InService with their count."""
        if described["EndpointStatus"] not in ("InService", "Failed"):
            return
        current = next(v for v in described["ProductionVariants"] if v["VariantName"] == variant)
        for row in resources.all_of(ACTIVITY, target.region):
            activity = row.document
            if activity["ResourceId"] != target.document["ResourceId"] or activity["StatusCode"] != "InProgress":
                continue
            desired = activity["_desired"]
            if described["EndpointStatus"] == "InService" and current.get("CurrentInstanceCount") == desired:
                activity.update(StatusCode="Successful", EndTime=self.clock(), StatusMessage=(
                    f"Successfully set desired instance count to {desired}. Change successfully fulfilled by "
                    "sagemaker."))
            elif described["EndpointStatus"] == "Failed" or current.get("DesiredInstanceCount") != desired:
                activity.update(StatusCode="Failed", EndTime=self.clock(), StatusMessage=(
                    f"Failed to set desired instance count to {desired}. Reason: "
                    f"{described.get('FailureReason') or 'the endpoint was updated meanwhile'}"))
            else:
                continue
            resources.save(row, activity)
