"""What every job engine (training, processing, transform) shares: the registry of running jobs.

An engine keeps one run object per running job (each in its own thread), moves a job to
Stopping and signals its run on Stop*, fails or re-attaches interrupted jobs after a restart,
and on server shutdown stops every run (cutting a SIGTERM grace period short) so no container
outlives the server.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Generic, TypeVar

from .records import JobRecord

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
RESTART_REASON = ("InternalServerError: The emulator restarted while the job was running and its containers no "
                  "longer exist.")

Run = TypeVar("Run")


class JobEngine(Generic[Run]):
    """Subclasses set `kind`, `status_field`, `noun` and `run_class` (taking (engine, region, name))."""

    kind = ""
    status_field = ""
    noun = "job"
    run_class: Any = None

    def __init__(self, services: Any) -> None:
        self.services = services
        self._runs: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def runtime(self):
        return self.services.runtime

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

        JobRecord(self.kind, region, name, self.status_field).edit(stopping)
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
    re-attach) and `fail(reason)`; any error of ours fails the job instead of leaving it InProgress.
    """

    noun = "job"

    def __init__(self, engine: JobEngine, region: str, name: str) -> None:
        self.engine = engine
        self.region, self.name = region, name
        self.record = JobRecord(engine.kind, region, name, engine.status_field)
        self.stop_requested = threading.Event()
        self.shutdown_requested = False
        self.config = engine.services.config
        self._thread: threading.Thread | None = None

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
        from sagemaker_emulator.runtime.docker_engine import ContainerStartError

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
