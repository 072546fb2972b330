"""Training jobs as real containers under SageMaker's training contract (spec §2).

`TrainingEngine` owns a thread per running job. A job: resolve the image, stage every channel
for every host (File/FastFile download, Pipe FIFOs fed while the container reads), write the
three config files, run `algo-1..N` on a private network, capture logs and metrics, then upload
`model.tar.gz`/`output.tar.gz`/checkpoints and record the outcome. Stop requests and the runtime
limit become SIGTERM then SIGKILL after the grace period; artifacts are still uploaded.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sagemaker_emulator.instance_types import size_of
from sagemaker_emulator.runtime import container_access, framework_images, images
from sagemaker_emulator.runtime.docker_engine import ContainerSpec

from . import training_config as tc
from .cluster import Cluster, Member, Outcome
from .data import JobData
from .engine import JobEngine, JobRun
from .logsink import LogSink
from .metrics import MetricExtractor
from .records import elapsed_seconds, transition
from .workdir import JobDir

log = logging.getLogger(__name__)

KIND = "training-job"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FAILURE_LIMIT = 1024


class TrainingEngine(JobEngine["TrainingRun"]):
    """Runs training jobs in background threads; the API handlers call submit/stop."""

    kind, status_field, noun = KIND, "TrainingJobStatus", "training job"

    @property
    def run_class(self) -> type:
        return TrainingRun

    def mark_stopping(self, doc: dict[str, Any]) -> None:
        doc["TrainingJobStatus"] = "Stopping"
        transition(doc, "Stopping", "Stopping the training job")


class TrainingRun(JobRun):
    """One training job's life, in its own thread."""

    def __init__(self, engine: TrainingEngine, region: str, name: str) -> None:
        super().__init__(engine, region, name)
        config = engine.services.config
        self.config = config
        self.dir = JobDir(config.data_dir, "training", region, name)
        self.cluster: Cluster | None = None

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

    # -- the job --------------------------------------------------------------------------------
    def _run(self, adopt: dict | None) -> None:
        job = self.record.read()
        if job is None:
            return
        hosts = tc.hosts_of(job["ResourceConfig"])
        data = JobData(self.engine.services, self.region)
        cluster: Cluster | None = None
        try:
            if adopt is None:
                self.dir.create()
                self.status("Starting", "Preparing the instances for training", TrainingStartTime=time.time())
                try:
                    image = self._resolve_image(job["AlgorithmSpecification"]["TrainingImage"])
                except images.ImageUnavailable as exc:
                    self.fail(str(exc))
                    return
                self.status("Downloading", "Downloading input data")
                feeders = self._stage(job, hosts, data)
                if feeders is None:
                    return
                cluster = self._cluster(job, hosts, image)
                self.status("Training", "Training image download completed. Training in progress.")
                for feeder in feeders:  # <channel>_0 must exist before the algorithm looks for it
                    feeder.start()
                for feeder in feeders:
                    feeder.ready.wait(10)
                cluster.start()
            else:
                image = job["AlgorithmSpecification"]["TrainingImage"]
                cluster = self._cluster(job, hosts, image)
                cluster.adopt({h.name: adopt[h.name] for h in hosts if h.name in adopt}, self._log_positions(job))
            self.cluster = cluster
            deadline = job.get("TrainingStartTime", time.time()) + job["StoppingCondition"]["MaxRuntimeInSeconds"]
            outcome = cluster.wait(self.stop_requested, deadline, self._grace)
            self._finish(job, hosts, data, outcome, cluster)
        finally:
            if cluster is not None:
                cluster.teardown()
            data.close()
            self.dir.remove()

    def _stage(self, job: dict[str, Any], hosts: list[tc.Host], data: JobData) -> list | None:
        """Write config files and channel data for every host; returns Pipe-mode feeders to start."""
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

    def _cluster(self, job: dict[str, Any], hosts: list[tc.Host], image: str) -> Cluster:
        spec = job["AlgorithmSpecification"]
        isolated = bool(job.get("EnableNetworkIsolation"))
        user_env = job.get("Environment") or {}
        access = {} if isolated else container_access.environment(self.config, self.region, user_env)
        env = {**access, **user_env, "TRAINING_JOB_NAME": self.name, "TRAINING_JOB_ARN": job["TrainingJobArn"]}
        labels = {"sagemaker-emulator.kind": "training", "sagemaker-emulator.resource": job["TrainingJobArn"]}
        network = f"sm-training-{self.name}" if len(hosts) > 1 else None
        entrypoint = spec.get("ContainerEntrypoint")
        command = spec.get("ContainerArguments")
        if entrypoint is None and command is None:
            command = ["train"]
        checkpoint_path = (job.get("CheckpointConfig") or {}).get("LocalPath") or "/opt/ml/checkpoints"
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
            limits = size_of(host.instance_type) if self.config.limit_resources else None
            members.append(Member(
                host=host.name,
                spec=ContainerSpec(
                    image=image, command=command, entrypoint=entrypoint, environment=env,
                    mounts=mounts, labels={**labels, "sagemaker-emulator.host": host.name},
                    name=f"sm-training-{self.name}-{host.name}", hostname=host.name, network=network,
                    network_aliases=[host.name] if network else None,
                    network_disabled=isolated and network is None,
                    cpus=limits[0] if limits else None, memory_gib=limits[1] if limits else None),
                make_sink=self._sink_factory(job, host)))
        return Cluster(self.engine.runtime, members, labels, network_name=network, internal_network=isolated)

    def _image_observer(self) -> Any:
        from .image_progress import JobBuildObserver

        return JobBuildObserver(self.region, LOG_GROUP, f"{self.name}/algo-1",
                                lambda uri: self.status("Downloading", f"Building the local stand-in for {uri}"))

    def _sink_factory(self, job: dict[str, Any], host: tc.Host):
        extractor = self._metrics(job)

        def make(started: float) -> LogSink:
            stream = f"{self.name}/{host.name}-{int(started)}"
            hook = None
            if extractor is not None:
                dimension = f"{self.name}/{host.name}"
                hook = lambda ts, line: extractor.feed(line, ts, dimension)  # noqa: E731
            return LogSink(self.region, LOG_GROUP, stream, on_line=hook)

        return make

    def _metrics(self, job: dict[str, Any]) -> MetricExtractor | None:
        if not hasattr(self, "_extractor"):
            definitions = (job["AlgorithmSpecification"].get("MetricDefinitions") or []) + \
                framework_images.implied_metric_definitions(job["AlgorithmSpecification"].get("TrainingImage", ""),
                                                            job.get("HyperParameters") or {})
            self._extractor = MetricExtractor(definitions) if definitions else None
        return self._extractor

    def _log_positions(self, job: dict[str, Any]) -> dict[str, float]:
        from sagemaker_emulator.storage import logs

        return logs.last_event_times(self.region, LOG_GROUP, f"{self.name}/")

    def _finish(self, job: dict[str, Any], hosts: list[tc.Host], data: JobData, outcome: Outcome,
                cluster: Cluster) -> None:
        if self.shutdown_requested:  # the server is going away: no upload, just record why
            self.fail("InternalServerError: The emulator was shut down while the job was running.")
            return
        stopped = outcome.reason in ("stopped", "timeout")
        failure = None if stopped else self._failure_reason(hosts, outcome, cluster)
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

    def _failure_reason(self, hosts: list[tc.Host], outcome: Outcome, cluster: Cluster) -> str | None:
        failed = outcome.failed_hosts
        if not failed:
            return None
        for host in [h for h in hosts if h.name in failed] + hosts:
            failure_file = self.dir.host(host.name) / "output" / "failure"
            if failure_file.is_file():
                text = failure_file.read_text(errors="replace").strip()
                if text:
                    return f"AlgorithmError: {text}"
        host = failed[0]
        code = outcome.exit_codes[host]
        tail = _last_lines(cluster, host)
        quoted = f", with the last log lines: {tail}" if tail else ""
        return f"AlgorithmError: The training container on {host} exited with code {code}{quoted}"


def _last_lines(cluster: Cluster, host: str, count: int = 5) -> str:
    for member in cluster.members:
        if member.host == host and member.sink is not None:
            lines = member.sink.recent(count)
            return " | ".join(line.strip() for line in lines if line.strip())
    return ""

