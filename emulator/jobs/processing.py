"""Processing jobs as real containers under SageMaker's processing contract (spec §5).

`ProcessingEngine` owns a thread per running job; the run is the cluster skeleton of `JobRun`
(jobs/engine.py). A job: resolve the image, stage every S3 input
for every host (File mode downloaded, Pipe mode fed through FIFOs), create the output directories,
write `/opt/ml/config/{processingjobconfig,resourceconfig}.json`, run `algo-1..N` (on a private
network when N > 1) with the image's own entrypoint or the requested one, and no `train`/`serve`
argument. `Continuous` outputs are synced to S3 every few seconds while the job runs; every output
is uploaded when the containers end (also after a stop). Stop requests and the runtime limit
become SIGTERM then SIGKILL after the grace period, exactly as for training (`Cluster.wait`).
"""

from __future__ import annotations

import codecs
import json
import logging
import threading
import time
from typing import Any

from sagemaker_emulator import staging

from . import processing_config as pc
from .cluster import Cluster, Member, Outcome
from .data import JobData
from .engine import FAILURE_LIMIT, SHUTDOWN_REASON, JobEngine, JobRun

log = logging.getLogger(__name__)

KIND = "processing-job"
STATUS = "ProcessingJobStatus"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
DEFAULT_MAX_RUNTIME = 86400
EXIT_MESSAGE_LIMIT = 1024
CONTINUOUS_UPLOAD_SECONDS = 3.0


class ProcessingEngine(JobEngine["ProcessingRun"]):
    """Runs processing jobs in background threads; the API handlers call submit/stop."""

    kind, status_field, noun, folder = KIND, STATUS, "processing job", "processing"

    @property
    def run_class(self) -> type:
        return ProcessingRun


class ProcessingRun(JobRun):
    """One processing job's life, in its own thread."""

    log_group, container_noun = LOG_GROUP, "processing"

    def __init__(self, engine: ProcessingEngine, region: str, name: str) -> None:
        super().__init__(engine, region, name)
        self._upload_lock = threading.Lock()
        self._sync_states: dict[tuple[str, int], staging.SyncState] = {}

    def fail(self, reason: str) -> None:
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            doc[STATUS] = "Failed"
            doc["FailureReason"] = reason[:FAILURE_LIMIT]
            doc["ProcessingEndTime"] = now

        self.record.edit(change)
        log.info("processing job %s: Failed - %s", self.name, reason.splitlines()[0] if reason else "")

    # -- the job (JobRun.run_cluster's steps) ---------------------------------------------------
    def _run(self, adopt: dict | None) -> None:
        self.run_cluster(adopt)

    def hosts(self, job: dict[str, Any]) -> list[str]:
        return pc.hosts_of(job)

    def image_of(self, job: dict[str, Any]) -> str:
        return job["AppSpecification"]["ImageUri"]

    def labels(self, job: dict[str, Any]) -> dict[str, str]:
        return {"sagemaker-emulator.kind": "processing", "sagemaker-emulator.resource": job["ProcessingJobArn"]}

    def isolated(self, job: dict[str, Any]) -> bool:
        return bool((job.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))

    def deadline(self, job: dict[str, Any]) -> float:
        max_runtime = (job.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
        return job.get("ProcessingStartTime", time.time()) + max_runtime

    def begin(self, job: dict[str, Any]) -> dict[str, Any] | None:
        job = self.record.edit(lambda doc: doc.update(ProcessingStartTime=time.time())) or job
        log.info("processing job %s: InProgress - starting %d instance(s)", self.name, len(pc.hosts_of(job)))
        return job

    def stage(self, job: dict[str, Any], hosts: list[str], data: JobData) -> list | None:
        """Config files, output directories and input data of every host; returns Pipe feeders to start."""
        cluster = job["ProcessingResources"]["ClusterConfig"]
        job_config = json.dumps(pc.processing_job_config(job), indent=1)
        for host in hosts:
            root = self.dir.host(host)
            (root / "config").mkdir(parents=True, exist_ok=True)
            (root / "config" / "processingjobconfig.json").write_text(job_config)
            (root / "config" / "resourceconfig.json").write_text(
                json.dumps(pc.resource_config(host, hosts, cluster["InstanceType"])))
            (root / "output").mkdir(parents=True, exist_ok=True)
            for index, _ in pc.s3_outputs(job):
                pc.output_dir(root, index).mkdir(parents=True, exist_ok=True)
            for index, _ in pc.s3_inputs(job):
                pc.input_dir(root, index).mkdir(parents=True, exist_ok=True)
        for _, item in pc.s3_inputs(job):
            if item["S3Input"].get("S3InputMode") == "Pipe" and self.refuse_pipe(f"input '{item['InputName']}'"):
                return None
        feeders = []
        for index, item in pc.s3_inputs(job):
            s3 = item["S3Input"]
            mode = s3.get("S3InputMode", "File")
            source = {"S3Uri": s3["S3Uri"], "S3DataType": s3["S3DataType"],
                      "S3DataDistributionType": s3.get("S3DataDistributionType", "FullyReplicated")}
            try:
                for host_index, host in enumerate(hosts):
                    root = self.dir.host(host)
                    if mode == "Pipe":  # FIFOs <InputName>_<epoch> inside LocalPath
                        channel = {"ChannelName": item["InputName"], "DataSource": {"S3DataSource": source},
                                   "CompressionType": s3.get("S3CompressionType", "None")}
                        feeder = data.stage_channel(channel, "Pipe", pc.input_dir(root, index), host_index,
                                                    len(hosts), self.stop_requested)
                        if feeder is not None:
                            feeders.append(feeder)
                    else:  # downloaded into inputs/<index>, the directory mounted at LocalPath
                        channel = {"ChannelName": str(index), "DataSource": {"S3DataSource": source}}
                        data.stage_channel(channel, "File", root / "inputs", host_index, len(hosts),
                                           self.stop_requested)
            except data.errors as exc:
                self.fail(f"ClientError: Input '{item['InputName']}': {exc}")
                return None
        return feeders

    def members(self, job: dict[str, Any], hosts: list[str], image: str, network: str | None) -> list[Member]:
        app = job["AppSpecification"]
        instance_type = job["ProcessingResources"]["ClusterConfig"]["InstanceType"]
        outputs = [pc.OUTPUT_DIR] + [item["S3Output"]["LocalPath"] for _, item in pc.s3_outputs(job)]
        return [Member(
            host=host,
            spec=self.container_spec(job, host, image, network, mounts=pc.mounts(job, self.dir.host(host)),
                                     environment=job.get("Environment") or {}, command=app.get("ContainerArguments"),
                                     entrypoint=app.get("ContainerEntrypoint"), instance_type=instance_type),
            make_sink=self.sink_factory(host), outputs=outputs) for host in hosts]

    def while_running(self, job: dict[str, Any], hosts: list[str], data: JobData,
                      done: threading.Event) -> threading.Thread | None:
        if not any(out["S3Output"]["S3UploadMode"] == "Continuous" for _, out in pc.s3_outputs(job)):
            return None
        uploader = threading.Thread(target=self._continuous, args=(job, hosts, data, done),
                                    name=f"processing-upload:{self.name}", daemon=True)
        uploader.start()
        return uploader

    # -- outputs --------------------------------------------------------------------------------
    def _continuous(self, job: dict[str, Any], hosts: list[str], data: JobData, done: threading.Event) -> None:
        paths = [item["S3Output"]["LocalPath"] for _, item in pc.s3_outputs(job)
                 if item["S3Output"]["S3UploadMode"] == "Continuous"]
        while not done.wait(CONTINUOUS_UPLOAD_SECONDS):
            try:
                if self.cluster is not None:  # copy workspace: read them out of the running containers first
                    self.cluster.collect(lambda member: paths)
                self._upload(job, hosts, data, continuous_only=True)
            except Exception as exc:  # retried next round; the final upload reports for good
                log.warning("processing job %s: continuous upload failed: %s", self.name, exc)

    def _upload(self, job: dict[str, Any], hosts: list[str], data: JobData, continuous_only: bool) -> None:
        """Every host's output directories to their S3Uri (no job-name suffix; later hosts win on clashes)."""
        with self._upload_lock:
            for index, item in pc.s3_outputs(job):
                output = item["S3Output"]
                continuous = output["S3UploadMode"] == "Continuous"
                if continuous_only and not continuous:
                    continue
                for host in hosts:
                    src = pc.output_dir(self.dir.root / host, index)
                    if continuous:
                        state = self._sync_states.setdefault((host, index), staging.SyncState())
                        staging.sync_dir(data.store, src, output["S3Uri"], delete=False, state=state)
                    else:
                        staging.upload_dir(data.store, src, output["S3Uri"])

    def _exit_message(self, hosts: list[str]) -> tuple[str | None, str | None]:
        """(ExitMessage, failure) from /opt/ml/output/message of every host, concatenated in host order."""
        text = ""
        for host in hosts:
            path = self.dir.root / host / "output" / "message"
            if not path.is_file() or path.is_symlink():
                continue
            with open(path, "rb") as handle:
                raw = handle.read(4 * EXIT_MESSAGE_LIMIT)
            try:  # a character cut by our read limit is fine; invalid UTF-8 is not
                text += codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
            except UnicodeDecodeError:
                return None, f"ClientError: /opt/ml/output/message of {host} is not valid UTF-8."
        return (text[:EXIT_MESSAGE_LIMIT] or None), None

    def finish(self, job: dict[str, Any], hosts: list[str], data: JobData, outcome: Outcome,
                cluster: Cluster | None) -> None:
        if self.shutdown_requested:  # the server is going away: no upload, just record why
            self.fail(SHUTDOWN_REASON)
            return
        stopped = outcome.reason in ("stopped", "timeout")
        failure = None if stopped or cluster is None else self.failure_reason(hosts, outcome, cluster)
        if failure is None and not stopped and data.feeder_errors():
            failure = "ClientError: " + "; ".join(data.feeder_errors())
        message, message_failure = self._exit_message(hosts)
        if failure is None and message_failure is not None:
            failure = message_failure
        try:
            self._upload(job, hosts, data, continuous_only=False)
        except data.errors as exc:
            if failure is None:
                failure = f"ClientError: Could not upload the processing output: {exc}"
        if cluster is not None:  # containers, network and logs are gone/complete before the job looks done
            cluster.teardown()
        self.dir.remove()
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            doc["ProcessingEndTime"] = now
            if message is not None:
                doc["ExitMessage"] = message
            if failure is not None:
                doc[STATUS] = "Failed"
                doc["FailureReason"] = failure[:FAILURE_LIMIT]
            elif stopped:
                doc[STATUS] = "Stopped"
            else:
                doc[STATUS] = "Completed"

        doc = self.record.edit(change)
        if doc:
            log.info("processing job %s: %s%s", self.name, doc[STATUS],
                     f" - {doc['FailureReason'].splitlines()[0]}" if doc.get("FailureReason") else "")
