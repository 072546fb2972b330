"""Training jobs as real containers under SageMaker's training contract (spec §2).

`TrainingEngine` owns a thread per running job; the run is the cluster skeleton of `JobRun`
(jobs/engine.py). A training job: resolve the image, stage every channel for every host
(File/FastFile download, Pipe FIFOs fed while the container reads), write the three config files,
run `algo-1..N` on a private network, capture logs and metrics, then upload
`model.tar.gz`/`output.tar.gz`/checkpoints and record the outcome. Stop requests and the runtime
limit become SIGTERM then SIGKILL after the grace period; artifacts are still uploaded.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sagemaker_emulator.runtime import framework_images

from . import experiment_tracking
from . import training_config as tc
from .cluster import Cluster, Member, Outcome
from .data import JobData
from .engine import FAILURE_LIMIT, SHUTDOWN_REASON, JobEngine, JobRun
from .metrics import MetricExtractor
from .records import elapsed_seconds, transition

log = logging.getLogger(__name__)

KIND = "training-job"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class TrainingEngine(JobEngine["TrainingRun"]):
    """Runs training jobs in background threads; the API handlers call submit/stop."""

    kind, status_field, noun, folder = KIND, "TrainingJobStatus", "training job", "training"

    @property
    def run_class(self) -> type:
        return TrainingRun

    def __init__(self, services: Any) -> None:
        super().__init__(services)
        # Called with (region, job name, metric name, value) for every datapoint a running job logs:
        # the intermediate values tuning's early stopping reads (not a public field).
        self.metric_listeners: list[Any] = []

    def mark_stopping(self, doc: dict[str, Any]) -> None:
        doc["TrainingJobStatus"] = "Stopping"
        transition(doc, "Stopping", "Stopping the training job")


class TrainingRun(JobRun):
    """One training job's life, in its own thread."""

    log_group, container_noun, failure_file = LOG_GROUP, "training", "output/failure"

    def __init__(self, engine: TrainingEngine, region: str, name: str) -> None:
        super().__init__(engine, region, name)
        self._extractor: MetricExtractor | None = None
        self._extractor_made = False

    # -- status helpers -------------------------------------------------------------------------
    def status(self, secondary: str, message: str, **fields: Any) -> dict[str, Any] | None:
        def change(doc: dict[str, Any]) -> None:
            if doc["TrainingJobStatus"] == "Stopping" and secondary not in ("Stopped", "MaxRuntimeExceeded"):
                doc.update(fields)  # a stop arrived: keep showing Stopping
                return
            transition(doc, secondary, message)
            doc.update(fields)

        doc = self.record.edit(change)
        log.info("training job %s: %s/%s - %s", self.name, doc["TrainingJobStatus"] if doc else "InProgress",
                 secondary, message)
        return doc

    def fail(self, reason: str) -> None:
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            doc["TrainingJobStatus"] = "Failed"
            doc["FailureReason"] = reason[:FAILURE_LIMIT]
            doc["TrainingEndTime"] = now
            seconds = elapsed_seconds(doc.get("TrainingStartTime"), now)
            doc["TrainingTimeInSeconds"] = doc["BillableTimeInSeconds"] = seconds
            transition(doc, "Failed", "Training job failed", now)

        self.record.edit(change)
        log.info("training job %s: Failed/Failed - %s", self.name, reason.splitlines()[0] if reason else "")

    # -- the job (JobRun.run_cluster's steps) ---------------------------------------------------
    def _run(self, adopt: dict | None) -> None:
        self.run_cluster(adopt)

    def hosts(self, job: dict[str, Any]) -> list[tc.Host]:
        return tc.hosts_of(job["ResourceConfig"])

    def image_of(self, job: dict[str, Any]) -> str:
        return job["AlgorithmSpecification"]["TrainingImage"]

    def labels(self, job: dict[str, Any]) -> dict[str, str]:
        return {"sagemaker-emulator.kind": "training", "sagemaker-emulator.resource": job["TrainingJobArn"]}

    def isolated(self, job: dict[str, Any]) -> bool:
        return bool(job.get("EnableNetworkIsolation"))

    def deadline(self, job: dict[str, Any]) -> float:
        return job.get("TrainingStartTime", time.time()) + job["StoppingCondition"]["MaxRuntimeInSeconds"]

    def begin(self, job: dict[str, Any]) -> dict[str, Any] | None:
        return self.status("Starting", "Preparing the instances for training", TrainingStartTime=time.time())

    def launching(self, job: dict[str, Any]) -> None:
        self.status("Training", "Training image download completed. Training in progress.")

    def stage(self, job: dict[str, Any], hosts: list[tc.Host], data: JobData) -> list | None:
        """Write config files and channel data for every host; returns Pipe-mode feeders to start."""
        self.status("Downloading", "Downloading input data")
        feeders = []
        input_config = tc.input_data_config(job)
        for host in hosts:
            root = self.dir.host(host.name)
            config_dir = root / "input" / "config"
            config_dir.mkdir(parents=True, exist_ok=True)
            (config_dir / "hyperparameters.json").write_text(json.dumps(tc.hyperparameters(job)))
            (config_dir / "inputdataconfig.json").write_text(json.dumps(input_config))
            (config_dir / "resourceconfig.json").write_text(json.dumps(tc.resource_config(host, hosts)))
            for sub in ("model", "output/data", "checkpoints", "input/data"):
                (root / sub).mkdir(parents=True, exist_ok=True)
        for name, meta in input_config.items():
            if meta["TrainingInputMode"] == "Pipe" and self.refuse_pipe(f"channel '{name}'"):
                return None
        if job.get("CheckpointConfig", {}).get("S3Uri"):
            try:
                for host in hosts:
                    data.restore_checkpoints(job["CheckpointConfig"]["S3Uri"],
                                             self.dir.host(host.name) / "checkpoints")
            except data.errors as exc:  # a hostile or unreadable checkpoint is the user's problem, not ours
                self.fail(f"ClientError: CheckpointConfig: {exc}")
                return None
        for channel in job.get("InputDataConfig") or []:
            mode = input_config[channel["ChannelName"]]["TrainingInputMode"]
            targets = tc.channel_hosts(channel, hosts)
            try:
                for index, host in enumerate(targets):
                    data_dir = self.dir.host(host.name) / "input" / "data"
                    feeder = data.stage_channel(channel, mode, data_dir, index, len(targets), self.stop_requested)
                    if feeder is not None:
                        feeders.append(feeder)
            except data.errors as exc:
                self.fail(f"ClientError: Channel '{channel['ChannelName']}': {exc}")
                return None
        return feeders

    def _checkpoint_path(self, job: dict[str, Any]) -> str:
        return (job.get("CheckpointConfig") or {}).get("LocalPath") or "/opt/ml/checkpoints"

    def members(self, job: dict[str, Any], hosts: list[tc.Host], image: str, network: str | None) -> list[Member]:
        spec = job["AlgorithmSpecification"]
        user_env = job.get("Environment") or {}
        env = {**user_env, "TRAINING_JOB_NAME": self.name, "TRAINING_JOB_ARN": job["TrainingJobArn"]}
        entrypoint = spec.get("ContainerEntrypoint")
        command = spec.get("ContainerArguments")
        if entrypoint is None and command is None:
            command = ["train"]
        checkpoint_path = self._checkpoint_path(job)
        modes = tc.input_data_config(job)
        members = []
        for host in hosts:
            root = self.dir.host(host.name)
            mounts = {str(root / "input"): ("/opt/ml/input", "rw"), str(root / "model"): ("/opt/ml/model", "rw"),
                      str(root / "output"): ("/opt/ml/output", "rw"),
                      str(root / "checkpoints"): (checkpoint_path, "rw")}
            for channel, meta in modes.items():
                if meta["TrainingInputMode"] == "FastFile":
                    mounts[str(root / "input" / "data" / channel)] = (f"/opt/ml/input/data/{channel}", "ro")
            members.append(Member(
                host=host.name,
                spec=self.container_spec(job, host.name, image, network, mounts=mounts, environment=env,
                                         command=command, entrypoint=entrypoint, instance_type=host.instance_type),
                make_sink=self.sink_factory(host.name, self._metric_hook(job, host.name)),
                outputs=["/opt/ml/model", "/opt/ml/output", checkpoint_path]))
        return members

    def _image_observer(self) -> Any:
        from .image_progress import JobBuildObserver

        return JobBuildObserver(self.region, LOG_GROUP, f"{self.name}/algo-1",
                                lambda uri: self.status("Downloading", f"Building the local stand-in for {uri}"))

    def _metric_hook(self, job: dict[str, Any], host: str):
        extractor = self._metrics(job)
        if extractor is None:
            return None
        dimension = f"{self.name}/{host}"
        listeners = getattr(self.engine, "metric_listeners", [])  # the TrainingEngine's

        def hook(ts: float, line: str) -> None:
            for point in extractor.feed(line, ts, dimension):
                for listener in listeners:
                    try:
                        listener(self.region, self.name, point.name, point.value)
                    except Exception:
                        log.exception("metric listener failed")
        return hook

    def _metrics(self, job: dict[str, Any]) -> MetricExtractor | None:
        if not self._extractor_made:
            definitions = (job["AlgorithmSpecification"].get("MetricDefinitions") or []) + \
                framework_images.implied_metric_definitions(job["AlgorithmSpecification"].get("TrainingImage", ""),
                                                            job.get("HyperParameters") or {})
            self._extractor = MetricExtractor(definitions) if definitions else None
            self._extractor_made = True
        return self._extractor

    def finish(self, job: dict[str, Any], hosts: list[tc.Host], data: JobData, outcome: Outcome,
               cluster: Cluster | None) -> None:
        if self.shutdown_requested:  # the server is going away: no upload, just record why
            self.fail(SHUTDOWN_REASON)
            return
        stopped = outcome.reason in ("stopped", "timeout")
        failure = None if stopped or cluster is None else self.failure_reason(hosts, outcome, cluster)
        if failure is None and not stopped and data.feeder_errors():
            failure = "ClientError: " + "; ".join(data.feeder_errors())
        if not stopped and failure is None:
            self.status("Uploading", "Uploading generated training model")
        artifacts: dict[str, Any] = {}
        try:
            artifacts = data.upload_training_outputs(job, [self.dir.host(h.name) for h in hosts])
            if job.get("CheckpointConfig", {}).get("S3Uri"):
                data.save_checkpoints(self.dir.host(hosts[0].name) / "checkpoints", job["CheckpointConfig"]["S3Uri"])
        except data.errors as exc:
            if failure is None:
                failure = f"ClientError: Could not upload the training output: {exc}"
        extractor = self._metrics(job)
        if extractor is not None:
            artifacts["FinalMetricDataList"] = extractor.final()
            data.publish_metrics(extractor.points, "/aws/sagemaker/TrainingJobs")
            experiment_tracking.record_points(self.region, job, extractor.points)
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            doc.update(artifacts)
            doc["TrainingEndTime"] = now
            doc["TrainingTimeInSeconds"] = doc["BillableTimeInSeconds"] = elapsed_seconds(
                doc.get("TrainingStartTime"), now)
            if failure is not None:
                doc["TrainingJobStatus"] = "Failed"
                doc["FailureReason"] = failure[:FAILURE_LIMIT]
                transition(doc, "Failed", "Training job failed", now)
            elif stopped:
                doc["TrainingJobStatus"] = "Stopped"
                if outcome.reason == "timeout":
                    transition(doc, "MaxRuntimeExceeded",
                               "Training job stopped because it exceeded MaxRuntimeInSeconds", now)
                else:
                    transition(doc, "Stopped", "Training job stopped", now)
            else:
                doc["TrainingJobStatus"] = "Completed"
                transition(doc, "Completed", "Training job completed", now)

        doc = self.record.edit(change)
        if doc:
            detail = (doc.get("FailureReason") or doc["SecondaryStatusTransitions"][-1]["StatusMessage"]).splitlines()
            log.info("training job %s: %s/%s - %s", self.name, doc["TrainingJobStatus"], doc["SecondaryStatus"],
                     detail[0] if detail else "")
