"""What the engines need from a container runtime, whatever runs the containers.

Training, processing, batch transform and hosting type against `ContainerRuntime`, never against
docker-py: `DockerRuntime` (runtime/docker_engine.py) drives a local or remote Docker engine,
`FakeRuntime` (runtime/fake.py) scripts containers in memory for engine unit tests. Containers are
reached at an `Address` (a remote engine's containers are on its host, not on our loopback), and
their files come and go through a workspace (runtime/workspace.py): host bind mounts or copies
through the engine API.

Every container, network and volume a runtime creates carries the labels below, so a restarted
emulator finds (re-adopts or removes) its own and never touches another emulator's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, NamedTuple, Protocol, runtime_checkable

LABEL = "sagemaker-emulator"
MANAGED = f"{LABEL}.managed"
OWNER = f"{LABEL}.owner"
HOST_LABEL = f"{LABEL}.host"
KIND_LABEL = f"{LABEL}.kind"
RESOURCE_LABEL = f"{LABEL}.resource"

LineCallback = Callable[[float, str, str], None]  # (epoch seconds, line without newline, "stdout"|"stderr")


class Address(NamedTuple):
    """Where a container's published port is reached from the emulator (hashable: a pool key)."""

    host: str
    port: int


class RuntimeUnavailable(Exception):
    """No container engine answers."""


DockerUnavailable = RuntimeUnavailable  # the name the Docker-only code used


class RuntimeImageMissing(Exception):
    """The image is not present on the engine."""

    def __init__(self, image: str) -> None:
        super().__init__(f"The image '{image}' is not present on the local Docker engine; build or tag it "
                         f"locally (docker build -t {image} .).")
        self.image = image


class ContainerStartError(Exception):
    """The engine could not start the container (e.g. its command is not in the image)."""


@dataclass
class ContainerSpec:
    """One container to run. `mounts` are host directories as the workspace shows them in the container."""

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
    ports: list[int] = field(default_factory=list)  # published, reached at `address(handle, port)`
    cpus: float | None = None
    memory_gib: float | None = None
    working_dir: str | None = None
    # container paths backed by a fresh engine volume (labelled like the container, removed with it)
    volumes: list[str] = field(default_factory=list)
    # a fixed address on `network` (one of those create_network reserved) and /etc/hosts entries:
    # every host of a cluster resolves every other from its first instruction, whatever the start order
    ip_address: str | None = None
    extra_hosts: dict[str, str] = field(default_factory=dict)
    # named engine volumes (name -> container path), shared by the containers that name them; created
    # on first use with the container's labels, removed with remove_volume once none uses them
    shared_volumes: dict[str, str] = field(default_factory=dict)
    # `network="container:<id>"` joins another container's network namespace (Docker's network_mode)


@dataclass
class ContainerHandle:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class ContainerRuntime(Protocol):
    """The operations the engines use. Implementations: DockerRuntime, FakeRuntime."""

    owner: str

    @property
    def remote(self) -> bool:
        """True when containers run on another host (no bind mounts; container access is off)."""
        ...

    def available(self) -> bool: ...

    # -- images -----------------------------------------------------------------------------------
    def image_exists(self, name: str) -> bool: ...

    def pull(self, name: str, timeout: float = 60) -> bool:
        """Try to pull `name`; False when it fails or takes longer than `timeout`."""
        ...

    # -- containers -------------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> ContainerHandle:
        """Create (not start) a container; RuntimeImageMissing / ContainerStartError."""
        ...

    def start(self, handle: ContainerHandle) -> None:
        """Start a created container; ContainerStartError (the container is then removed)."""
        ...

    def run(self, spec: ContainerSpec) -> ContainerHandle:
        """create + start."""
        ...

    def put_archive(self, handle: ContainerHandle, path: str, data: IO[bytes]) -> None:
        """Extract the tar stream `data` at `path` (an existing directory) inside the container."""
        ...

    def get_archive(self, handle: ContainerHandle, path: str, out: IO[bytes]) -> bool:
        """Write a tar of `path` (its last component as the top entry) to `out`; False if it does not exist."""
        ...

    def address(self, handle: ContainerHandle, container_port: int) -> Address:
        """Where the published `container_port` of the container is reached."""
        ...

    def stream_logs(self, handle: ContainerHandle, on_line: LineCallback,
                    since: float | None = None) -> threading.Thread:
        """Follow stdout+stderr (from `since`, epoch seconds) in a thread that ends when the container does."""
        ...

    def wait(self, handle: ContainerHandle, timeout: float | None = None) -> int | None:
        """The exit code (-1 if the container is gone), or None if still running after `timeout` (0 = look)."""
        ...

    def stop(self, handle: ContainerHandle, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        ...

    def remove(self, handle: ContainerHandle) -> None:
        """Remove the container (running or not) and its volumes; no error if it is gone."""
        ...

    def find_containers(self, labels: dict[str, str]) -> dict[str, ContainerHandle]:
        """This owner's containers carrying `labels`, by their host label (re-adoption after a restart)."""
        ...

    def list_managed(self, owner: str | None = None) -> list[ContainerHandle]: ...

    # -- networks and volumes ---------------------------------------------------------------------
    def create_network(self, name: str, labels: dict[str, str] | None = None, internal: bool = False,
                       addresses: int = 0) -> list[str]:
        """A private network; with `addresses`, a subnet of its own and that many fixed container
        addresses reserved on it (returned in order, for ContainerSpec.ip_address)."""
        ...

    def connect_network(self, handle: ContainerHandle, network: str, aliases: list[str] | None = None) -> None:
        """Attach a created container to one more network (it keeps the one it was created on)."""
        ...

    def remove_network(self, name: str) -> None: ...

    def list_networks(self, owner: str | None = None) -> list[str]: ...

    def list_volumes(self, owner: str | None = None) -> list[str]: ...

    def remove_volume(self, name: str) -> bool:
        """Remove a volume; False if it is still in use (it stays)."""
        ...

    def bridge_gateway(self) -> str | None:
        """The default bridge's gateway address (where containers reach the host), if any."""
        ...

    # -- cleaning up ------------------------------------------------------------------------------
    def cleanup(self, owner: str | None = None) -> int:
        """Remove every container, network and volume of `owner` (or of every owner); returns the count."""
        ...

    def cleanup_kind(self, kind: str) -> int:
        """Remove every container of one kind (e.g. all endpoint containers) of this owner."""
        ...

    def sweep_orphans(self, live_resources: set[str]) -> list[str]:
        """Remove this owner's networks and volumes whose resource label is not in `live_resources`."""
        ...


def remove_all(runtime: ContainerRuntime, owner: str | None) -> int:
    """Every container, network and volume of `owner` (or of every owner) removed; returns the count.
    What `ContainerRuntime.cleanup` does, written once for every runtime."""
    removed = 0
    for handle in runtime.list_managed(owner):
        runtime.remove(handle)
        removed += 1
    for name in runtime.list_networks(owner):
        runtime.remove_network(name)
        removed += 1
    for name in runtime.list_volumes(owner):
        removed += runtime.remove_volume(name)
    return removed
