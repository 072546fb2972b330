"""SageMaker managed warm pools of training jobs (ResourceConfig.KeepAlivePeriodInSeconds), as AWS's
developer guide ("SageMaker AI Managed Warm Pools") lays out their lifecycle:

- a job with KeepAlivePeriodInSeconds > 0 that ends Completed or Stopped, or Failed from its own
  algorithm (FailureReason `AlgorithmError`/`ClientError`), keeps its pool `Available` for that many
  seconds after TrainingEndTime; then `Terminated` (also when an UpdateTrainingJob sets the period to 0);
- a new job with a period of its own that matches it (same role, ResourceConfig apart from the period,
  VPC, network isolation, inter-container encryption) takes the pool over: the first job's status becomes `Reused` with
  ReusedByJob, the new job's is `InUse` while it runs, and `Available` for its own period once it ends.

Nothing is kept alive here: containers start per job as always, so "reuse" changes only what Describe
and ListTrainingJobs report. The status is computed when a job is read, from `_WarmPool` in its
document (the moments a pool was taken over or ended early) and the clock, so no timer is needed.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

KIND = "training-job"
STATE = "_WarmPool"  # {"ReusedBy": job name, "Reused": time, "Terminated": time, "InUseFrom": job name}
_RETAINED_FAILURES = ("AlgorithmError", "ClientError")  # a job's own failure keeps its pool (the guide)
_MATCHED = ("RoleArn", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption")
MAX_KEEP_ALIVE = 3600  # botocore's KeepAlivePeriodInSeconds maximum


def keep_alive(doc: dict[str, Any]) -> int:
    return int((doc.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds") or 0)


def _retains(doc: dict[str, Any]) -> bool:
    """Whether the job's end leaves a pool (the guide's "Warm pool creation")."""
    status = doc.get("TrainingJobStatus")
    if status in ("Completed", "Stopped"):
        return True
    return status == "Failed" and str(doc.get("FailureReason", "")).startswith(_RETAINED_FAILURES)


def status(doc: dict[str, Any], now: float | None = None) -> dict[str, Any] | None:
    """WarmPoolStatus as Describe/ListTrainingJobs show it, or None when the job has no pool."""
    state = doc.get(STATE) or {}
    running = doc.get("TrainingJobStatus") in ("InProgress", "Stopping")
    if running:
        return {"Status": "InUse"} if state.get("InUseFrom") else None
    period, end = keep_alive(doc), doc.get("TrainingEndTime")
    if period <= 0 and not state or end is None or not _retains(doc):
        return None
    now = resources.now() if now is None else now
    ended = min(t for t in (state.get("Reused"), state.get("Terminated"), end + period) if t is not None)
    out: dict[str, Any] = {"ResourceRetainedBillableTimeInSeconds": max(0, int(min(now, ended) - end))}
    if state.get("ReusedBy"):
        out.update(Status="Reused", ReusedByJob=state["ReusedBy"])
    elif now >= ended:
        out["Status"] = "Terminated"
    else:
        out["Status"] = "Available"
    return out


def _signature(doc: dict[str, Any]) -> tuple[str, ...]:
    config = {k: v for k, v in (doc.get("ResourceConfig") or {}).items() if k != "KeepAlivePeriodInSeconds"}
    return tuple(repr(sorted(value.items())) if isinstance(value, dict) else repr(value)
                 for value in [config, *(doc.get(member) for member in _MATCHED)])


def claim(region: str, name: str, doc: dict[str, Any]) -> str | None:
    """Take over an Available pool that matches the new job `doc` (the earliest to end); the name of the
    job whose pool it was, or None. The take-over is one transaction on that job, so two new jobs
    never take the same pool. Only a job that asks for a warm pool itself (KeepAlivePeriodInSeconds > 0)
    looks for one: a job without it runs as it would without warm pools."""
    if keep_alive(doc) <= 0:
        return None
    wanted = _signature(doc)
    now = resources.now()
    candidates: list[Resource] = list(Resource.select().where(
        (Resource.kind == KIND) & (Resource.region == region) & (Resource.name != name)
        & Resource.status.in_(["Completed", "Stopped", "Failed"])
        & (Resource.last_modified_time > now - MAX_KEEP_ALIVE - 60)
        & Resource.data.contains('"KeepAlivePeriodInSeconds"')))
    pools = [(row, row.document) for row in candidates]
    pools = [(row, d) for row, d in pools if (status(d, now) or {}).get("Status") == "Available"
             and _signature(d) == wanted]
    taken: list[str] = []

    def take(document: dict[str, Any]) -> None:
        if (status(document, now) or {}).get("Status") == "Available":
            document[STATE] = {**(document.get(STATE) or {}), "ReusedBy": name, "Reused": now}
            taken.append(document["TrainingJobName"])

    for row, _doc in sorted(pools, key=lambda pair: pair[1]["TrainingEndTime"] + keep_alive(pair[1])):
        resources.update(KIND, region, row.name, take)
        if taken:
            return taken[0]
    return None


def update_keep_alive(doc: dict[str, Any], seconds: int) -> str | None:
    """UpdateTrainingJob's ResourceConfig.KeepAlivePeriodInSeconds: a running job's period, or the period
    of an Available pool (0 ends it). The reason it cannot be changed, or None once it is."""
    current = status(doc)
    running = doc.get("TrainingJobStatus") in ("InProgress", "Stopping")
    if not running and (current or {}).get("Status") != "Available":
        return (f"The warm pool of training job {doc['TrainingJobName']} is "
                f"{(current or {}).get('Status', 'not retained')}; only a running job or an Available warm pool "
                "can change its KeepAlivePeriodInSeconds.")
    if seconds <= 0 and not running:
        doc[STATE] = {**(doc.get(STATE) or {}), "Terminated": resources.now()}
    doc.setdefault("ResourceConfig", {})["KeepAlivePeriodInSeconds"] = seconds
    return None
