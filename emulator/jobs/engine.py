"""What every job engine (training, processing, transform) shares: the registry of running jobs
and the life of one job (`JobRun`).

An engine keeps one run object per running job (each in its own thread), moves a job to
Stopping and signals its run on Stop*, fails or re-attaches interrupted jobs after a restart,
and on server shutdown stops every run (cutting a SIGTERM grace period short) so no container
outlives the server.

A run of a job on `algo-1..N` containers (training, processing) is one skeleton, `JobRun.run_cluster`:
resolve the image, stage each host's directory tree, build the container specs, start the cluster
through the workspace (feeders first), follow logs into CloudWatch, wait for exit / stop / the
runtime limit, bring the outputs back from the containers, then let the job kind record its result.
Failure reasons come from the failure file or the failed host's last log lines (`failure_reason`).
Batch transform runs serving containers instead of a cluster, and shares the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Generic, TypeVar

from sagemaker_emulator.instance_types import size_of
from sagemaker_emulator.runtime import container_access, images
from sagemaker_emulator.runtime.interface import ContainerRuntime, ContainerSpec, ContainerStartError
from sagemaker_emulator.runtime.workspace import Workspace

from .cluster import Cluster, Member, Outcome
from .data import JobData
from .logsink import LogSink, open_sink
from .records import JobRecord
from .workdir import JobDir

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
RESTART_REASON = ("InternalServerError: The emulator restarted while the job was running and its containers no "
                  "longer exist.")
SHUTDOWN_REASON = "InternalServerError: The emulator was shut down while the job was running."
FAILURE_LIMIT = 1024  # FailureReason's length on AWS

Run = TypeVar("Run")


class JobEngine(Generic[Run]):
    """Subclasses set `kind`, `status_field`, `noun`, `folder` (of jobs/<folder>/ in the data dir) and
    `run_class` (taking (engine, region, name))."""

    kind = ""
    status_field = ""
    noun = "job"
    folder = ""
    run_class: Any = None

    def __init__(self, services: Any) -> None:
        self.services = services
        self._runs: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def runtime(self) -> ContainerRuntime:
        return self.services.runtime

    @property
    def workspace(self) -> Workspace:
        return self.services.workspace

    def submit(self, region: str, name: str) -> None:
        run = self.run_class(self, region, name)
        with self._lock:
            self._runs[(region, name)] = run
        run.start()

    def mark_stopping(self, doc: dict[str, Any]) -> None:
        """InProgress -> Stopping (training also records a secondary status)."""
        doc[self.status_field] = "Stopping"

    def stop(self, region: str, name: str) -> None:
        def stopping(doc: dict[str, Any]) -> None:
            if doc[self.status_field] == "InProgress":
                self.mark_stopping(doc)

        JobRecord(self.kind, region, name, self.status_field, self.services.events).edit(stopping)
        with self._lock:
            run = self._runs.get((region, name))
        if run is not None:
            run.request_stop()

    def finished(self, run: Any) -> None:
        with self._lock:
            self._runs.pop((run.region, run.name), None)

    def running(self) -> list[Any]:
        with self._lock:
            return list(self._runs.values())

    def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Server shutdown: stop every running job's containers (no orphans); the runs fail the jobs."""
        runs = self.running()
        for run in runs:
            run.shutdown_requested = True
            run.request_stop()
        # a stop already under way may be waiting out the full grace period: cut it short
        hurry = [threading.Thread(target=run.cluster.stop_all, args=(grace,), daemon=True)
                 for run in runs if getattr(run, "cluster", None) is not None]
        for thread in hurry:
            thread.start()
        for run in runs:
            run.join(grace + 30)

    def recover(self) -> None:
        """After a restart: re-attach jobs whose containers still run, fail the others."""
        from sagemaker_emulator.storage import resources

        for row in resources.all_with_status(self.kind, ("InProgress", "Stopping")):
            run = self.run_class(self, row.region, row.name)
            handles = self.runtime.find_containers({"sagemaker-emulator.resource": row.arn})
            if handles:
                log.info("%s %s: re-attaching %d running container(s)", self.noun, row.name, len(handles))
                with self._lock:
                    self._runs[(row.region, row.name)] = run
                run.start(adopt=handles)
            else:
                run.fail(RESTART_REASON)
                run.dir.remove()


class JobRun:
    """One job's life in its own thread: what training, processing and transform runs share.

    Subclasses implement `_run(adopt)` (adopt: containers a previous server process started, to
    re-attach; cluster jobs call `run_cluster`) and `fail(reason)`; any error of ours fails the job
    instead of leaving it InProgress.

    Cluster jobs set `log_group` and `container_noun`, and implement `hosts`, `image_of`, `begin`,
    `stage`, `members`, `outputs`, `deadline` and `finish`; `failure_file` (relative to a host's
    directory) names the file whose text becomes the FailureReason.
    """

    noun = "job"
    log_group = ""
    container_noun = "job"
    failure_file: str | None = None

    def __init__(self, engine: JobEngine, region: str, name: str) -> None:
        self.engine = engine
        self.region, self.name = region, name
        self.record = JobRecord(engine.kind, region, name, engine.status_field, engine.services.events)
        self.stop_requested = threading.Event()
        self.shutdown_requested = False
        self.config = engine.services.config
        self.dir = JobDir(self.config.data_dir, engine.folder, region, name)
        self.cluster: Cluster | None = None
        self._thread: threading.Thread | None = None

    @property
    def workspace(self) -> Workspace:
        return self.engine.workspace

    def _grace(self) -> float:
        """SIGTERM->SIGKILL grace: AWS's (configurable), but short when the server shuts down."""
        return min(SHUTDOWN_GRACE, self.config.stop_grace_seconds) if self.shutdown_requested \
            else self.config.stop_grace_seconds

    def _resolve_image(self, image: str) -> str:
        """The local image for `image` (runtime.images; AWS's framework images get a stand-in, built on
        first use within the job's stopping condition); ImageUnavailable says how to get one."""
        from sagemaker_emulator.runtime import framework_images

        runtime = self.engine.runtime
        pull = (lambda name: runtime.pull(name, timeout=60)) if self.config.pull_images else None
        observer = self._image_observer()
        try:
            return framework_images.resolve(image, self.config.image_map, runtime, pull, observer=observer,
                                            deadline=self._image_deadline(), cancel=self.stop_requested).local
        finally:
            if observer is not None:
                observer.close()

    def _image_observer(self) -> Any:
        """Who hears about a stand-in build (None: the server log); training also shows it in the job."""
        return None

    def _image_deadline(self) -> float | None:
        from .image_progress import stopping_deadline

        return stopping_deadline(self.record.read())

    def start(self, adopt: dict | None = None) -> None:
        self._thread = threading.Thread(target=self._main, args=(adopt,), name=f"{self.engine.kind}:{self.name}",
                                        daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def request_stop(self) -> None:
        self.stop_requested.set()

    def _main(self, adopt: dict | None) -> None:
        try:
            self._run(adopt)
        except ContainerStartError as exc:
            self.fail(f"ClientError: {exc}")
        except Exception as exc:  # never leave a job InProgress because of a bug of ours
            log.exception("%s %s failed inside the emulator", self.engine.noun, self.name)
            self.fail(f"InternalServerError: {exc}")
        finally:
            self.engine.finished(self)

    def _run(self, adopt: dict | None) -> None:
        raise NotImplementedError

    def fail(self, reason: str) -> None:
        raise NotImplementedError

    # -- the cluster skeleton (training, processing) --------------------------------------------
    def run_cluster(self, adopt: dict | None) -> None:
        job = self.record.read()
        if job is None:
            return
        hosts = self.hosts(job)
        data = JobData(self.engine.services, self.region)
        cluster: Cluster | None = None
        done = threading.Event()
        helper: threading.Thread | None = None
        try:
            if adopt is None:
                self.dir.create()
                job = self.begin(job) or job
                try:
                    image = self._resolve_image(self.image_of(job))
                except images.ImageUnavailable as exc:
                    ended = self._build_wait_ended(job)
                    if ended is None:
                        self.fail(str(exc))
                    else:
                        log.info("%s %s: %s", self.engine.noun, self.name, exc)
                        self.finish(job, hosts, data, Outcome(ended), None)
                    return
                feeders = self.stage(job, hosts, data)
                if feeders is None:
                    return
                cluster = self.cluster = self.make_cluster(job, hosts, image)
                self.launching(job)
                for feeder in feeders:  # a FIFO must exist before the container looks for it
                    feeder.start()
                for feeder in feeders:
                    feeder.ready.wait(10)
                if self.stop_requested.is_set():  # stopped while staging: never start the containers
                    self.finish(job, hosts, data, Outcome("stopped"), cluster)
                    return
                cluster.start()
            else:
                cluster = self.cluster = self.make_cluster(job, hosts, self.image_of(job))
                cluster.adopt({n: adopt[n] for n in map(host_name, hosts) if n in adopt}, self.log_positions())
            helper = self.while_running(job, hosts, data, done)
            outcome = cluster.wait(self.stop_requested, self.deadline(job), self._grace)
            done.set()
            if helper is not None:
                helper.join(60)
            if not self.shutdown_requested:
                cluster.collect()
            self.finish(job, hosts, data, outcome, cluster)
        finally:
            done.set()
            if cluster is not None:
                cluster.teardown()
            data.close()
            self.dir.remove()

    def _build_wait_ended(self, job: dict[str, Any]) -> str | None:
        """Why the wait for a stand-in build ended without an image, when the job itself ended it: "stopped"
        (a stop request) or "timeout" (MaxRuntimeInSeconds ran out: as on AWS, the runtime counts from the
        job's start, image download included); None when the build failed."""
        if self.stop_requested.is_set():
            return "stopped"
        deadline = self.deadline(self.record.read() or job)  # the record has the start time begin() wrote
        if deadline is not None and time.time() >= deadline:
            return "timeout"
        return None

    def hosts(self, job: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    def image_of(self, job: dict[str, Any]) -> str:
        raise NotImplementedError

    def begin(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The job starts (before staging): record it; may return the updated document."""
        return None

    def launching(self, job: dict[str, Any]) -> None:
        """Staged: the containers start next."""

    def stage(self, job: dict[str, Any], hosts: list[Any], data: JobData) -> list | None:
        """Every host's directory tree; returns Pipe feeders to start, or None after failing the job."""
        raise NotImplementedError

    def members(self, job: dict[str, Any], hosts: list[Any], image: str, network: str | None) -> list[Member]:
        raise NotImplementedError

    def labels(self, job: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError

    def isolated(self, job: dict[str, Any]) -> bool:
        return False

    def deadline(self, job: dict[str, Any]) -> float | None:
        raise NotImplementedError

    def while_running(self, job: dict[str, Any], hosts: list[Any], data: JobData,
                      done: threading.Event) -> threading.Thread | None:
        """Background work while the containers run (processing's Continuous uploads)."""
        return None

    def finish(self, job: dict[str, Any], hosts: list[Any], data: JobData, outcome: Outcome,
               cluster: Cluster | None) -> None:
        raise NotImplementedError

    def make_cluster(self, job: dict[str, Any], hosts: list[Any], image: str) -> Cluster:
        network = f"sm-{self.engine.folder}-{self.name}" if len(hosts) > 1 else None
        return Cluster(self.engine.runtime, self.members(job, hosts, image, network), self.labels(job),
                       network_name=network, internal_network=self.isolated(job), workspace=self.workspace)

    def container_spec(self, job: dict[str, Any], host: str, image: str, network: str | None, *,
                       mounts: dict[str, tuple[str, str]], environment: dict[str, str],
                       command: list[str] | None, entrypoint: list[str] | None, instance_type: str) -> ContainerSpec:
        """One host's container: its name and hostname, the private network, the job's labels, the
        emulator's AWS endpoint (unless isolated) under the user's environment, and resource limits."""
        isolated = self.isolated(job)
        access = {} if isolated else container_access.environment(self.config, self.region, environment)
        limits = size_of(instance_type) if self.config.limit_resources else None
        return ContainerSpec(
            image=image, command=command, entrypoint=entrypoint, environment={**access, **environment},
            mounts=mounts, labels={**self.labels(job), "sagemaker-emulator.host": host},
            name=f"sm-{self.engine.folder}-{self.name}-{host}", hostname=host, network=network,
            network_aliases=[host] if network else None, network_disabled=isolated and network is None,
            cpus=limits[0] if limits else None, memory_gib=limits[1] if limits else None)

    def sink_factory(self, host: str, on_line: Any = None):
        """Makes the host's log stream `<job>/<host>-<start time>` when its container starts."""
        def make(started: float) -> LogSink:
            return open_sink(self.region, self.log_group, f"{self.name}/{host}-{int(started)}", on_line=on_line)

        return make

    def log_positions(self) -> dict[str, float]:
        """Where each host's log stream ended (re-adoption follows the logs from there)."""
        from sagemaker_emulator.storage import logs

        return logs.last_event_times(self.region, self.log_group, f"{self.name}/")

    def refuse_pipe(self, what: str) -> bool:
        """Pipe mode where the workspace cannot feed FIFOs: fail the job (True) with its reason."""
        reason = self.workspace.refusal("Pipe")
        if reason is not None:
            self.fail(f"{reason} ({what})")
            return True
        return False

    def failure_reason(self, hosts: list[Any], outcome: Outcome, cluster: Cluster) -> str | None:
        """AlgorithmError from a failed host's failure file, else its exit code and last log lines."""
        failed = outcome.failed_hosts
        if not failed:
            return None
        if self.failure_file:
            names = list(map(host_name, hosts))
            for host in [h for h in names if h in failed] + names:
                path = self.dir.root / host / self.failure_file
                if path.is_file() and not path.is_symlink():
                    text = path.read_text(errors="replace").strip()
                    if text:
                        return f"AlgorithmError: {text}"
        host = failed[0]
        tail = cluster.last_lines(host)
        quoted = f", with the last log lines: {tail}" if tail else ""
        return (f"AlgorithmError: The {self.container_noun} container on {host} exited with code "
                f"{outcome.exit_codes[host]}{quoted}")


def host_name(host: Any) -> str:
    """Hosts are names (processing) or training_config.Host objects."""
    return host if isinstance(host, str) else host.name

