"""File-mode delivery: objects to a directory, preserving their relative paths.

Used for training channels in File mode, processing inputs, transform inputs, uncompressed model
data and checkpoint restore. Every target path goes through `uris.safe_join`, so a key such as
`data/../../x` is refused instead of writing outside the job directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import StagingError
from .progress import Progress, ProgressCallback, ProgressReporter
from .sources import FULLY_REPLICATED, S3_PREFIX, DataObject, resolve_prefix, resolve_source, shard
from .store import ObjectStore
from .uris import as_folder, safe_join


def download_objects(store: ObjectStore, objects: Sequence[DataObject], dest_dir: str | os.PathLike[str], *,
                     gzip: bool = False, progress: ProgressCallback | None = None,
                     label: str | None = None) -> Progress:
    """Download `objects` under `dest_dir` at their relative paths; returns the final progress.

    `gzip=True` gunzips each object while streaming it (transform `CompressionType: Gzip`); the
    file keeps its name. Training File mode never sets it: SageMaker delivers those bytes as is.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    sizes = [obj.size for obj in objects]
    total = None if None in sizes else sum(s or 0 for s in sizes)
    reporter = ProgressReporter("download", label or str(dest), objects_total=len(objects), bytes_total=total,
                                callback=progress)
    for obj in objects:
        target = safe_join(dest, obj.relative_path, obj.uri)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StagingError(f"Cannot place {obj.uri} at {obj.relative_path}: a file is in the way",
                               uri=obj.uri) from exc
        if target.is_dir() and not target.is_symlink():
            raise StagingError(f"Cannot place {obj.uri} at {obj.relative_path}: a directory is in the way",
                               uri=obj.uri)
        reporter.current = obj.uri
        try:
            store.get_file(obj.uri, target, gzip=gzip, on_bytes=reporter.add_bytes)
        except OSError as exc:
            raise StagingError(f"Could not write {obj.uri} to {target}: {exc.strerror or exc}",
                               uri=obj.uri) from exc
        reporter.object_done(obj.uri)
    return reporter.finish()


def download_source(store: ObjectStore, uri: str, dest_dir: str | os.PathLike[str], *,
                    data_type: str = S3_PREFIX, host_index: int = 0, host_count: int = 1,
                    distribution: str = FULLY_REPLICATED, seed: int | None = None, gzip: bool = False,
                    progress: ProgressCallback | None = None) -> list[DataObject]:
    """Resolve, shard and download one channel for one host; returns the objects it received."""
    objects = shard(resolve_source(store, uri, data_type), host_index, host_count, distribution, seed)
    download_objects(store, objects, dest_dir, gzip=gzip, progress=progress, label=uri)
    return objects


def download_prefix(store: ObjectStore, uri: str, dest_dir: str | os.PathLike[str], *,
                    progress: ProgressCallback | None = None) -> list[DataObject]:
    """Copy everything under a folder URI into `dest_dir` (checkpoint restore at job start).

    The URI is treated as a folder (`s3://b/ckpt` does not pick up `s3://b/ckpt-old/`), and an
    empty or missing prefix is not an error: the first run of a job has no checkpoints yet.
    """
    objects = resolve_prefix(store, as_folder(uri), allow_empty=True)
    download_objects(store, objects, dest_dir, progress=progress, label=uri)
    return objects


@contextlib.contextmanager
def open_object(store: ObjectStore, obj: DataObject | str, *, gzip: bool = False) -> Iterator[BinaryIO]:
    """A streaming reader of one object (gunzipped if asked), for consumers that never need a file."""
    with store.open(obj.uri if isinstance(obj, DataObject) else obj, gzip=gzip) as stream:
        yield stream
