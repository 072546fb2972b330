"""The one container runtime that training, hosting, batch transform and processing share.

Every container and network it creates carries our labels, so a restarted emulator can find and
re-adopt its containers and `cleanup` can remove everything we ever started. Ports are published
on 127.0.0.1 only; containers are never privileged and never get the Docker socket.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import Mount

from .docker_logs import body_blocks, log_lines, parse_timestamp

log = logging.getLogger(__name__)

LABEL = "sagemaker-emulator"
MANAGED = f"{LABEL}.managed"
OWNER = f"{LABEL}.owner"
HOST_LABEL = f"{LABEL}.host"
_SOCKET_PATHS = ("/var/run/docker.sock", "/run/docker.sock")


class DockerUnavailable(Exception):
    """No Docker engine answers."""


class RuntimeImageMissing(Exception):
    """The image is not present locally."""

    def __init__(self, image: str) -> None:
        super().__init__(f"The image '{image}' is not present on the local Docker engine; build or tag it "
                         f"locally (docker build -t {image} .).")
        self.image = image


class ContainerStartError(Exception):
    """Docker could not start the container (e.g. its command is not in the image)."""


@dataclass
class ContainerSpec:
    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, tuple[str, str]] = field(default_factory=dict)  # host path -> (container path, ro|rw)
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    hostname: str | None = None
    network: str | None = None
    network_aliases: list[str] | None = None
    network_disabled: bool = False
    ports: list[int] = field(default_factory=list)  # published on 127.0.0.1, ephemeral host ports
    cpus: float | None = None
    memory_gib: float | None = None
    working_dir: str | None = None


@dataclass
class ContainerHandle:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)


LineCallback = Callable[[float, str, str], None]


class DockerRuntime:
    def __init__(self, owner: str, client: docker.DockerClient | None = None) -> None:
        self.owner = owner
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = docker.from_env(timeout=120)
                    self._client.ping()
                except DockerException as exc:
                    self._client = None
                    raise DockerUnavailable(f"No Docker engine answers: {exc}") from exc
            return self._client

    def available(self) -> bool:
        try:
            return bool(self.client.ping())
        except (DockerUnavailable, DockerException):
            return False

    def _labels(self, extra: dict[str, str]) -> dict[str, str]:
        return {MANAGED: "true", OWNER: self.owner, **extra}

    def image_exists(self, name: str) -> bool:
        try:
            self.client.images.get(name)
            return True
        except (ImageNotFound, NotFound):
            return False
        except APIError:
            return False

    def pull(self, name: str, timeout: float = 60) -> bool:
        """Try `docker pull` without hanging: False when it fails or takes longer than `timeout`."""
        result: list[bool] = []

        def attempt() -> None:
            try:
                self.client.images.pull(name)
                result.append(True)
            except DockerException:
                result.append(False)

        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        thread.join(timeout)
        return bool(result and result[0])

    def run(self, spec: ContainerSpec) -> ContainerHandle:
        """Create and start a detached container from `spec`."""
        mounts = []
        for host, (target, mode) in spec.mounts.items():
            if host in _SOCKET_PATHS or target in _SOCKET_PATHS:
                raise ValueError("containers never get the Docker socket")
            mounts.append(Mount(target=target, source=host, type="bind", read_only=(mode == "ro")))
        kwargs: dict = {
            "image": spec.image, "command": spec.command, "entrypoint": spec.entrypoint,
            "environment": spec.environment, "labels": self._labels(spec.labels), "name": spec.name,
            "hostname": spec.hostname, "mounts": mounts, "detach": True, "privileged": False,
            "working_dir": spec.working_dir,
            "ports": {f"{p}/tcp": ("127.0.0.1", None) for p in spec.ports} or None,
        }
        if spec.network_disabled:
            kwargs["network_mode"] = "none"
        elif spec.network:
            kwargs["network"] = spec.network
        if spec.cpus:
            kwargs["nano_cpus"] = int(spec.cpus * 1e9)
        if spec.memory_gib:
            kwargs["mem_limit"] = int(spec.memory_gib * 1024 ** 3)
        try:
            container = self.client.containers.create(**{k: v for k, v in kwargs.items() if v is not None})
        except ImageNotFound as exc:
            raise RuntimeImageMissing(spec.image) from exc
        handle = ContainerHandle(container.id, container.name, kwargs["labels"])
        try:
            if spec.network and spec.network_aliases and not spec.network_disabled:
                net = self.client.networks.get(spec.network)
                net.disconnect(container)
                net.connect(container, aliases=spec.network_aliases)
            container.start()
        except APIError as exc:
            self.remove(handle)
            raise ContainerStartError(f"Docker could not start a container from {spec.image}: "
                                      f"{exc.explanation or exc}") from None
        except Exception:
            self.remove(handle)
            raise
        return handle

    def host_port(self, handle: ContainerHandle, container_port: int) -> int:
        container = self.client.containers.get(handle.id)
        bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{container_port}/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") in ("127.0.0.1", ""):
                return int(binding["HostPort"])
        raise RuntimeError(f"port {container_port} of {handle.name} is not published")

    def stream_logs(self, handle: ContainerHandle, on_line: LineCallback,
                    since: float | None = None) -> threading.Thread:
        """Follow stdout+stderr with timestamps in a thread that ends when the container does."""
        def follow() -> None:
            try:
                params: dict = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1}
                if since:
                    params["since"] = int(since) + 1
                api = self.client.api
                response = api._get(api._url("/containers/{0}/logs", handle.id), params=params, stream=True)
                api._raise_for_status(response)
                for stream, raw in log_lines(body_blocks(response)):
                    self._emit(raw, on_line, stream)
            except (DockerException, OSError, ValueError) as exc:
                log.debug("log stream of %s ended: %s", handle.name, exc)

        thread = threading.Thread(target=follow, name=f"docker-logs:{handle.name}", daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _emit(raw: bytes, on_line: LineCallback, stream: str = "stdout") -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        stamp, _, line = text.partition(" ")
        on_line(parse_timestamp(stamp), line, stream)

    def wait(self, handle: ContainerHandle, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after `timeout` seconds (0 = just look)."""
        try:
            container = self.client.containers.get(handle.id)
        except NotFound:
            return -1
        if timeout == 0:
            state = container.attrs["State"]
            return None if state.get("Running") or state.get("Status") == "created" else int(state["ExitCode"])
        try:
            return int(container.wait(timeout=timeout)["StatusCode"])
        except Exception:  # requests' ReadTimeout/ConnectionError: still running
            return None

    def stop(self, handle: ContainerHandle, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (docker stop -t)."""
        try:
            self.client.containers.get(handle.id).stop(timeout=max(0, int(round(grace))))
        except NotFound:
            pass

    def remove(self, handle: ContainerHandle) -> None:
        try:
            self.client.containers.get(handle.id).remove(force=True, v=True)
        except NotFound:
            pass

    def create_network(self, name: str, labels: dict[str, str] | None = None, internal: bool = False) -> None:
        self.client.networks.create(name, driver="bridge", internal=internal, labels=self._labels(labels or {}))

    def remove_network(self, name: str) -> None:
        try:
            self.client.networks.get(name).remove()
        except NotFound:
            pass

    def find_containers(self, labels: dict[str, str]) -> dict[str, ContainerHandle]:
        """Our containers carrying `labels`, by their host label (for re-adoption after a restart)."""
        filters = {"label": [MANAGED + "=true", f"{OWNER}={self.owner}"] + [f"{k}={v}" for k, v in labels.items()]}
        found = {}
        for container in self.client.containers.list(all=True, filters=filters):
            host = container.labels.get(HOST_LABEL, container.name)
            found[host] = ContainerHandle(container.id, container.name, container.labels)
        return found

    def list_managed(self, owner: str | None = None) -> list[ContainerHandle]:
        filters = {"label": [MANAGED + "=true"] + ([f"{OWNER}={owner}"] if owner else [])}
        return [ContainerHandle(c.id, c.name, c.labels) for c in self.client.containers.list(all=True, filters=filters)]

    def list_networks(self, owner: str | None = None) -> list[str]:
        filters = {"label": [MANAGED + "=true"] + ([f"{OWNER}={owner}"] if owner else [])}
        return [n.name for n in self.client.networks.list(filters=filters)]

    def cleanup(self, owner: str | None = None) -> int:
        """Remove every container and network we started (of `owner`, or all); returns the count."""
        removed = 0
        for handle in self.list_managed(owner):
            self.remove(handle)
            removed += 1
        for name in self.list_networks(owner):
            self.remove_network(name)
            removed += 1
        return removed

    def cleanup_kind(self, kind: str) -> int:
        """Remove every container of one kind (e.g. all endpoint containers) of this owner."""
        removed = 0
        filters = {"label": [MANAGED + "=true", f"{OWNER}={self.owner}", f"{LABEL}.kind={kind}"]}
        for container in self.client.containers.list(all=True, filters=filters):
            container.remove(force=True, v=True)
            removed += 1
        return removed
