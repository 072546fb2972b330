"""Model data to /opt/ml/model before a serving (or transform) container starts.

Three shapes exist in the API: `ModelDataUrl` (one model.tar.gz, extracted), and
`ModelDataSource.S3DataSource` with `CompressionType: Gzip` (same) or `None` (the objects
themselves: an `S3Prefix` keeps key paths relative to the prefix, an `S3Object` lands under its
last key segment). The SDK's local mode also passes `file://` directories, which are copied.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .archives import DEFAULT_MAX_MEMBERS, safe_extract
from .download import download_objects
from .errors import StagingError
from .progress import ProgressCallback
from .sources import S3_OBJECT, S3_PREFIX, resolve_prefix, resolve_source
from .store import ObjectStore
from .uris import parse_uri

GZIP = "Gzip"
NONE = "None"


def stage_model_data(store: ObjectStore, uri: str, dest_dir: str | os.PathLike[str], *,
                     s3_data_type: str = S3_OBJECT, compression: str = GZIP,
                     scratch_dir: str | os.PathLike[str] | None = None,
                     max_total_bytes: int | None = None, max_members: int = DEFAULT_MAX_MEMBERS,
                     progress: ProgressCallback | None = None) -> list[str]:
    """Place model data under `dest_dir`; returns the relative paths written.

    `compression="Gzip"` (what `ModelDataUrl` means) downloads the archive to `scratch_dir`
    (default: a temp dir next to `dest_dir`, never inside it, so the archive does not end up in the
    model directory) and extracts it with `safe_extract`; gzip or plain tar are both accepted.
    """
    parsed = parse_uri(uri)
    if parsed.scheme == "file" and os.path.isdir(parsed.key):
        objects = resolve_prefix(store, uri)
        download_objects(store, objects, dest_dir, progress=progress, label=uri)
        return [obj.relative_path for obj in objects]
    if compression == NONE:
        if s3_data_type not in (S3_PREFIX, S3_OBJECT):
            raise StagingError(f"Unsupported model S3DataType {s3_data_type!r} for {uri}", uri=uri)
        objects = resolve_source(store, uri, s3_data_type)
        download_objects(store, objects, dest_dir, progress=progress, label=uri)
        return [obj.relative_path for obj in objects]
    if compression != GZIP:
        raise StagingError(f"Unsupported model CompressionType {compression!r} for {uri}", uri=uri)
    if parsed.scheme == "file":
        return safe_extract(parsed.key, dest_dir, max_total_bytes=max_total_bytes, max_members=max_members,
                            progress=progress)
    scratch = Path(scratch_dir) if scratch_dir else Path(dest_dir).resolve().parent
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".model-", dir=scratch) as tmp:
        archive = Path(tmp) / "model.tar.gz"
        store.get_file(uri, archive)
        return safe_extract(archive, dest_dir, max_total_bytes=max_total_bytes, max_members=max_members,
                            progress=progress)
