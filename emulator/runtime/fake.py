"""An in-memory `ContainerRuntime` with scripted containers, for engine-logic unit tests (no engine).

Nothing runs: a "container" is a thread that prints its script's lines, writes its script's files
and exits with its script's code. Tests that claim containers work use DockerRuntime; this one is
for the engines' bookkeeping (statuses, failure reasons, stop/timeout, re-adoption, cleanup).

Scripting a container::

    fake = FakeRuntime(scripts={"trainer:1": Script(lines=["epoch 1", "loss=0.5"], exit_code=0, after=0.2)})
    services = Services(config, runtime=fake)        # the engines now run on the fake, or a whole server:
    with testing.inprocess.InProcessServer(fake, workspace="copy") as server:   # boto3 -> server.client(...)
        ...                                          # see tests/test_fake_runtime.py

    Script(
        lines=["hello", (0.5, "late line", "stderr")],  # printed at start; (delay seconds, line, stream)
        after=1.0,               # exit `after` seconds after start; None = run until stopped
        exit_code=2,             # the code it exits with on its own
        files={"/opt/ml/output/failure": "boom"},   # written (container paths) when it exits on its own
        on_term=0,               # exit code on SIGTERM; None = ignores SIGTERM (SIGKILL: 137 after the grace)
        term_seconds=0.0,        # how long it takes to exit after SIGTERM
        http=lambda method, path, body: (200, b"{}"),  # serves its published ports (serving containers)
    )

Scripts are picked by image name (`scripts`), else by `script_for(spec)` if given, else `Script()`
(exits 0 at once). Every image exists unless `images` lists the ones that do. Files a script writes
land where the workspace put that container path: in a bind-mounted host directory (the default
workspace), or in the container's in-memory file system, which `put_archive`/`get_archive` fill and
read as a Docker engine would (the copy workspace). `fake.containers` keeps every container ever
created (`FakeContainer`: spec, state, exit code, lines, files, stop signals) for assertions.
A script with `http` answers on a real loopback port for each published port while it runs (so
/ping, /invocations and /execution-parameters work); without it nothing listens at the `Address`.
"""

from __future__ import annotations

import io
import itertools
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .interface import (
    HOST_LABEL,
    KIND_LABEL,
    MANAGED,
    OWNER,
    RESOURCE_LABEL,
    Address,
    ContainerHandle,
    ContainerSpec,
    ContainerStartError,
    LineCallback,
    RuntimeImageMissing,
    remove_all,
)

Line = str | tuple[float, str, str]


@dataclass
class Script:
    """What a fake container does (see the module docstring)."""

    lines: list[Line] = field(default_factory=list)
    after: float | None = 0.0
    exit_code: int = 0
    files: dict[str, str | bytes] = field(default_factory=dict)
    on_term: int | None = 0
    term_seconds: float = 0.0
    fail_to_start: str | None = None  # ContainerStartError with this message on start
    # (method, path, body) -> (status, body) or (status, body, headers)
    http: Callable[[str, str, bytes], tuple[Any, ...]] | None = None


@dataclass
class FakeContainer:
    id: str
    name: str
    spec: ContainerSpec
    labels: dict[str, str]
    script: Script
    state: str = "created"  # created | running | exited | removed
    exit_code: int | None = None
    started_at: float | None = None
    lines: list[tuple[float, str, str]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # container path -> content (not bind-mounted)
    signals: list[str] = field(default_factory=list)  # "SIGTERM", "SIGKILL"
    servers: dict[int, Any] = field(default_factory=dict)  # container port -> loopback HTTP server (script.http)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def handle(self) -> ContainerHandle:
        return ContainerHandle(self.id, self.name, dict(self.labels))


class FakeRuntime:
    """ContainerRuntime in memory; see the module docstring for scripting containers."""

    remote = False

    def __init__(self, owner: str = "fake", scripts: dict[str, Script] | None = None,
                 script_for: Callable[[ContainerSpec], Script | None] | None = None,
                 images: set[str] | None = None, gateway: str | None = None) -> None:
        self.owner = owner
        self.scripts = dict(scripts or {})
        self.script_for = script_for
        self.images = images
        self.gateway = gateway
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)
        self._ports = itertools.count(42000)
        self._lock = threading.RLock()

    # -- helpers ----------------------------------------------------------------------------------
    def _labels(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {MANAGED: "true", OWNER: self.owner, **(extra or {})}

    def _get(self, handle: ContainerHandle) -> FakeContainer | None:
        container = self.containers.get(handle.id)
        return None if container is None or container.state == "removed" else container

    def available(self) -> bool:
        return True

    def image_exists(self, name: str) -> bool:
        return self.images is None or name in self.images

    def pull(self, name: str, timeout: float = 60) -> bool:
        return self.image_exists(name)

    # -- containers -------------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> ContainerHandle:
        if not self.image_exists(spec.image):
            raise RuntimeImageMissing(spec.image)
        script = self.scripts.get(spec.image) or (self.script_for(spec) if self.script_for else None) or Script()
        number = next(self._ids)
        container = FakeContainer(f"fake{number:08x}", spec.name or f"fake-{number}", spec, self._labels(spec.labels),
                                  script)
        with self._lock:
            self.containers[container.id] = container
            for path in spec.volumes:
                self.volumes[f"{container.id}-{len(self.volumes)}"] = {**container.labels, "container": container.id,
                                                                       "path": path}
        return container.handle

    def start(self, handle: ContainerHandle) -> None:
        container = self._get(handle)
        if container is None:
            raise ContainerStartError(f"no such container {handle.name}")
        if container.script.fail_to_start:
            self.remove(handle)
            raise ContainerStartError(container.script.fail_to_start)
        container.state, container.started_at = "running", time.time()
        if container.script.http is not None:
            for port in container.spec.ports:
                container.servers[port] = _serve(container.script.http)
        threading.Thread(target=self._life, args=(container,), name=f"fake:{container.name}", daemon=True).start()

    def run(self, spec: ContainerSpec) -> ContainerHandle:
        handle = self.create(spec)
        self.start(handle)
        return handle

    def _life(self, container: FakeContainer) -> None:
        script = container.script
        start = container.started_at or time.time()
        timed = []
        for line in script.lines:
            timed.append((0.0, line, "stdout") if isinstance(line, str) else line)
        for delay, text, stream in sorted(timed, key=lambda item: item[0]):
            if self._sleep_until(container, start + delay):
                return
            self._print(container, text, stream)
        if script.after is None:
            return  # runs until stopped
        if self._sleep_until(container, start + script.after):
            return
        for path, content in script.files.items():
            self.write_file(container, path, content)
        self._exit(container, script.exit_code)

    def _sleep_until(self, container: FakeContainer, when: float) -> bool:
        """Wait until `when`; True if the container exited (was stopped) meanwhile."""
        with container.changed:
            while container.state == "running" and time.time() < when:
                container.changed.wait(max(0.0, when - time.time()))
            return container.state != "running"

    def _print(self, container: FakeContainer, text: str, stream: str = "stdout") -> None:
        with container.changed:
            container.lines.append((time.time(), text, stream))
            container.changed.notify_all()

    def _exit(self, container: FakeContainer, code: int) -> None:
        with container.changed:
            if container.state == "running":
                container.state, container.exit_code = "exited", code
            container.changed.notify_all()
        _close_servers(container)

    def write_file(self, container: FakeContainer, path: str, content: str | bytes) -> None:
        """Write a container path: through a bind mount if one covers it, else into the container's files."""
        data = content.encode() if isinstance(content, str) else content
        target = PurePosixPath(path)
        best = None
        for host, (mount_point, _mode) in container.spec.mounts.items():
            point = PurePosixPath(mount_point)
            if (target == point or point in target.parents) and (best is None or len(point.parts) > len(best[1].parts)):
                best = (host, point)
        if best is not None:
            host_path = Path(best[0]) / target.relative_to(best[1])
            host_path.parent.mkdir(parents=True, exist_ok=True)
            host_path.write_bytes(data)
        else:
            container.files[str(target)] = data

    def put_archive(self, handle: ContainerHandle, path: str, data: IO[bytes]) -> None:
        container = self._get(handle)
        if container is None:
            raise ContainerStartError(f"no such container {handle.name}")
        with tarfile.open(fileobj=data, mode="r|*") as tar:
            for member in tar:
                if member.isfile():
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted else b""
                    container.files[str(PurePosixPath(path) / member.name)] = content

    def get_archive(self, handle: ContainerHandle, path: str, out: IO[bytes]) -> bool:
        container = self._get(handle)
        if container is None:
            return False
        root = PurePosixPath(path)
        found = {p: c for p, c in container.files.items() if root in PurePosixPath(p).parents}
        if not found:
            return False
        with tarfile.open(fileobj=out, mode="w|") as tar:
            top = _dir_entry(root.name)
            tar.addfile(top)
            for name, content in sorted(found.items()):
                info = tarfile.TarInfo(str(PurePosixPath(root.name) / PurePosixPath(name).relative_to(root)))
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        return True

    def address(self, handle: ContainerHandle, container_port: int) -> Address:
        container = self._get(handle)
        server = container.servers.get(container_port) if container else None
        return Address("127.0.0.1", server.server_port if server else next(self._ports))

    def stream_logs(self, handle: ContainerHandle, on_line: LineCallback,
                    since: float | None = None) -> threading.Thread:
        container = self._get(handle)

        def follow() -> None:
            if container is None:
                return
            seen = 0
            while True:
                with container.changed:
                    while seen >= len(container.lines) and container.state == "running":
                        container.changed.wait(1)
                    batch = container.lines[seen:]
                    seen = len(container.lines)
                    done = container.state != "running"
                for stamp, text, stream in batch:
                    # `since` is a recorded log position, in CloudWatch's milliseconds: a line of that
                    # millisecond was recorded already (Docker's own `since` is coarser still)
                    if since is None or int(stamp * 1000) > round(since * 1000):
                        on_line(stamp, text, stream)
                if done and seen >= len(container.lines):
                    return

        thread = threading.Thread(target=follow, name=f"fake-logs:{handle.name}", daemon=True)
        thread.start()
        return thread

    def wait(self, handle: ContainerHandle, timeout: float | None = None) -> int | None:
        container = self._get(handle)
        if container is None:
            return -1
        deadline = None if timeout is None else time.time() + timeout
        with container.changed:
            while container.state in ("running", "created"):
                if container.state == "created" and timeout == 0:
                    return None
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    return None
                container.changed.wait(left)
            return container.exit_code

    def stop(self, handle: ContainerHandle, grace: float) -> None:
        container = self._get(handle)
        if container is None or container.state != "running":
            return
        container.signals.append("SIGTERM")
        script = container.script
        if script.on_term is not None and script.term_seconds <= grace:
            time.sleep(script.term_seconds)
            self._exit(container, script.on_term)
            return
        time.sleep(grace)
        container.signals.append("SIGKILL")
        self._exit(container, 137)

    def remove(self, handle: ContainerHandle) -> None:
        container = self.containers.get(handle.id)
        if container is None:
            return
        with container.changed:
            container.state = "removed"
            container.changed.notify_all()
        _close_servers(container)
        with self._lock:
            for name in [n for n, labels in self.volumes.items() if labels.get("container") == handle.id]:
                del self.volumes[name]

    def find_containers(self, labels: dict[str, str]) -> dict[str, ContainerHandle]:
        wanted = {MANAGED: "true", OWNER: self.owner, **labels}
        found = {}
        for container in list(self.containers.values()):
            if container.state != "removed" and all(container.labels.get(k) == v for k, v in wanted.items()):
                found[container.labels.get(HOST_LABEL, container.name)] = container.handle
        return found

    def list_managed(self, owner: str | None = None) -> list[ContainerHandle]:
        return [c.handle for c in list(self.containers.values())
                if c.state != "removed" and (owner is None or c.labels.get(OWNER) == owner)]

    # -- networks and volumes ---------------------------------------------------------------------
    def create_network(self, name: str, labels: dict[str, str] | None = None, internal: bool = False,
                       addresses: int = 0) -> list[str]:
        with self._lock:
            if name in self.networks:
                raise ContainerStartError(f"network {name} already exists")
            self.networks[name] = {**self._labels(labels), "internal": str(internal)}
        return [f"10.215.0.{index}" for index in range(2, addresses + 2)]

    def connect_network(self, handle: ContainerHandle, network: str, aliases: list[str] | None = None) -> None:
        with self._lock:
            if network not in self.networks:
                raise ContainerStartError(f"network {network} does not exist")

    def remove_network(self, name: str) -> None:
        with self._lock:
            self.networks.pop(name, None)

    def list_networks(self, owner: str | None = None) -> list[str]:
        return [n for n, labels in self.networks.items() if owner is None or labels.get(OWNER) == owner]

    def list_volumes(self, owner: str | None = None) -> list[str]:
        return [n for n, labels in self.volumes.items() if owner is None or labels.get(OWNER) == owner]

    def bridge_gateway(self) -> str | None:
        return self.gateway

    def remove_volume(self, name: str) -> bool:
        with self._lock:
            labels = self.volumes.get(name)
            container = self.containers.get(labels["container"]) if labels else None
            if container is not None and container.state != "removed":
                return False  # in use
            self.volumes.pop(name, None)
        return True

    def cleanup(self, owner: str | None = None) -> int:
        return remove_all(self, owner)

    def cleanup_kind(self, kind: str) -> int:
        handles = self.find_containers({KIND_LABEL: kind}).values()
        for handle in handles:
            self.remove(handle)
        return len(handles)

    def sweep_orphans(self, live_resources: set[str]) -> list[str]:
        def orphans(store: dict[str, dict[str, str]]) -> list[str]:
            return [name for name, labels in list(store.items())
                    if labels.get(OWNER) == self.owner and labels.get(RESOURCE_LABEL) not in live_resources]

        removed = orphans(self.networks)
        for name in removed:
            self.remove_network(name)
        return removed + [name for name in orphans(self.volumes) if self.remove_volume(name)]


def _dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def _serve(answer: Callable[[str, str, bytes], tuple[Any, ...]]) -> Any:
    """A loopback HTTP server answering every request with `answer(method, path, body)`."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, data, *extra = answer(self.command, self.path, body)
            self.send_response(status)
            for key, value in (extra[0] if extra else {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _reply  # noqa: N815

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fake-http", daemon=True).start()
    return server


def _close_servers(container: FakeContainer) -> None:
    servers, container.servers = container.servers, {}
    for server in servers.values():
        server.shutdown()
        server.server_close()
