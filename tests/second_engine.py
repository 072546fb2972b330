"""A second, private Docker engine for tests: "a remote engine" that is reached over TCP only.

The tests that prove the emulator works with an engine other than the local socket (DOCKER_HOST,
copy-in workspaces, no bind mounts) need an engine whose containers cannot see the emulator's disk
through a shared daemon. This module starts one more `dockerd` next to the machine's own, which it
must not disturb:

- its own data root, exec root, pidfile, unix socket and config file, all in one temp dir, and an
  API on TCP 127.0.0.1:<free port> (loopback only, no TLS: nothing else can reach it);
- its own managed containerd (dockerd starts one under its exec root when given no `--containerd`),
  so containers, shims and snapshots never mix with the main engine's;
- its default bridge is a bridge we create (`smemu<hex>`, a /24 of 10.213.0.0/16 that no route uses)
  rather than a second `docker0`, and its user-defined networks come from the rest of that /20
  (`--default-address-pool`), so no subnet overlaps the main engine's 172.17+/16 networks;
- `--iptables=false`: a dockerd with iptables on flushes and rebuilds the shared DOCKER chains at
  start, which would break the main engine's port forwarding. Ports published on 127.0.0.1 still
  work through docker-proxy (the userland proxy, on by default). `--ip-masq=false --ip-forward=false`
  for the same reason: nothing global is touched. The one rule we add, and remove at teardown, lets
  containers of our /20 talk to each other across our bridges (the host's FORWARD policy is DROP
  and br_netfilter is on, so bridged traffic is filtered): `-s block -d block -m physdev
  --physdev-is-bridged -j ACCEPT`, at the top of FORWARD.

Teardown removes every container, volume and network, stops dockerd (which stops its containerd),
kills any of its processes still alive (found by our temp dir in their command line), unmounts
whatever is left under the temp dir, deletes the bridges and the rule, and removes the temp dir,
whatever state the test left; a run killed before its teardown is reaped by the next one
(`reap_stale`, from the `state.json` in its temp dir). Start-up takes about 2 s; loading an image
about 15 s for the base image's layers, much less for the images on top of it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

POOL = ipaddress.ip_network("10.213.0.0/16")  # split into /20 blocks, one per engine
PREFIX = "sm-second-engine-"


def unavailable() -> str | None:
    """Why no second dockerd can be started on this machine, or None."""
    if os.geteuid() != 0:
        return "a second dockerd needs root (it mounts, creates a bridge and a network namespace per container)"
    for tool in ("dockerd", "docker-proxy", "ip", "docker"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _routes() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True)
    found = []
    for route in json.loads(out.stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            try:
                found.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                continue
    return found


def _taken_blocks() -> set[str]:
    """Blocks of the other second engines alive on this machine (their state files)."""
    taken = set()
    for state in Path(tempfile.gettempdir()).glob(PREFIX + "*/state.json"):
        try:
            taken.add(json.loads(state.read_text())["block"])
        except (OSError, ValueError, KeyError):
            continue
    return taken


def _pick_block() -> ipaddress.IPv4Network:
    routes, taken = _routes(), _taken_blocks()
    blocks = [b for b in POOL.subnets(new_prefix=20)
              if str(b) not in taken and not any(b.overlaps(r) for r in routes)]
    if not blocks:
        raise RuntimeError(f"no free /20 in {POOL} for a second Docker engine")
    return random.choice(blocks)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


class SecondEngine:
    """One private dockerd; `start()` then `url` / `client`; `close()` leaves nothing behind."""

    def __init__(self, state_dir: Path | None = None) -> None:
        """A new engine (nothing started yet), or, with `state_dir`, the remains of an old one to `close()`."""
        if state_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=PREFIX))
            self.block = _pick_block()
            self.bridge = "smemu" + os.urandom(4).hex()
            self._write_state()
        else:
            self.dir = state_dir
            state = json.loads((state_dir / "state.json").read_text())
            self.block, self.bridge = ipaddress.ip_network(state["block"]), state["bridge"]
        subnets = list(self.block.subnets(new_prefix=21))
        self.bridge_net = next(subnets[0].subnets(new_prefix=24))  # the default bridge
        self.pool = subnets[1]  # user-defined networks, /24 each
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._client: docker.DockerClient | None = None
        self._rule = ["FORWARD", "-s", str(self.block), "-d", str(self.block), "-m", "physdev",
                      "--physdev-is-bridged", "-j", "ACCEPT"]
        self._rule_added = state_dir is not None  # an old engine's rule may be there: delete it if so

    def _write_state(self, pid: int | None = None) -> None:
        (self.dir / "state.json").write_text(json.dumps({"block": str(self.block), "bridge": self.bridge,
                                                         "pid": pid}))

    @property
    def url(self) -> str:
        """The engine's API, for DOCKER_HOST / docker -H / the emulator's --docker-host."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.url, timeout=120)
        return self._client

    @property
    def gateway(self) -> str:
        """The default bridge's address on the host (where containers reach host services)."""
        return str(next(self.bridge_net.hosts()))

    def start(self, timeout: float = 60) -> SecondEngine:
        gateway = f"{self.gateway}/{self.bridge_net.prefixlen}"
        for args in (["link", "add", "name", self.bridge, "type", "bridge"],
                     ["addr", "add", gateway, "dev", self.bridge], ["link", "set", self.bridge, "up"]):
            done = _run("ip", *args)
            if done.returncode:
                raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        if shutil.which("iptables") and _run("iptables", "-I", *self._rule).returncode == 0:
            self._rule_added = True
        (self.dir / "daemon.json").write_text("{}")  # not /etc/docker/daemon.json: nothing of the main engine
        for _attempt in range(3):  # the free port may be taken between the probe and dockerd's bind
            self.port = _free_port()
            if self._launch(timeout):
                return self
        raise RuntimeError("the second dockerd did not start:\n" + self.log_tail())

    def _launch(self, timeout: float) -> bool:
        d = self.dir
        cmd = ["dockerd", "--config-file", str(d / "daemon.json"), "--data-root", str(d / "data"),
               "--exec-root", str(d / "exec"), "--pidfile", str(d / "docker.pid"),
               "-H", f"unix://{d / 'docker.sock'}", "-H", f"tcp://127.0.0.1:{self.port}",
               "--bridge", self.bridge, "--default-address-pool", f"base={self.pool},size=24",
               "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--ip6tables=false",
               "--storage-driver", "overlay2", "--log-driver", "json-file", "--shutdown-timeout", "5"]
        log = open(d / "dockerd.log", "ab")  # the child keeps its own copy of the descriptor
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        self._write_state(self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._stop_daemon()
                return False
            try:
                docker.DockerClient(base_url=self.url, timeout=5).ping()
                return True
            except Exception:
                time.sleep(0.25)
        self._stop_daemon()
        return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "dockerd.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def has_image(self, tag: str) -> bool:
        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def load_images(self, *tags: str) -> None:
        """Copy images from the main engine: `docker save <tag> | docker -H <url> load`."""
        for tag in tags:
            if self.has_image(tag):
                continue
            save = subprocess.Popen(["docker", "-H", "unix:///var/run/docker.sock", "save", tag],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            load = subprocess.run(["docker", "-H", self.url, "load", "-q"], stdin=save.stdout,
                                  capture_output=True, text=True, timeout=600)
            save.stdout.close()
            save_err = save.stderr.read().decode(errors="replace")
            if save.wait(timeout=60) or load.returncode:
                raise RuntimeError(f"loading {tag} into the second engine failed: {save_err} {load.stderr}")

    def remove_all(self) -> None:
        """Every container, volume and user-defined network of this engine."""
        for container in self.client.containers.list(all=True):
            container.remove(force=True, v=True)
        for volume in self.client.volumes.list():
            volume.remove(force=True)
        for network in self.client.networks.list():
            if network.name not in ("bridge", "host", "none"):
                network.remove()

    def _stop_daemon(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        self._kill_strays()

    def _strays(self) -> list[int]:
        """Pids of processes of this engine still alive (containerd, shims): our dir is in their argv."""
        mark = str(self.dir).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if mark in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def _kill_strays(self) -> None:
        for pid in self._strays():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self._strays() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _container_ids(self) -> list[str]:
        folder = self.dir / "data" / "containers"
        return [p.name for p in folder.iterdir()] if folder.is_dir() else []

    def _container_processes(self, ids: list[str]) -> list[int]:
        """Pids in the cgroups of containers `ids`: alive only if dockerd died without stopping them."""
        if not ids:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    text = (entry / "cgroup").read_text()
                except OSError:
                    continue
                if any(f"/{cid}" in text for cid in ids):
                    pids.append(int(entry.name))
        return pids

    def _kill_containers(self, ids: list[str]) -> None:
        """SIGKILL what runs in the containers `ids`, then remove their (then empty) cgroups."""
        for pid in self._container_processes(ids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self._container_processes(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for cid in ids:  # cgroup v1 (one tree per controller) or v2, under the cgroupfs driver's /docker
            root = Path("/sys/fs/cgroup")
            for group in [*root.glob(f"*/docker/{cid}"), *root.glob(f"docker/{cid}")]:
                try:
                    group.rmdir()
                except OSError:
                    pass

    def mounts(self) -> list[str]:
        """Mount points under the temp dir, deepest first."""
        prefix = str(self.dir)
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
        return sorted(set(points), key=len, reverse=True)

    def interfaces(self) -> list[str]:
        """Host interfaces of this engine: our bridge, and any bridge holding an address of our block."""
        out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True).stdout
        names = set()
        for link in json.loads(out or "[]"):
            for addr in link.get("addr_info", []):
                if ipaddress.ip_address(addr["local"]) in self.block:
                    names.add(link["ifname"])
        if _run("ip", "link", "show", self.bridge).returncode == 0:
            names.add(self.bridge)
        return sorted(names)

    def close(self) -> list[str]:
        """Tear everything down; returns what could not be removed (empty when clean)."""
        problems = []
        ids = self._container_ids()
        if self.process is not None and self.process.poll() is None:
            try:
                self.remove_all()
            except Exception as exc:  # a wedged daemon: the steps below still clean up
                problems.append(f"removing containers: {exc}")
        if self._client is not None:
            self._client.close()
            self._client = None
        self._stop_daemon()
        self._kill_strays()
        self._kill_containers(ids)
        for point in self.mounts():
            if _run("umount", point).returncode:
                _run("umount", "-l", point)
        if self._rule_added and shutil.which("iptables"):
            while _run("iptables", "-D", *self._rule).returncode == 0:
                pass
            self._rule_added = False
        for name in self.interfaces():
            _run("ip", "link", "del", name)
        shutil.rmtree(self.dir, ignore_errors=True)
        problems += [f"mount left: {p}" for p in self.mounts()] + [f"process left: {p}" for p in self._strays()]
        problems += [f"interface left: {n}" for n in self.interfaces()]
        problems += [f"container process left: {p}" for p in self._container_processes(ids)]
        if self.dir.exists():
            problems.append(f"dir left: {self.dir}")
        return problems

    def __enter__(self) -> SecondEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def reap_stale() -> list[str]:
    """Tear down the engines of earlier test runs that died without their teardown (kill -9): those
    whose dockerd is gone (or never started). A live engine, e.g. a parallel run's, is left alone."""
    reaped = []
    for state in Path(tempfile.gettempdir()).glob(PREFIX + "*/state.json"):
        try:
            pid = json.loads(state.read_text()).get("pid")
            old = state.stat().st_mtime < time.time() - 120  # not one being started right now
        except (OSError, ValueError):
            continue
        if old and not _alive(pid):
            engine = SecondEngine(state_dir=state.parent)
            engine.close()
            reaped.append(str(state.parent))
    return reaped


def start_second_engine() -> SecondEngine:
    """A started engine, or a pytest skip when this machine cannot run a second dockerd at all."""
    reason = unavailable()
    if reason:
        pytest.skip(f"no second Docker engine: {reason}")
    reap_stale()
    engine = SecondEngine()
    try:
        return engine.start()
    except Exception:
        engine.close()
        raise


@pytest.fixture(scope="session")
def second_engine(docker_ready) -> Iterator[SecondEngine]:
    """A private dockerd on tcp://127.0.0.1:<port>, shared by the session; torn down at its end.

    Tests load the images they need (`second_engine.load_images(tag)`) and remove their containers
    (`second_engine.remove_all()` when they are done, or rely on the session's teardown).
    """
    engine = start_second_engine()
    yield engine
    problems = engine.close()
    assert not problems, f"the second engine left things behind: {problems}"
