"""`DockerRuntime`: the `ContainerRuntime` of a Docker engine, local (Unix socket) or remote (tcp://).

The only module (with docker_logs.py) that speaks to Docker. Every container, network and volume it
creates carries our labels, so a restarted emulator can find and re-adopt its containers and
`cleanup` can remove everything we ever started. Ports are published on the engine host's address
(127.0.0.1 for a local engine); containers are never privileged and never get the Docker socket.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import socket
import threading
import urllib.parse
from typing import IO

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import IPAMConfig, IPAMPool, Mount

from . import interface
from .docker_logs import body_blocks, log_lines, open_log_stream, parse_timestamp
from .interface import (
    ContainerHandle,
    ContainerStartError,
    RuntimeUnavailable,
)

log = logging.getLogger(__name__)

_SOCKET_PATHS = ("/var/run/docker.sock", "/run/docker.sock")
# where clusters' networks take their /24s (outside Docker's default pools 172.17-31/16 and 192.168/16)
NETWORK_POOL = "10.215.0.0/16"
DEFAULT_HOST = "unix:///var/run/docker.sock"


def docker_host_of(value: str | None) -> str:
    """The engine URL: `value`, else DOCKER_HOST, else the local socket."""
    return value or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def is_remote(docker_host: str) -> bool:
    """A tcp:// engine not on loopback runs its containers on another machine."""
    if not docker_host.startswith(("tcp://", "http://", "https://")):
        return False
    host = urllib.parse.urlsplit(docker_host).hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class DockerRuntime:
    def __init__(self, owner: str, client: docker.DockerClient | None = None, docker_host: str | None = None) -> None:
        self.owner = owner
        self._explicit = bool(docker_host)
        self.docker_host = docker_host_of(docker_host)
        self._client = client
        self._lock = threading.Lock()
        host = urllib.parse.urlsplit(self.docker_host).hostname if "://" in self.docker_host else None
        if self.docker_host.startswith("unix://") or not host:
            self.public_host = "127.0.0.1"
        else:
            try:
                self.public_host = socket.gethostbyname(host)
            except OSError:
                self.public_host = host

    @property
    def remote(self) -> bool:
        return is_remote(self.docker_host)

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = docker.DockerClient(base_url=self.docker_host, timeout=120) if self._explicit \
                        else docker.from_env(timeout=120)  # DOCKER_HOST and DOCKER_TLS_* as the docker CLI reads them
                    self._client.ping()
                except DockerException as exc:
                    self._client = None
                    raise RuntimeUnavailable(f"No Docker engine answers at {self.docker_host}: {exc}") from exc
            return self._client

    def available(self) -> bool:
        try:
            return bool(self.client.ping())
        except (RuntimeUnavailable, DockerException):
            return False

    def _labels(self, extra: dict[str, str]) -> dict[str, str]:
        return {interface.MANAGED: "true", interface.OWNER: self.owner, **extra}

    def _owned(self, owner: str | None, *more: str) -> dict:
        return {"label": [interface.MANAGED + "=true"] + ([f"{interface.OWNER}={owner}"] if owner else []) + list(more)}

    # -- images -----------------------------------------------------------------------------------
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

    # -- containers -------------------------------------------------------------------------------
    def create(self, spec: interface.ContainerSpec) -> ContainerHandle:
        """Create a container from `spec` (bind mounts, fresh labelled volumes, published ports)."""
        labels = self._labels(spec.labels)
        mounts = []
        for host, (target, mode) in spec.mounts.items():
            if host in _SOCKET_PATHS or target in _SOCKET_PATHS:
                raise ValueError("containers never get the Docker socket")
            mounts.append(Mount(target=target, source=host, type="bind", read_only=(mode == "ro")))
        for target in spec.volumes:  # anonymous: `remove(v=True)` removes them with the container
            mounts.append(Mount(target=target, source=None, type="volume", labels=labels))
        for volume, target in spec.shared_volumes.items():
            mounts.append(Mount(target=target, source=volume, type="volume", labels=labels))
        kwargs: dict = {
            "image": spec.image, "command": spec.command, "entrypoint": spec.entrypoint,
            "environment": spec.environment, "labels": labels, "name": spec.name,
            "hostname": spec.hostname, "mounts": mounts, "detach": True, "privileged": False,
            "working_dir": spec.working_dir,
            "ports": {f"{p}/tcp": (self.public_host, None) for p in spec.ports} or None,
            "extra_hosts": spec.extra_hosts or None,
        }
        if spec.network_disabled:
            kwargs["network_mode"] = "none"
        elif spec.network and spec.network.startswith("container:"):
            kwargs["network_mode"] = spec.network
        elif spec.network:
            kwargs["network"] = spec.network
        if spec.cpus:
            kwargs["nano_cpus"] = int(spec.cpus * 1e9)
        if spec.memory_gib:
            kwargs["mem_limit"] = int(spec.memory_gib * 1024 ** 3)
        try:
            container = self.client.containers.create(**{k: v for k, v in kwargs.items() if v is not None})
        except ImageNotFound as exc:
            raise interface.RuntimeImageMissing(spec.image) from exc
        except APIError as exc:
            raise ContainerStartError(f"Docker could not create a container from {spec.image}: "
                                      f"{exc.explanation or exc}") from None
        handle = ContainerHandle(container.id, container.name, labels)
        if spec.network and (spec.network_aliases or spec.ip_address) and not spec.network_disabled:
            try:
                net = self.client.networks.get(spec.network)
                net.disconnect(container)
                net.connect(container, aliases=spec.network_aliases, ipv4_address=spec.ip_address)
            except Exception:
                self.remove(handle)
                raise
        return handle

    def start(self, handle: ContainerHandle) -> None:
        try:
            self.client.api.start(handle.id)
        except APIError as exc:
            self.remove(handle)
            raise ContainerStartError(f"Docker could not start the container {handle.name}: "
                                      f"{exc.explanation or exc}") from None
        except Exception:
            self.remove(handle)
            raise

    def run(self, spec: interface.ContainerSpec) -> ContainerHandle:
        """Create and start a detached container from `spec`."""
        handle = self.create(spec)
        self.start(handle)
        return handle

    def put_archive(self, handle: ContainerHandle, path: str, data: IO[bytes]) -> None:
        try:
            self.client.api.put_archive(handle.id, path, data)
        except APIError as exc:
            raise ContainerStartError(f"Docker could not copy files into {handle.name}:{path}: "
                                      f"{exc.explanation or exc}") from None

    def get_archive(self, handle: ContainerHandle, path: str, out: IO[bytes]) -> bool:
        try:
            stream, _stat = self.client.api.get_archive(handle.id, path, chunk_size=1 << 20)
            for block in stream:
                out.write(block)
        except NotFound:
            return False
        return True

    def address(self, handle: ContainerHandle, container_port: int) -> interface.Address:
        container = self.client.containers.get(handle.id)
        bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{container_port}/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") in (self.public_host, "", "0.0.0.0"):
                return interface.Address(self.public_host, int(binding["HostPort"]))
        raise RuntimeError(f"port {container_port} of {handle.name} is not published")

    def stream_logs(self, handle: ContainerHandle, on_line: interface.LineCallback,
                    since: float | None = None) -> threading.Thread:
        """Follow stdout+stderr with timestamps in a thread that ends when the container does."""
        def follow() -> None:
            try:
                sock, chunked = open_log_stream(self.docker_host, handle.id, since)
            except (OSError, ValueError) as exc:
                log.debug("no log stream of %s: %s", handle.name, exc)
                return
            try:
                for stream, raw in log_lines(body_blocks(sock.read_some, chunked)):
                    text = raw.decode("utf-8", errors="replace").rstrip("\r")
                    stamp, _, line = text.partition(" ")
                    on_line(parse_timestamp(stamp), line, stream)
            except (OSError, ValueError) as exc:
                log.debug("log stream of %s ended: %s", handle.name, exc)
            finally:
                sock.close()

        thread = threading.Thread(target=follow, name=f"docker-logs:{handle.name}", daemon=True)
        thread.start()
        return thread

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

    def find_containers(self, labels: dict[str, str]) -> dict[str, ContainerHandle]:
        """Our containers carrying `labels`, by their host label (for re-adoption after a restart)."""
        filters = self._owned(self.owner, *[f"{k}={v}" for k, v in labels.items()])
        found = {}
        for container in self.client.containers.list(all=True, filters=filters):
            host = container.labels.get(interface.HOST_LABEL, container.name)
            found[host] = ContainerHandle(container.id, container.name, container.labels)
        return found

    def list_managed(self, owner: str | None = None) -> list[ContainerHandle]:
        return [ContainerHandle(c.id, c.name, c.labels)
                for c in self.client.containers.list(all=True, filters=self._owned(owner))]

    # -- networks and volumes ---------------------------------------------------------------------
    def create_network(self, name: str, labels: dict[str, str] | None = None, internal: bool = False,
                       addresses: int = 0) -> list[str]:
        """Docker gives fixed addresses only on networks with a subnet of their own: one /24 of
        NETWORK_POOL that no other network of this engine overlaps (the engine refuses an overlap)."""
        if not addresses:
            self.client.networks.create(name, driver="bridge", internal=internal, labels=self._labels(labels or {}))
            return []
        blocks = list(ipaddress.IPv4Network(NETWORK_POOL).subnets(new_prefix=24))
        first = random.randrange(len(blocks))
        for subnet in blocks[first:] + blocks[:first]:
            hosts = list(subnet.hosts())  # .1 is the gateway
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=str(hosts[0]))])
            try:
                self.client.networks.create(name, driver="bridge", internal=internal, ipam=ipam,
                                            labels=self._labels(labels or {}))
            except APIError as exc:
                if "overlap" in str(exc).lower():
                    continue
                raise
            return [str(address) for address in hosts[1:addresses + 1]]
        raise ContainerStartError(f"no free /24 left in {NETWORK_POOL} for network {name}")

    def connect_network(self, handle: ContainerHandle, network: str, aliases: list[str] | None = None) -> None:
        self.client.networks.get(network).connect(handle.id, aliases=aliases)

    def remove_network(self, name: str) -> None:
        try:
            self.client.networks.get(name).remove()
        except NotFound:
            pass

    def list_networks(self, owner: str | None = None) -> list[str]:
        return [n.name for n in self.client.networks.list(filters=self._owned(owner))]

    def list_volumes(self, owner: str | None = None) -> list[str]:
        return [v.name for v in self.client.volumes.list(filters=self._owned(owner))]

    def remove_volume(self, name: str) -> bool:
        try:
            self.client.volumes.get(name).remove()
            return True
        except NotFound:
            return True
        except APIError as exc:  # still in use by a container
            log.info("volume %s not removed: %s", name, exc)
            return False

    def bridge_gateway(self) -> str | None:
        """The default bridge network's gateway address (usually 172.17.0.1), if Docker answers."""
        try:
            network = self.client.networks.get("bridge")
            for entry in network.attrs.get("IPAM", {}).get("Config") or []:
                if entry.get("Gateway"):
                    return str(ipaddress.ip_address(entry["Gateway"]))
                if entry.get("Subnet"):  # engines that omit the gateway give docker0 the subnet's first address
                    return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
        except Exception as exc:  # no engine, no bridge: containers then simply get no endpoint
            log.info("no Docker bridge gateway found (%s)", exc)
        return None

    # -- cleaning up ------------------------------------------------------------------------------
    def cleanup(self, owner: str | None = None) -> int:
        """Remove every container, network and volume we started (of `owner`, or all); returns the count."""
        return interface.remove_all(self, owner)

    def cleanup_kind(self, kind: str) -> int:
        """Remove every container of one kind (e.g. all endpoint containers) of this owner."""
        removed = 0
        owned = self._owned(self.owner, f"{interface.KIND_LABEL}={kind}")
        for container in self.client.containers.list(all=True, filters=owned):
            container.remove(force=True, v=True)
            removed += 1
        return removed

    def sweep_orphans(self, live_resources: set[str]) -> list[str]:
        """This owner's networks and volumes of no live resource (a kill -9 leaves them behind)."""
        removed = []
        for network in self.client.networks.list(filters=self._owned(self.owner)):
            if (network.attrs.get("Labels") or {}).get(interface.RESOURCE_LABEL) not in live_resources:
                self.remove_network(network.name)
                removed.append(network.name)
        for volume in self.client.volumes.list(filters=self._owned(self.owner)):
            if (volume.attrs.get("Labels") or {}).get(interface.RESOURCE_LABEL) not in live_resources:
                if self.remove_volume(volume.name):
                    removed.append(volume.name)
        return removed
