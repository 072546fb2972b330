"""Batch transform jobs on the model's real serving containers (spec §4).

`TransformEngine` owns a thread per running job. A job: list the input objects, prepare the model
(`serving.ModelFleet`: images, model data), start `InstanceCount` instances with `serve` and the
batch environment, wait for `/ping`, ask `GET /execution-parameters`, then deal the objects
round-robin to the instances. Each instance transforms its objects one after the other: records
are split and packed into requests, up to MaxConcurrentTransforms requests are in flight, replies
are written in input order to a scratch file that becomes `<S3OutputPath>/<relative key>.out` once
the whole object succeeded. The first failing object fails the job (outputs already written stay);
a stop abandons the objects in progress. Containers and scratch files are removed before the job
reaches its final status. After a kill -9 the job resumes on new containers with the objects whose
output it had not committed (resume.py).
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sagemaker_emulator import staging
from sagemaker_emulator.hosting.fleet import ContainerReplyError, ModelFleet, ServingError, ServingInstance, post
from sagemaker_emulator.jobs.data import JobData
from sagemaker_emulator.jobs.engine import FAILURE_LIMIT, SHUTDOWN_REASON, JobEngine, JobRun
from sagemaker_emulator.jobs.logsink import LogSink, open_sink
from sagemaker_emulator.jobs.workdir import JobDir
from sagemaker_emulator.storage import resources

from . import records as rec
from . import resume
from .jsonpath import DataProcessor, FilterError
from .settings import Settings, batch_environment, effective_settings

log = logging.getLogger(__name__)

KIND = "transform-job"
STATUS = "TransformJobStatus"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
HEALTH_TIMEOUT = 240  # as endpoints without ContainerStartupHealthCheckTimeoutInSeconds (docs/decisions.md)
DEFAULT_INVOCATION_TIMEOUT = 600
TEARDOWN_GRACE = 2  # SIGTERM -> SIGKILL when a job's containers go
DEFAULT_MAX_RETRIES = 3


class ObjectFailed(Exception):
    """One input object could not be transformed; the message is the job's FailureReason."""


class Halted(Exception):
    """The job was stopped (or another object failed) while this object was in progress."""


def object_name(uri: str) -> str:
    """How the data log names an object: `bucket/key` (or the file path)."""
    return uri.split("://", 1)[-1]


class TransformEngine(JobEngine["TransformRun"]):
    """Runs transform jobs in background threads; the API handlers call submit/stop."""

    kind, status_field, noun, folder = KIND, STATUS, "transform job", "transform"

    @property
    def run_class(self) -> type:
        return TransformRun

    def recover(self) -> None:
        """After a restart (resume.py): every interrupted job loses its old containers; an InProgress one
        starts again on fresh ones with the objects it had not finished, a Stopping one ends Stopped."""
        for row in resources.all_with_status(KIND, ("InProgress", "Stopping")):
            try:
                resume.remove_leftovers(self.services.runtime, row.arn)
            except Exception:
                log.exception("transform job %s: could not remove its containers", row.name)
            JobDir(self.services.config.data_dir, self.folder, row.region, row.name).remove()
            run = TransformRun(self, row.region, row.name)
            if row.status == "Stopping":
                run.finish_job("Stopped", None)
                continue
            log.info("transform job %s: resuming after a restart", row.name)
            run.resuming = True
            with self._lock:
                self._runs[(row.region, row.name)] = run
            run.start()


class TransformRun(JobRun):
    """One transform job's life, in its own thread."""

    def __init__(self, engine: TransformEngine, region: str, name: str) -> None:
        super().__init__(engine, region, name)
        self.services = engine.services
        self.halt = threading.Event()  # stop requested, or an object failed: no new requests
        self.failure: str | None = None
        self._failure_lock = threading.Lock()
        self.fleet: ModelFleet | None = None
        self.instances: list[ServingInstance] = []
        self._teardown_lock = threading.Lock()
        self.resuming = False  # started again after a restart: objects already transformed are skipped

    # -- thread control -------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop_requested.set()
        self.halt.set()

    def _run(self, adopt: dict | None) -> None:
        """JobRun._main's step (which fails the job on errors of ours). A transform never re-attaches to
        containers: after a restart it resumes on new ones (see recover). The containers and scratch files
        go before the job reaches its final status."""
        try:
            status, reason = self._transform()
        finally:
            self._teardown()
            self.dir.remove()
        if self.shutdown_requested:
            status, reason = "Failed", SHUTDOWN_REASON
        elif self.stop_requested.is_set() and status != "Failed":
            status, reason = "Stopped", None
        self.finish_job(status, reason)

    def fail(self, reason: str) -> None:
        self.finish_job("Failed", reason)

    def finish_job(self, status: str, reason: str | None) -> None:
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            doc[STATUS] = status
            doc["TransformEndTime"] = now
            doc.setdefault("TransformStartTime", now)
            if reason:
                doc["FailureReason"] = reason[:FAILURE_LIMIT]

        self.record.edit(change)
        log.info("transform job %s: %s%s", self.name, status, f" - {reason.splitlines()[0]}" if reason else "")

    def _fail_object(self, reason: str) -> None:
        with self._failure_lock:
            if self.failure is None and not self.stop_requested.is_set():
                self.failure = reason
        self.halt.set()

    # -- the job --------------------------------------------------------------------------------
    def _transform(self) -> tuple[str, str | None]:
        job = self.record.read()
        if job is None:
            return "Failed", "InternalServerError: the job record vanished"
        # kept when resuming: the job started before the restart, and its outputs are told by this time
        job = self.record.edit(lambda doc: doc.setdefault("TransformStartTime", time.time())) or job
        log.info("transform job %s: InProgress - %d instance(s) of model %s", self.name,
                 job["TransformResources"]["InstanceCount"], job["ModelName"])
        model = resources.get("model", self.region, job["ModelName"])
        if model is None:
            return "Failed", f"ClientError: Model {job['ModelName']} no longer exists."
        source = job["TransformInput"]["DataSource"]["S3DataSource"]
        output = job["TransformOutput"]
        try:
            processor = DataProcessor(job.get("DataProcessing"), job["TransformInput"].get("ContentType"),
                                      output.get("Accept"), job["TransformInput"].get("SplitType", "None"))
        except FilterError as exc:
            return "Failed", f"ClientError: DataProcessing: {exc}"
        store = JobData(self.services, self.region).store
        try:
            objects = staging.resolve_source(store, source["S3Uri"], source["S3DataType"])
        except staging.StagingError as exc:
            return "Failed", f"ClientError: {exc}"
        total = len(objects)
        if self.resuming:
            done = resume.committed(store, output["S3OutputPath"], objects, job["TransformStartTime"])
            objects = [obj for obj in objects if obj.uri not in done]
            log.info("transform job %s: %d of %d object(s) were transformed before the restart", self.name,
                     total - len(objects), total)
            if not objects:
                return "Completed", None
        self.dir.create()
        labels = {"sagemaker-emulator.kind": "transform", "sagemaker-emulator.resource": job["TransformJobArn"]}
        fleet = ModelFleet(self.services, self.region, model.document, self.dir.root / "model", labels,
                           batch_environment(job))
        self.fleet = fleet
        try:
            fleet.prepare(self.halt)
            started = int(time.time())
            pipeline = len(fleet.containers) > 1

            def stream_for(instance_id: str, container: str) -> str:
                stream = f"{self.name}/{instance_id}-{started}"
                return f"{stream}/{container}" if pipeline else stream

            count = job["TransformResources"]["InstanceCount"]
            for _ in range(count):
                if self.halt.is_set():
                    return "Stopped", None
                with self._teardown_lock:
                    self.instances.append(fleet.start_instance(LOG_GROUP, stream_for, host_label=f"{self.name}/"))
            self._wait_healthy(fleet)
        except ServingError as exc:
            if self.halt.is_set():
                return "Stopped", None
            return "Failed", str(exc)
        if self.halt.is_set():
            return "Stopped", None
        settings = effective_settings(job, self._execution_parameters(self.instances[0]))
        shares = [staging.shard(objects, i, len(self.instances), staging.SHARDED_BY_S3_KEY)
                  for i in range(len(self.instances))]
        workers = []
        for instance, share in zip(self.instances, shares, strict=True):
            data_log = open_sink(self.region, LOG_GROUP, f"{self.name}/{instance.instance_id}-{started}/data-log")
            if self.resuming:
                self._note(data_log, f"Resumed after an emulator restart: {total - len(objects)} of {total} "
                                     "object(s) were already transformed")
            worker = threading.Thread(target=self._instance_worker,
                                      args=(job, fleet, instance, share, settings, processor, store, data_log),
                                      name=f"transform:{self.name}:{instance.instance_id}", daemon=True)
            worker.start()
            workers.append((worker, data_log))
        for worker, _ in workers:
            while worker.is_alive():
                worker.join(0.2)
                if self.stop_requested.is_set():  # abandon requests in flight: the containers go now
                    self._teardown()
        for _, data_log in workers:
            data_log.close()
        if self.failure:
            return "Failed", self.failure
        return "Completed", None

    def _wait_healthy(self, fleet: ModelFleet) -> None:
        errors: list[str] = []

        def check(instance: ServingInstance) -> None:
            try:
                fleet.wait_healthy(instance, HEALTH_TIMEOUT, f"transform job {self.name}")
            except ServingError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=check, args=(i,), daemon=True) for i in self.instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
                if self.halt.is_set():
                    self._teardown()  # the checks then end at once (their containers are gone)
        if errors and not self.halt.is_set():
            raise ServingError(errors[0])

    def _execution_parameters(self, instance: ServingInstance) -> dict[str, Any]:
        """`GET /execution-parameters` of the (first) container; {} when it has none or answers badly."""
        try:
            reply = post(instance.containers[0].address, "/execution-parameters", b"", {}, 10, method="GET")
        except (OSError, http.client.HTTPException):
            return {}
        if reply.status != 200:
            return {}
        try:
            value = json.loads(reply.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _teardown(self) -> None:
        with self._teardown_lock:
            instances, self.instances = self.instances, []
        if self.fleet is None:
            return
        for instance in instances:
            try:
                self.fleet.stop_instance(instance, TEARDOWN_GRACE)
            except Exception:
                log.exception("transform job %s: could not remove instance %s", self.name, instance.instance_id)

    # -- per instance ---------------------------------------------------------------------------
    @staticmethod
    def _note(data_log: LogSink, line: str) -> None:
        """One line of an instance's data log, stamped as SageMaker's `[sagemaker logs]` lines are."""
        data_log.write(time.time(), f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}:[sagemaker logs]: {line}")

    def _instance_worker(self, job: dict[str, Any], fleet: ModelFleet, instance: ServingInstance,
                         objects: list[staging.DataObject], settings: Settings, processor: DataProcessor,
                         store: staging.ObjectStore, data_log: LogSink) -> None:
        def note(line: str) -> None:
            self._note(data_log, line)

        note(f"MaxConcurrentTransforms={settings.concurrency}, MaxPayloadInMB={settings.max_payload_mb}, "
             f"BatchStrategy={rec.env_strategy(settings.strategy)}")
        transformer = ObjectTransformer(self, job, fleet, instance, settings, processor, store)
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix=f"tx-{self.name}") as pool:
            for obj in objects:
                if self.halt.is_set():
                    return
                started = time.time()
                try:
                    records, requests = transformer.run(obj, pool)
                except Halted:
                    note(f"{object_name(obj.uri)}: Stopped")
                    return
                except ObjectFailed as exc:
                    note(f"{object_name(obj.uri)}: {exc}")
                    self._fail_object(str(exc))
                    return
                except Exception as exc:
                    if self.halt.is_set():
                        return
                    log.exception("transform job %s: %s", self.name, obj.uri)
                    reason = f"InternalServerError: {object_name(obj.uri)}: {exc}"
                    note(reason)
                    self._fail_object(reason)
                    return
                note(f"{object_name(obj.uri)}: Completed: {records} record(s) in {requests} request(s), "
                     f"{time.time() - started:.3f} s")


class ObjectTransformer:
    """Transforms one input object at a time on one instance."""

    def __init__(self, run: TransformRun, job: dict[str, Any], fleet: ModelFleet, instance: ServingInstance,
                 settings: Settings, processor: DataProcessor, store: staging.ObjectStore) -> None:
        self.run_, self.fleet, self.instance = run, fleet, instance
        self.settings, self.processor, self.store = settings, processor, store
        transform_input, output = job["TransformInput"], job["TransformOutput"]
        self.split_type = transform_input.get("SplitType") or rec.NONE
        self.gzip = transform_input.get("CompressionType") == "Gzip"
        self.output_path = output["S3OutputPath"]
        self.line_assembly = output.get("AssembleWith") == "Line"
        self.headers = {}
        if transform_input.get("ContentType"):
            self.headers["Content-Type"] = transform_input["ContentType"]
        if output.get("Accept"):
            self.headers["Accept"] = output["Accept"]
        client = job.get("ModelClientConfig") or {}
        self.timeout = client.get("InvocationsTimeoutInSeconds") or DEFAULT_INVOCATION_TIMEOUT
        self.retries = client.get("InvocationsMaxRetries", DEFAULT_MAX_RETRIES)
        self.scratch = run.dir.scratch(instance.instance_id)

    def run(self, obj: staging.DataObject, pool: ThreadPoolExecutor) -> tuple[int, int]:
        """Transform `obj` and store its output; returns (records, requests)."""
        where = object_name(obj.uri)
        target = self.scratch / "output.part"
        window: deque[Future[bytes]] = deque()
        records = requests = 0
        try:
            with self.store.open(obj.uri, gzip=self.gzip) as stream, open(target, "wb") as out:
                batches = Prefetch(rec.pack(rec.split(stream, self.split_type, self.settings.strategy),
                                            self.settings.strategy if self.split_type != rec.NONE
                                            else rec.SINGLE_RECORD, self.settings.max_bytes))
                try:
                    for batch in batches:
                        if self.run_.halt.is_set():
                            raise Halted()
                        window.append(pool.submit(self._invoke, where, batch))
                        records += batch.count
                        requests += 1
                        while len(window) >= self.settings.concurrency:
                            out.write(window.popleft().result())
                    while window:
                        out.write(window.popleft().result())
                finally:
                    batches.close()  # before the stream it reads is closed
        except rec.RecordTooLarge as exc:
            raise ObjectFailed(f"ClientError: {where}: {exc}") from None
        except rec.BadRecords as exc:
            raise ObjectFailed(f"ClientError: {where} cannot be split as SplitType {self.split_type}: {exc}") \
                from None
        except (staging.StagingError, EOFError, OSError) as exc:
            if self.run_.halt.is_set():
                raise Halted() from None
            if isinstance(exc, staging.StagingError) or self.gzip:
                raise ObjectFailed(f"ClientError: {where} could not be read: {exc}") from None
            raise
        finally:
            for future in window:
                future.cancel()
        if self.run_.halt.is_set():
            raise Halted()
        destination = resume.output_uri(self.output_path, obj)
        try:
            self.store.put_file(target, destination)
        except staging.StagingError as exc:
            raise ObjectFailed(f"ClientError: Could not write the output of {where} to {destination}: {exc}") \
                from None
        finally:
            target.unlink(missing_ok=True)
        return records, requests

    def _invoke(self, where: str, batch: rec.Batch) -> bytes:
        label = f"{where} (record {batch.first + 1})" if batch.count == 1 else \
            f"{where} (records {batch.first + 1}-{batch.first + batch.count})"
        units: list[str] = []
        try:
            if self.processor.active:
                units = self.processor.units(batch.records)
                body = self.processor.request(units)
            else:
                body = batch.body
        except (FilterError, UnicodeDecodeError) as exc:
            raise ObjectFailed(f"ClientError: {label}: InputFilter: {exc}") from None
        if self.settings.max_bytes and len(body) > self.settings.max_bytes:
            raise ObjectFailed(f"ClientError: {label}: the filtered request is {len(body)} bytes, larger than "
                               f"MaxPayloadInMB ({self.settings.max_payload_mb} MB)")
        reply = self._post(label, body)
        data = reply.body
        if self.processor.active:
            try:
                data = self.processor.response(units, data, reply.content_type)
            except (FilterError, UnicodeDecodeError) as exc:
                raise ObjectFailed(f"ClientError: {label}: JoinSource/OutputFilter: {exc}") from None
        if self.line_assembly and not data.endswith(b"\n"):
            data += b"\n"
        return data

    def _post(self, label: str, body: bytes):
        attempt = 0
        while True:
            if self.run_.halt.is_set():
                raise Halted()
            try:
                return self.fleet.invoke(self.instance, body, self.headers, self.timeout)
            except ContainerReplyError as exc:
                if self.run_.halt.is_set():
                    raise Halted() from None
                retryable = exc.timed_out or exc.status == 0 or exc.status >= 500
                if retryable and attempt < self.retries:
                    attempt += 1
                    continue
                raise ObjectFailed(_reply_failure(label, exc, self.timeout, attempt)) from None


class Prefetch:
    """Iterate `source` in a background thread, `depth` items ahead: reading, splitting and packing the
    next requests overlaps the container's work on the current ones. Exceptions surface in order."""

    _END = object()

    def __init__(self, source: Iterator[Any], depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(source,), name="transform-prefetch",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: Any, error: BaseException | None = None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(None, exc)
            return
        self._put(self._END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            if error is not None:
                raise error
            if item is self._END:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _reply_failure(label: str, exc: ContainerReplyError, timeout: float, retries: int) -> str:
    tried = f" (after {retries} retr{'y' if retries == 1 else 'ies'})" if retries else ""
    if exc.timed_out:
        return (f"ClientError: {label}: the {exc.container} container did not answer within {timeout} seconds "
                f"(InvocationsTimeoutInSeconds){tried}.")
    if exc.status == 0:
        return f"ClientError: {label}: {exc.message}{tried}."
    message = " ".join(exc.message.split())[:500]
    return f"ClientError: {label}: the {exc.container} container answered {exc.status}{tried}: {message}"
