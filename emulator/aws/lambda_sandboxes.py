"""Execution environments of Lambda functions: containers on the base image, kept warm for a while.

A sandbox is one container running lambda_bootstrap.py with the function's code at /var/task; it
serves one invocation at a time, as a Lambda execution environment does. After an invocation it goes
back to an idle list keyed by the function's fingerprint (ARN, code, handler, environment, limits),
so the next invocation of an unchanged function skips the container start (about 1-2 s here). An
idle sandbox is removed after `IDLE_SECONDS`, or at once when the function changed; a timed-out
or crashed one is removed at once. At most `MAX_SANDBOXES` run at a time: the idle one unused the
longest makes room for a new one, and when all are busy the invocation gets TooManyRequestsException
(which boto3 retries). Nothing outlives the emulator: `close` removes every sandbox, and start-up
removes what a killed emulator left (`recover`).

Code is staged like a job's: a `JobDir` under `<data_dir>/jobs/lambda/`, shown to the container
by the configured workspace (bind mounts, or copied in for a remote engine). Output goes through a
`LogSink` to the CloudWatch Logs group `/aws/lambda/<name>`, one stream per sandbox, as on AWS.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_emulator.jobs.logsink import LogSink, open_sink
from sagemaker_emulator.jobs.workdir import JobDir
from sagemaker_emulator.runtime import container_access, container_http
from sagemaker_emulator.runtime.interface import (
    HOST_LABEL,
    KIND_LABEL,
    RESOURCE_LABEL,
    Address,
    ContainerHandle,
    ContainerSpec,
    ContainerStartError,
    RuntimeImageMissing,
)

log = logging.getLogger(__name__)

KIND = "lambda"
BASE_IMAGE = "sagemaker-emulator-base:py311"
PORT = 8080
IDLE_SECONDS = 300.0  # AWS keeps an idle execution environment for minutes too
REAP_SECONDS = 15.0
MAX_SANDBOXES = 8  # a small machine: beyond this, TooManyRequestsException
START_SECONDS = 60.0  # container start + the handler module's import (AWS: a 10 s init phase)
EVENT_WORKERS = 2  # Event invocations run in the background, this many at a time
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


class SandboxError(Exception):
    """A sandbox could not start or died; `kind` says which (`start` is the service's fault, `exit` the code's)."""

    def __init__(self, message: str, kind: str = "start") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Sandbox:
    key: str
    function_arn: str
    handle: ContainerHandle
    address: Address
    sink: LogSink
    log_thread: threading.Thread
    workdir: JobDir
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class Launch:
    """What a sandbox of one function version needs (lambda_runtime fills it in from moto's record)."""

    key: str  # the fingerprint: sandboxes are reused only for an identical one
    name: str
    arn: str
    version: str
    region: str
    memory: int
    environment: dict[str, str]
    stage_code: Any  # callable(task_dir: Path) -> None: unpack the function's code there


class Sandboxes:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._idle: dict[str, list[Sandbox]] = {}
        self._starting = 0  # sandboxes being started (they count towards MAX_SANDBOXES)
        self._all: dict[int, Sandbox] = {}
        self._current: dict[str, str] = {}  # function ARN -> its latest fingerprint
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._reaper: threading.Thread | None = None
        self._workers: ThreadPoolExecutor | None = None

    # -- taking and giving back ------------------------------------------------------------------
    def acquire(self, launch: Launch) -> Sandbox:
        """An idle sandbox of this fingerprint, or a new one (SandboxError if it cannot start;
        kind `busy` when MAX_SANDBOXES already run)."""
        with self._lock:
            if self._closed:
                raise SandboxError("The emulator is shutting down.")
            previous = self._current.get(launch.arn)
            stale = self._idle.pop(previous, []) if previous not in (None, launch.key) else []
            self._current[launch.arn] = launch.key  # the function changed: its old sandboxes go
            idle = self._idle.get(launch.key)
            sandbox = idle.pop() if idle else None
            busy = False
            if sandbox is None and len(self._all) + self._starting >= MAX_SANDBOXES:
                evicted = self._pop_least_recent()  # an idle one of another function makes room
                if evicted is None:
                    busy = True
                else:
                    stale.append(evicted)
                    self._all.pop(id(evicted), None)
            if sandbox is None and not busy:
                self._starting += 1
        for old in stale:
            self.discard(old)
        if sandbox is not None:
            return sandbox
        if busy:
            raise SandboxError(f"More than {MAX_SANDBOXES} invocations run at once.", kind="busy")
        try:
            sandbox = self._start(launch)
        finally:
            with self._lock:
                self._starting -= 1
        with self._lock:
            self._all[id(sandbox)] = sandbox
            closed = self._closed
        if closed:
            self.discard(sandbox)
            raise SandboxError("The emulator is shutting down.")
        self._ensure_reaper()
        return sandbox

    def _pop_least_recent(self) -> Sandbox | None:
        """The idle sandbox unused the longest, taken off its list (under the lock)."""
        candidates = [(s.last_used, key, s) for key, idle in self._idle.items() for s in idle]
        if not candidates:
            return None
        _, key, oldest = min(candidates, key=lambda c: c[0])
        self._idle[key].remove(oldest)
        if not self._idle[key]:
            del self._idle[key]
        return oldest

    def release(self, sandbox: Sandbox) -> None:
        """Back to the idle list after an invocation that left it healthy."""
        sandbox.last_used = time.monotonic()
        with self._lock:
            keep = not self._closed and self._current.get(sandbox.function_arn) == sandbox.key \
                and id(sandbox) in self._all
            if keep:
                self._idle.setdefault(sandbox.key, []).append(sandbox)
        if not keep:
            self.discard(sandbox)

    def discard(self, sandbox: Sandbox, last_words: str | None = None) -> None:
        """Remove the container, its log stream's tail (`last_words` appended first) and its directory."""
        with self._lock:
            self._all.pop(id(sandbox), None)
        runtime = self.services.runtime
        try:
            runtime.remove(sandbox.handle)
        except Exception:
            log.exception("could not remove the Lambda container %s", sandbox.handle.name)
        container_http.pool.forget(sandbox.address)
        sandbox.log_thread.join(timeout=5)
        if last_words:
            sandbox.sink.write(time.time(), last_words)
        sandbox.sink.close()
        sandbox.workdir.remove()

    def recent_log(self, sandbox: Sandbox, after: str) -> list[str]:
        """The sandbox's last log lines from the one containing `after` (a timed-out invocation's tail)."""
        sandbox.log_thread.join(timeout=2)
        lines = sandbox.sink.recent(50)
        for index in range(len(lines) - 1, -1, -1):
            if after in lines[index]:
                return lines[index:]
        return lines

    # -- starting --------------------------------------------------------------------------------
    def _start(self, launch: Launch) -> Sandbox:
        services = self.services
        runtime = services.runtime
        sandbox_id = uuid.uuid4().hex
        workdir = JobDir(services.config.data_dir, KIND, launch.region, f"{launch.name}-{sandbox_id[:12]}").create()
        try:
            task, bootstrap = workdir.host("task"), workdir.host("runtime")
            launch.stage_code(task)
            shutil.copyfile(BOOTSTRAP, bootstrap / "bootstrap.py")
        except BaseException:
            workdir.remove()
            raise
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{launch.version}]{sandbox_id}"
        group = f"/aws/lambda/{launch.name}"
        reserved = {
            "AWS_LAMBDA_FUNCTION_NAME": launch.name, "AWS_LAMBDA_FUNCTION_VERSION": launch.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(launch.memory), "AWS_LAMBDA_LOG_GROUP_NAME": group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream, "AWS_REGION": launch.region, "AWS_DEFAULT_REGION": launch.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "LAMBDA_TASK_ROOT": "/var/task",
            "LAMBDA_RUNTIME_DIR": "/var/runtime", "_HANDLER": launch.environment.get("_HANDLER", ""),
            "_LAMBDA_BOOTSTRAP_PORT": str(PORT), "TZ": ":UTC", "PYTHONDONTWRITEBYTECODE": "1",
        }
        user = {k: v for k, v in launch.environment.items() if k != "_HANDLER"}
        access = container_access.environment(services.config, launch.region, user)
        memory = launch.memory / 1024 if services.config.limit_resources else None
        spec = ContainerSpec(
            image=BASE_IMAGE, command=["python", "/var/runtime/bootstrap.py"],
            environment={**access, **user, **reserved},
            mounts={str(task): ("/var/task", "ro"), str(bootstrap): ("/var/runtime", "ro")},
            labels={KIND_LABEL: KIND, RESOURCE_LABEL: launch.arn, HOST_LABEL: sandbox_id},
            name=f"sm-lambda-{launch.name[:40]}-{sandbox_id[:8]}", ports=[PORT], working_dir="/var/task",
            memory_gib=memory)
        try:
            handle = services.workspace.start(spec)
        except RuntimeImageMissing as exc:
            workdir.remove()
            raise SandboxError(str(exc)) from None
        except ContainerStartError as exc:
            workdir.remove()
            raise SandboxError(f"The function's container could not start: {exc}") from None
        except BaseException:
            workdir.remove()
            raise
        sink = open_sink(launch.region, group, stream)
        sandbox = Sandbox(launch.key, launch.arn, handle, Address("", 0), sink,
                          runtime.stream_logs(handle, sink.write), workdir)
        try:
            sandbox.address = runtime.address(handle, PORT)
            self._wait_ready(sandbox)
        except BaseException:
            self.discard(sandbox)
            raise
        return sandbox

    def _wait_ready(self, sandbox: Sandbox) -> None:
        runtime = self.services.runtime
        deadline = time.monotonic() + START_SECONDS
        while True:
            code = runtime.wait(sandbox.handle, timeout=0)
            if code is not None:
                sandbox.log_thread.join(timeout=2)
                tail = "\n".join(sandbox.sink.recent(10))
                raise SandboxError(f"Runtime exited with error: exit status {code}" + (f"\n{tail}" if tail else ""),
                                   kind="exit")
            try:
                if container_http.request(sandbox.address, "/ping", b"", {}, timeout=2, method="GET").status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SandboxError(f"The function's runtime did not start within {START_SECONDS:.0f} seconds.")
            time.sleep(0.05)

    # -- idle expiry and shutdown ----------------------------------------------------------------
    def _ensure_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None or self._closed:
                return
            self._reaper = threading.Thread(target=self._reap_loop, name="lambda-reaper", daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._closed:
            self._wake.wait(REAP_SECONDS)
            self.reap()

    def reap(self, idle_seconds: float = IDLE_SECONDS) -> int:
        """Remove sandboxes idle for longer than `idle_seconds`; returns how many."""
        cutoff = time.monotonic() - idle_seconds
        expired: list[Sandbox] = []
        with self._lock:
            for key, idle in list(self._idle.items()):
                keep = [s for s in idle if s.last_used > cutoff]
                expired += [s for s in idle if s.last_used <= cutoff]
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for sandbox in expired:
            self.discard(sandbox)
        return len(expired)

    def background(self, work: Callable[[], None]) -> None:
        """Run `work` on one of a few worker threads (Event invocations), in the order given."""
        with self._lock:
            if self._closed:
                raise SandboxError("The emulator is shutting down.")
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=EVENT_WORKERS, thread_name_prefix="lambda-event")
            self._workers.submit(work)

    def close(self) -> None:
        """Remove every sandbox, idle or busy (an invocation in flight then fails); queued events are dropped."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            sandboxes = list(self._all.values())
            self._idle.clear()
        self._wake.set()
        for sandbox in sandboxes:
            self.discard(sandbox)

    def recover(self) -> None:
        """At start-up: what a killed emulator left (containers, code directories) goes."""
        self.services.runtime.cleanup_kind(KIND)
        shutil.rmtree(Path(self.services.config.data_dir) / "jobs" / KIND, ignore_errors=True)
