"""The second Docker engine harness (tests/second_engine.py): it works, and it leaves nothing behind."""

from __future__ import annotations

import ipaddress
import os
import time
import urllib.request
from pathlib import Path

import docker

from sagemaker_emulator.testing import BASE_IMAGE

from .second_engine import SecondEngine, reap_stale, start_second_engine

SERVE = ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"]


def _get(url: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _on_main_engine(container_id: str) -> bool:
    main = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    try:
        main.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False
    finally:
        main.close()


def test_a_container_on_the_second_engine_is_reached_on_a_loopback_port(second_engine: SecondEngine) -> None:
    second_engine.load_images(BASE_IMAGE)
    container = second_engine.client.containers.run(BASE_IMAGE, SERVE, detach=True,
                                                    ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        container.reload()
        binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1"
        assert _get(f"http://127.0.0.1:{binding['HostPort']}/") == 200
        # it is the second engine's container, on its own bridge, not the main engine's
        address = container.attrs["NetworkSettings"]["IPAddress"]
        assert address.startswith(second_engine.gateway.rsplit(".", 1)[0] + ".")
        assert not _on_main_engine(container.id)
    finally:
        container.remove(force=True)


def test_containers_of_a_user_defined_network_reach_each_other_and_the_host(second_engine: SecondEngine) -> None:
    second_engine.load_images(BASE_IMAGE)
    network = second_engine.client.networks.create("smemu-test-net", driver="bridge")
    server = second_engine.client.containers.run(BASE_IMAGE, SERVE, detach=True, name="smemu-peer",
                                                 network=network.name)
    try:
        probe = ("import time, urllib.request\n"
                 "for _ in range(100):\n"
                 "    try:\n"
                 "        print(urllib.request.urlopen('http://smemu-peer:8080/', timeout=2).status); break\n"
                 "    except OSError: time.sleep(0.2)\n")
        out = second_engine.client.containers.run(BASE_IMAGE, ["python3", "-c", probe], network=network.name,
                                                  remove=True)
        assert out.decode().strip() == "200"
        subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
        assert ipaddress.ip_network(subnet).subnet_of(second_engine.pool)
    finally:
        server.remove(force=True)
        network.remove()


def test_teardown_leaves_nothing_behind(docker_ready) -> None:
    engine = start_second_engine()
    root, bridge = Path(engine.dir), engine.bridge
    engine.load_images(BASE_IMAGE)
    engine.client.volumes.create("smemu-test-volume")
    engine.client.networks.create("smemu-test-net2", driver="bridge")
    sleeper = engine.client.containers.run(BASE_IMAGE, ["sleep", "600"], detach=True,
                                 volumes={"smemu-test-volume": {"bind": "/data", "mode": "rw"}},
                                 ports={"8080/tcp": ("127.0.0.1", None)})
    assert engine.mounts() and engine.interfaces()
    problems = engine.close()
    assert problems == []
    assert not root.exists()
    assert engine.mounts() == [] and engine.interfaces() == [] and engine._strays() == []
    assert bridge not in Path("/proc/net/dev").read_text()
    assert not _on_main_engine(sleeper.id)


def test_an_engine_whose_test_run_was_killed_is_reaped_by_the_next_one(docker_ready) -> None:
    engine = start_second_engine()
    engine.load_images(BASE_IMAGE)
    sleeper = engine.client.containers.run(BASE_IMAGE, ["sleep", "600"], detach=True)
    ids = [sleeper.id]
    assert engine._container_processes(ids)
    engine.process.kill()  # the test run dies with its dockerd: containerd, shims and containers remain
    engine.process.wait()
    engine.process = None
    assert engine._strays() and engine.mounts()
    state = engine.dir / "state.json"
    os.utime(state, (time.time() - 600, time.time() - 600))
    assert str(engine.dir) in reap_stale()
    assert not engine.dir.exists()
    assert engine.mounts() == [] and engine.interfaces() == [] and engine._strays() == []
    assert engine._container_processes(ids) == []
    assert not list(Path("/sys/fs/cgroup").glob(f"*/docker/{sleeper.id}"))
