"""Workspaces and runtime configuration without an engine (FakeRuntime; copy-out safety)."""

from __future__ import annotations

import io
import tarfile

import pytest

from sagemaker_emulator.config import Config
from sagemaker_emulator.runtime.docker_engine import DockerRuntime, is_remote
from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.runtime.interface import ContainerSpec
from sagemaker_emulator.runtime.workspace import CopyWorkspace, _extract_into, make_workspace


def test_copy_out_extracts_only_files_and_directories_inside(tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("model/ok.txt", b"ok"), ("model/../../escape.txt", b"x"), ("model/sub/deep.txt", b"d")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("model/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive.seek(0)
    dest = tmp_path / "out" / "model"
    _extract_into(archive, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["ok.txt", "sub", "sub/deep.txt"]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


def test_copy_in_skips_nested_mounts_and_host_links(tmp_path):
    root = tmp_path / "algo-1"
    (root / "input" / "data" / "train").mkdir(parents=True)
    (root / "input" / "data" / "train" / "a.csv").write_text("1")
    (root / "input" / "data" / "train" / "secret").symlink_to("/etc/hostname")
    fake = FakeRuntime(scripts={"img": Script(after=None)})
    spec = ContainerSpec(image="img", mounts={
        str(root / "input"): ("/opt/ml/input", "rw"),
        str(root / "input" / "data" / "train"): ("/opt/ml/input/data/train", "ro")})  # FastFile: inside the first
    handle = CopyWorkspace(fake).start(spec)
    assert fake.containers[handle.id].files == {"/opt/ml/input/data/train/a.csv": b"1"}
    assert fake.containers[handle.id].spec.mounts == {}  # nothing of the host reaches the engine
    fake.remove(handle)
    assert fake.volumes == {}


def test_push_and_collect_while_running(tmp_path):
    fake = FakeRuntime(scripts={"img": Script(after=None)})
    out = tmp_path / "out"
    out.mkdir()
    spec = ContainerSpec(image="img", mounts={str(out): ("/opt/ml/processing/out", "rw")})
    workspace = CopyWorkspace(fake)
    handle = workspace.start(spec)
    container = fake.containers[handle.id]
    fake.write_file(container, "/opt/ml/processing/out/part-1", "p1")
    workspace.collect(handle, spec, ["/opt/ml/processing/out"])
    assert (out / "part-1").read_text() == "p1"
    models = tmp_path / "m1"
    (models / "model").mkdir(parents=True)
    (models / "model" / "w.bin").write_bytes(b"w")
    workspace.push(handle, models, "/opt/ml/models/m1")
    assert container.files["/opt/ml/models/m1/model/w.bin"] == b"w"
    with pytest.raises(ValueError):
        workspace.collect(handle, spec, ["/not/a/mount"])
    fake.remove(handle)


def test_workspace_and_engine_configuration(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert Config(docker_host="", workspace="").workspace_kind() == "bind"
    assert Config(docker_host="tcp://10.0.0.5:2375", workspace="").workspace_kind() == "copy"
    assert Config(docker_host="tcp://127.0.0.1:2375", workspace="bind").workspace_kind() == "bind"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert Config(docker_host="", workspace="").workspace_kind() == "copy"
    with pytest.raises(ValueError):
        Config(workspace="nfs").workspace_kind()
    with pytest.raises(ValueError):
        make_workspace("nfs", FakeRuntime())
    assert is_remote("tcp://10.0.0.5:2375") and not is_remote("tcp://127.0.0.1:2375")
    assert not is_remote("unix:///var/run/docker.sock") and not is_remote("tcp://localhost:2375")
    assert DockerRuntime("x", docker_host="tcp://127.0.0.1:2375").public_host == "127.0.0.1"
    assert DockerRuntime("x", docker_host="unix:///var/run/docker.sock").public_host == "127.0.0.1"
