"""Workspaces: how the host directory tree an engine stages appears at /opt/ml/... in a container.

Engines always stage into a host directory (`ContainerSpec.mounts`: host dir -> container path)
and read results from there. The workspace makes that true for a container:

- `BindWorkspace` (default for a local engine): the directories are bind-mounted; the container
  and the emulator share them live, nothing is copied.
- `CopyWorkspace` (default for a tcp:// engine, which may be on another host where our paths do
  not exist): the container gets a fresh engine volume at /opt/ml (labelled like the container and
  removed with it), is created, filled with `put_archive`, then started; after it exits (or, for
  Continuous processing outputs, while it runs) the listed output paths are read back with
  `get_archive` into their host directories. Files added after the start (multi-model endpoints
  loading a model) are `push`ed. Pipe mode cannot work this way (its FIFOs are fed from the host
  while the container reads): `refusal("Pipe")` is the failure reason the job gets.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Protocol

from .interface import ContainerHandle, ContainerRuntime, ContainerSpec

log = logging.getLogger(__name__)

SPOOL_BYTES = 8 << 20  # archives up to this size stay in memory
VOLUME_ROOT = "/opt/ml"


class Workspace(Protocol):
    kind: str

    def start(self, spec: ContainerSpec) -> ContainerHandle:
        """Create the container with its files in place and start it."""
        ...

    def collect(self, handle: ContainerHandle, spec: ContainerSpec, paths: Iterable[str]) -> None:
        """Bring the container paths `paths` (mount points of `spec`) back into their host directories."""
        ...

    def push(self, handle: ContainerHandle, host_path: Path, container_path: str) -> None:
        """Make a host tree written after the start appear at `container_path` in the running container."""
        ...

    def refusal(self, feature: str) -> str | None:
        """A failure reason if this workspace cannot support `feature` ("Pipe"), else None."""
        ...


class BindWorkspace:
    """Host bind mounts: today's behaviour; the container shares the host directories live."""

    kind = "bind"

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime

    def start(self, spec: ContainerSpec) -> ContainerHandle:
        return self.runtime.run(spec)

    def collect(self, handle: ContainerHandle, spec: ContainerSpec, paths: Iterable[str]) -> None:
        return None  # already there

    def push(self, handle: ContainerHandle, host_path: Path, container_path: str) -> None:
        return None  # already there

    def refusal(self, feature: str) -> str | None:
        return None


class CopyWorkspace:
    """Copy-in before the start, copy-out after: works against a Docker engine on another host."""

    kind = "copy"

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime

    def start(self, spec: ContainerSpec) -> ContainerHandle:
        copied = replace(spec, mounts={}, volumes=[*spec.volumes, VOLUME_ROOT])
        handle = self.runtime.create(copied)
        try:
            with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as archive:
                with tarfile.open(fileobj=archive, mode="w") as tar:
                    for host, target in _outermost(spec.mounts):
                        _add_tree(tar, Path(host), target)
                archive.seek(0)
                self.runtime.put_archive(handle, "/", archive)
            self.runtime.start(handle)
        except BaseException:
            self.runtime.remove(handle)
            raise
        return handle

    def collect(self, handle: ContainerHandle, spec: ContainerSpec, paths: Iterable[str]) -> None:
        hosts = {target: host for host, (target, _mode) in spec.mounts.items()}
        for path in paths:
            host = hosts.get(path)
            if host is None:
                raise ValueError(f"{path} is not a mount point of the container")
            with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as archive:
                if not self.runtime.get_archive(handle, path, archive):
                    continue  # the container removed it (or never had it): nothing to bring back
                archive.seek(0)
                _extract_into(archive, Path(host))

    def push(self, handle: ContainerHandle, host_path: Path, container_path: str) -> None:
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                _add_tree(tar, host_path, container_path)
            archive.seek(0)
            self.runtime.put_archive(handle, "/", archive)

    def refusal(self, feature: str) -> str | None:
        if feature == "Pipe":
            return ("ClientError: Pipe input mode needs the host's FIFOs bind-mounted into the container, and this "
                    "emulator copies files in and out through the Docker engine API (workspace 'copy', the default "
                    "for a tcp:// Docker host). Use File or FastFile input mode, or run with --workspace bind on "
                    "a local engine.")
        return None


def make_workspace(kind: str, runtime: ContainerRuntime) -> Workspace:
    if kind == "copy":
        return CopyWorkspace(runtime)
    if kind == "bind":
        return BindWorkspace(runtime)
    raise ValueError(f"unknown workspace {kind!r} (bind or copy)")


def _outermost(mounts: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    """(host dir, container path) of every mount not already inside another one (same relative place)."""
    items = sorted(((host, target) for host, (target, _mode) in mounts.items()), key=lambda m: len(m[1]))
    kept: list[tuple[str, str]] = []
    for host, target in items:
        covered = False
        for outer_host, outer_target in kept:
            outer = PurePosixPath(outer_target)
            if outer in PurePosixPath(target).parents:
                inside = Path(outer_host) / PurePosixPath(target).relative_to(outer)
                covered = Path(host).resolve() == inside.resolve()
                if covered:
                    break
        if not covered:
            kept.append((host, target))
    return kept


def _add_tree(tar: tarfile.TarFile, root: Path, target: str) -> None:
    """`root`'s regular files and directories at `target` (no links, devices or FIFOs: nothing that
    could point outside the tree)."""
    arc = target.strip("/")
    tar.add(str(root), arcname=arc, recursive=False)
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel = base.relative_to(root)
        for name in sorted(dirnames):
            if not (base / name).is_symlink():
                tar.add(str(base / name), arcname=str(PurePosixPath(arc) / rel / name), recursive=False)
        for name in sorted(filenames):
            path = base / name
            if path.is_file() and not path.is_symlink():
                tar.add(str(path), arcname=str(PurePosixPath(arc) / rel / name), recursive=False)


def _extract_into(archive: object, dest: Path) -> None:
    """A `get_archive` tar (top entry: the path's last component) extracted into `dest`, safely:
    only regular files and directories, no absolute paths or `..`."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=archive, mode="r|*") as tar:  # type: ignore[call-overload]
        for member in tar:
            parts = PurePosixPath(member.name).parts[1:]  # drop the top entry
            if not parts or any(p in ("..", "") for p in parts) or PurePosixPath(member.name).is_absolute():
                continue
            target = dest.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.is_dir():
                    continue
                with open(target, "wb") as out:
                    while block := source.read(1 << 20):
                        out.write(block)
