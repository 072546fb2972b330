"""The shared container runtime against a real Docker engine and the offline base image."""

from __future__ import annotations

import time
import urllib.request

import pytest

from sagemaker_emulator.runtime.interface import ContainerSpec, RuntimeImageMissing

from .docker_fixtures import BASE_IMAGE


def collect(rt, handle):
    lines: list[tuple[float, str]] = []
    thread = rt.stream_logs(handle, lambda ts, line, _s: lines.append((ts, line)))
    return lines, thread


def test_run_stream_and_exit_code(runtime):
    script = "import sys,time\nfor i in range(3):\n print('out', i, flush=True); time.sleep(0.05)\n" \
             "print('err line', file=sys.stderr, flush=True)\nsys.exit(3)"
    handle = runtime.run(ContainerSpec(image=BASE_IMAGE, command=["python3", "-c", script],
                                       labels={"sagemaker-emulator.kind": "test"}))
    lines, thread = collect(runtime, handle)
    assert runtime.wait(handle, timeout=60) == 3
    thread.join(10)
    assert [line for _, line in lines] == ["out 0", "out 1", "out 2", "err line"]
    stamps = [ts for ts, _ in lines]
    assert stamps == sorted(stamps) and abs(stamps[0] - time.time()) < 60
    runtime.remove(handle)


def test_published_port_on_loopback(runtime):
    handle = runtime.run(ContainerSpec(image=BASE_IMAGE, command=["python3", "-m", "http.server", "8080"],
                                       ports=[8080]))
    address = runtime.address(handle, 8080)
    assert address.host == "127.0.0.1"  # a local engine: published on loopback
    deadline = time.time() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://{address.host}:{address.port}/", timeout=2) as resp:
                assert resp.status == 200
                break
        except OSError:
            assert time.time() < deadline, "the container's server never answered"
            time.sleep(0.1)
    runtime.remove(handle)


def test_stop_grace(runtime):
    polite = "import signal,sys,time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n" \
             "print('ready', flush=True)\ntime.sleep(600)"
    stubborn = "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n" \
               "time.sleep(600)"
    handles = [runtime.run(ContainerSpec(image=BASE_IMAGE, command=["python3", "-c", s])) for s in (polite, stubborn)]
    for h in handles:
        lines, _ = collect(runtime, h)
        deadline = time.time() + 20
        while not lines and time.time() < deadline:
            time.sleep(0.05)
    started = time.time()
    runtime.stop(handles[0], grace=30)
    assert runtime.wait(handles[0], timeout=5) == 0 and time.time() - started < 10
    started = time.time()
    runtime.stop(handles[1], grace=1)
    assert runtime.wait(handles[1], timeout=5) == 137 and time.time() - started < 15
    for h in handles:
        runtime.remove(h)


def test_network_disabled_has_only_loopback(runtime):
    listing = "import os; print(sorted(os.listdir('/sys/class/net')))"
    handle = runtime.run(ContainerSpec(image=BASE_IMAGE, network_disabled=True, command=["python3", "-c", listing]))
    lines, thread = collect(runtime, handle)
    assert runtime.wait(handle, timeout=60) == 0
    thread.join(10)
    assert lines[-1][1] == "['lo']"
    runtime.remove(handle)


def test_hosts_resolve_each_other_on_a_private_network(runtime):
    network = f"sm-test-{runtime.owner}"
    runtime.create_network(network)
    code = "import socket,time\nfor _ in range(50):\n try:\n  print(socket.gethostbyname('algo-2')); break\n" \
           " except OSError: time.sleep(0.1)\n"
    peer = runtime.run(ContainerSpec(image=BASE_IMAGE, command=["sleep", "30"], network=network, hostname="algo-2",
                                     network_aliases=["algo-2"]))
    asker = runtime.run(ContainerSpec(image=BASE_IMAGE, command=["python3", "-c", code], network=network,
                                      hostname="algo-1", network_aliases=["algo-1"]))
    lines, thread = collect(runtime, asker)
    assert runtime.wait(asker, timeout=60) == 0
    thread.join(10)
    assert lines and lines[-1][1].count(".") == 3  # an address was resolved (no traffic sent)
    for h in (asker, peer):
        runtime.remove(h)
    runtime.remove_network(network)


def test_docker_socket_never_mounted(runtime):
    with pytest.raises(ValueError, match="Docker socket"):
        runtime.run(ContainerSpec(image=BASE_IMAGE, mounts={"/var/run/docker.sock": ("/var/run/docker.sock", "rw")}))


def test_missing_image_fails_fast(runtime):
    started = time.time()
    with pytest.raises(RuntimeImageMissing, match="no-such-image"):
        runtime.run(ContainerSpec(image="no-such-image:never"))
    assert time.time() - started < 10
    assert not runtime.image_exists("no-such-image:never")


def test_cleanup_removes_everything_of_the_owner(runtime):
    runtime.create_network(f"sm-cleanup-{runtime.owner}")
    handle = runtime.run(ContainerSpec(image=BASE_IMAGE, command=["sleep", "60"]))
    assert runtime.find_containers({}) and handle.id in [h.id for h in runtime.list_managed(runtime.owner)]
    assert runtime.cleanup(runtime.owner) == 2
    assert runtime.list_managed(runtime.owner) == [] and runtime.list_networks(runtime.owner) == []


def test_copy_workspace_round_trip(runtime, tmp_path):
    """Files reach the container through the engine API (no bind mount) and results come back."""
    from sagemaker_emulator.runtime.workspace import CopyWorkspace

    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "config" / "hp.json").write_text('{"a": 1}')
    (tmp_path / "model").mkdir()
    script = "import pathlib\np = pathlib.Path('/opt/ml/input/config/hp.json').read_text()\n" \
             "pathlib.Path('/opt/ml/model/sub').mkdir()\npathlib.Path('/opt/ml/model/sub/out.txt').write_text(p)"
    spec = ContainerSpec(image=BASE_IMAGE, command=["python3", "-c", script],
                         mounts={str(tmp_path / "input"): ("/opt/ml/input", "rw"),
                                 str(tmp_path / "model"): ("/opt/ml/model", "rw")})
    workspace = CopyWorkspace(runtime)
    handle = workspace.start(spec)
    assert runtime.list_volumes(runtime.owner)  # the container's /opt/ml is a labelled volume
    assert runtime.wait(handle, timeout=60) == 0
    workspace.collect(handle, spec, ["/opt/ml/model"])
    assert (tmp_path / "model" / "sub" / "out.txt").read_text() == '{"a": 1}'
    runtime.remove(handle)
    assert runtime.list_volumes(runtime.owner) == []  # removed with the container
