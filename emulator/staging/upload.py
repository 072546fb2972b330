"""Local directories to the object store: processing outputs, checkpoints, single artifacts.

Directories written by a container are untrusted: only regular files are uploaded and symlinks
are never followed (SageMaker documents this for processing outputs), so a container cannot make
the emulator publish a host file such as ~/.aws/credentials.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .progress import Progress, ProgressCallback, ProgressReporter
from .store import ObjectInfo, ObjectStore
from .uris import as_folder, check_relative_path, join_uri, parse_uri

_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")


def upload_file(store: ObjectStore, path: str | os.PathLike[str], uri: str, *,
                progress: ProgressCallback | None = None) -> Progress:
    """Upload one file (model.tar.gz, output.tar.gz) to exactly `uri`."""
    size = os.path.getsize(path)
    reporter = ProgressReporter("upload", uri, objects_total=1, bytes_total=size, callback=progress)
    store.put_file(path, uri, on_bytes=reporter.add_bytes)
    reporter.object_done(uri)
    return reporter.finish()


def local_files(src_dir: str | os.PathLike[str]) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative path, path, lstat) of the regular files under `src_dir`, sorted; symlinks skipped."""
    root = Path(src_dir)
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield check_relative_path(full.relative_to(root).as_posix(), str(full)), full, st


def upload_dir(store: ObjectStore, src_dir: str | os.PathLike[str], dest_uri: str, *,
               progress: ProgressCallback | None = None) -> list[str]:
    """Upload every regular file under `src_dir` to `dest_uri/<relative path>`; returns the URIs.

    The destination is the URI itself, with no job-name suffix (processing `S3Output.S3Uri`).
    """
    files = list(local_files(src_dir))
    reporter = ProgressReporter("upload", dest_uri, objects_total=len(files),
                                bytes_total=sum(st.st_size for _, _, st in files), callback=progress)
    uploaded = []
    for rel, full, _ in files:
        uri = join_uri(dest_uri, rel)
        reporter.current = uri
        store.put_file(full, uri, on_bytes=reporter.add_bytes)
        reporter.object_done(uri)
        uploaded.append(uri)
    reporter.finish()
    return uploaded


@dataclass
class SyncState:
    """What `sync_dir` learned last time, so unchanged multi-GB checkpoints are not re-hashed.

    Maps relative path -> (size, mtime_ns, md5 hex or "") of the file as last uploaded or verified.
    """

    files: dict[str, tuple[int, int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    uploaded: list[str]
    deleted: list[str]
    unchanged: int


def sync_dir(store: ObjectStore, src_dir: str | os.PathLike[str], dest_uri: str, *, delete: bool = True,
             state: SyncState | None = None, progress: ProgressCallback | None = None) -> SyncResult:
    """Make `dest_uri/` mirror `src_dir` (checkpoints): upload new or changed files, delete removed ones.

    `dest_uri` is a folder: objects of a sibling prefix (`ckpt-old/` next to `ckpt`) are never
    touched. A file counts as unchanged when its size matches and its MD5 equals the object's ETag
    (or, where no plain MD5 ETag exists, when `state` says we uploaded this very size+mtime, or
    the stored copy is newer, for file:// destinations).
    """
    state = state if state is not None else SyncState()
    folder = as_folder(dest_uri)
    base = parse_uri(folder)
    remote: dict[str, ObjectInfo] = {}
    for info in store.list(folder):
        rel = info.key[len(base.key):] if base.scheme == "s3" else os.path.relpath(info.key, base.key)
        if rel and not rel.endswith("/"):
            remote[rel.replace(os.sep, "/")] = info
    files = list(local_files(src_dir))
    reporter = ProgressReporter("sync", dest_uri, callback=progress)
    uploaded: list[str] = []
    unchanged = 0
    for rel, full, st in files:
        same, md5 = _compare(full, st, remote.get(rel), state.files.get(rel))
        if same:
            state.files[rel] = (st.st_size, st.st_mtime_ns, md5)
            unchanged += 1
            continue
        uri = join_uri(folder, rel)
        reporter.current = uri
        store.put_file(full, uri, on_bytes=reporter.add_bytes)
        state.files[rel] = (st.st_size, st.st_mtime_ns, md5)  # only once the upload succeeded
        reporter.object_done(uri)
        uploaded.append(uri)
    deleted: list[str] = []
    if delete:
        local = {rel for rel, _, _ in files}
        deleted = [remote[rel].uri for rel in sorted(remote) if rel not in local]
        store.delete_many(deleted)
        for uri in deleted:
            reporter.object_done(uri)
        for rel in set(state.files) - local:
            del state.files[rel]
    reporter.finish()
    return SyncResult(uploaded, deleted, unchanged)


def _compare(full: Path, st: os.stat_result, remote: ObjectInfo | None,
             known: tuple[int, int, str] | None) -> tuple[bool, str]:
    """(whether the stored copy already matches, the file's MD5 if it is known or had to be computed)."""
    same_local = known is not None and known[:2] == (st.st_size, st.st_mtime_ns)
    md5 = known[2] if same_local and known else ""
    if remote is None or remote.size != st.st_size:
        return False, md5
    if remote.etag and _PLAIN_MD5.match(remote.etag):
        md5 = md5 or _md5(full)
        return md5 == remote.etag, md5
    if same_local:
        return True, md5
    return remote.mtime is not None and remote.mtime >= st.st_mtime, md5


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
