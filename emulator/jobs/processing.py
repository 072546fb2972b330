"""Processing jobs as real containers under SageMaker's processing contract (spec §5).

`ProcessingEngine` owns a thread per running job. A job: resolve the image, stage every S3 input
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

from peewee import OperationalError

from sagemaker_emulator import staging
from sagemaker_emulator.instance_types import size_of
from sagemaker_emulator.runtime import container_access, images
from sagemaker_emulator.runtime.docker_engine import ContainerSpec

from . import processing_config as pc
from .cluster import Cluster, Member, Outcome
from .data import JobData
from .engine import JobEngine, JobRun
from .logsink import LogSink
from .training import FAILURE_LIMIT, _last_lines
from .workdir import JobDir

log = logging.getLogger(__name__)

KIND = "processing-job"
STATUS = "ProcessingJobStatus"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
DEFAULT_MAX_RUNTIME = 86400
EXIT_MESSAGE_LIMIT = 1024
CONTINUOUS_UPLOAD_SECONDS = 3.0
SINK_ATTEMPTS = 10


class ProcessingEngine(JobEngine["ProcessingRun"]):
    """Runs processing jobs in background threads; the API handlers call submit/stop."""

    kind, status_field, noun = KIND, STATUS, "processing job"

    @property
    def run_class(self) -> type:
        return ProcessingRun


class ProcessingRun(JobRun):
    """One processing job's life, in its own thread."""

    def __init__(self, engine: ProcessingEngine, region: str, name: str) -> None:
        super().__init__(engine, region, name)
        self.config = engine.services.config
        self.dir = JobDir(self.config.data_dir, "processing", region, name)
        self.cluster: Cluster | None = None
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

    # -- the job --------------------------------------------------------------------------------
    def _run(self, adopt: dict | None) -> None:
        job = self.record.read()
        if job is None:
            return
        hosts = pc.hosts_of(job)
        data = JobData(self.engine.services, self.region)
        cluster: Cluster | None = None
        uploader_done = threading.Event()
        uploader: threading.Thread | None = None
        try:
            if adopt is None:
                self.dir.create()
                job = self.record.edit(lambda doc: doc.update(ProcessingStartTime=time.time())) or job
                log.info("processing job %s: InProgress - starting %d instance(s)", self.name, len(hosts))
                try:
                    image = self._resolve_image(job["AppSpecification"]["ImageUri"])
                except images.ImageUnavailable as exc:
                    self.fail(str(exc))
                    return
                feeders = self._stage(job, hosts, data)
                if feeders is None:
                    return
                cluster = self.cluster = self._cluster(job, hosts, image)
                for feeder in feeders:  # the FIFO must exist before the container looks for it
                    feeder.start()
                for feeder in feeders:
                    feeder.ready.wait(10)
                if self.stop_requested.is_set():  # stopped while staging: never start the containers
                    self._finish(job, hosts, data, Outcome("stopped"), cluster)
                    return
                cluster.start()
            else:
                cluster = self.cluster = self._cluster(job, hosts, job["AppSpecification"]["ImageUri"])
                cluster.adopt({h: adopt[h] for h in hosts if h in adopt},
                              _log_positions(self.region, self.name))
            if any(out["S3Output"]["S3UploadMode"] == "Continuous" for _, out in pc.s3_outputs(job)):
                uploader = threading.Thread(target=self._continuous, args=(job, hosts, data, uploader_done),
                                            name=f"processing-upload:{self.name}", daemon=True)
                uploader.start()
            max_runtime = (job.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
            deadline = job.get("ProcessingStartTime", time.time()) + max_runtime
            outcome = cluster.wait(self.stop_requested, deadline, self._grace)
            uploader_done.set()
            if uploader is not None:
                uploader.join(60)
            self._finish(job, hosts, data, outcome, cluster)
        finally:
            uploader_done.set()
            if cluster is not None:
                cluster.teardown()
            data.close()
            self.dir.remove()

    def _stage(self, job: dict[str, Any], hosts: list[str], data: JobData) -> list | None:
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

    def _cluster(self, job: dict[str, Any], hosts: list[str], image: str) -> Cluster:
        app = job["AppSpecification"]
        labels = {"sagemaker-emulator.kind": "processing", "sagemaker-emulator.resource": job["ProcessingJobArn"]}
        isolated = bool((job.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))
        network = f"sm-processing-{self.name}" if len(hosts) > 1 else None
        instance_type = job["ProcessingResources"]["ClusterConfig"]["InstanceType"]
        limits = size_of(instance_type) if self.config.limit_resources else None
        user_env = job.get("Environment") or {}
        access = {} if isolated else container_access.environment(self.config, self.region, user_env)
        env = {**access, **user_env}
        members = []
        for host in hosts:
            members.append(Member(
                host=host,
                spec=ContainerSpec(
                    image=image, command=app.get("ContainerArguments"), entrypoint=app.get("ContainerEntrypoint"),
                    environment=env, mounts=pc.mounts(job, self.dir.host(host)),
                    labels={**labels, "sagemaker-emulator.host": host},
                    name=f"sm-processing-{self.name}-{host}", hostname=host, network=network,
                    network_aliases=[host] if network else None,
                    network_disabled=isolated and network is None,
                    cpus=limits[0] if limits else None, memory_gib=limits[1] if limits else None),
                make_sink=self._sink_factory(host)))
        return Cluster(self.engine.runtime, members, labels, network_name=network, internal_network=isolated)

    def _sink_factory(self, host: str):
        def make(started: float) -> LogSink:
            stream = f"{self.name}/{host}-{int(started)}"
            for attempt in range(SINK_ATTEMPTS):
                try:
                    return LogSink(self.region, LOG_GROUP, stream)
                except OperationalError as exc:
                    # storage.logs creates a missing stream with a read-then-write transaction, which
                    # SQLite refuses at once ("database is locked") when another writer got in between
                    if "locked" not in str(exc) or attempt == SINK_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            raise AssertionError("unreachable")

        return make

    # -- outputs --------------------------------------------------------------------------------
    def _continuous(self, job: dict[str, Any], hosts: list[str], data: JobData, done: threading.Event) -> None:
        while not done.wait(CONTINUOUS_UPLOAD_SECONDS):
            try:
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

    def _finish(self, job: dict[str, Any], hosts: list[str], data: JobData, outcome: Outcome,
                cluster: Cluster) -> None:
        if self.shutdown_requested:  # the server is going away: no upload, just record why
            self.fail("InternalServerError: The emulator was shut down while the job was running.")
            return
        stopped = outcome.reason in ("stopped", "timeout")
        failure = None if stopped else _failure_reason(outcome, cluster)
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
        cluster.teardown()  # containers, network and logs are gone/complete before the job looks done
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


def _failure_reason(outcome: Outcome, cluster: Cluster) -> str | None:
    failed = outcome.failed_hosts
    if not failed:
        return None
    host = failed[0]
    tail = _last_lines(cluster, host)
    quoted = f", with the last log lines: {tail}" if tail else ""
    return f"AlgorithmError: The processing container on {host} exited with code {outcome.exit_codes[host]}{quoted}"


def _log_positions(region: str, name: str) -> dict[str, float]:
    from sagemaker_emulator.storage import logs

    return logs.last_event_times(region, LOG_GROUP, f"{name}/")
