"""The data-staging layer shared by training, hosting, batch transform and processing.

It moves job data between an object store (`s3://` through a boto3 client, or `file://`) and the
host directories bind-mounted into job containers: channel downloads (File mode), FIFO feeding
(Pipe mode), model data extraction, output archives, processing uploads and checkpoint sync.
Every failure is a `StagingError` whose message names the URI or archive member at fault.
"""

from __future__ import annotations

from . import recordio
from .archives import DEFAULT_MAX_MEMBERS, make_tar_gz, safe_extract, safe_extract_zip
from .download import download_objects, download_prefix, download_source, open_object
from .errors import StagingError
from .model_data import stage_model_data
from .pipe import PipeFeeder, PipeItem, PipeResult, PipeSource, feed_pipe, fifo_path
from .progress import Progress, ProgressCallback, ProgressReporter
from .sources import (
    AUGMENTED_MANIFEST_FILE,
    FULLY_REPLICATED,
    MANIFEST_FILE,
    S3_OBJECT,
    S3_PREFIX,
    SHARDED_BY_S3_KEY,
    AugmentedLine,
    DataObject,
    augmented_records,
    epoch_source,
    read_augmented_manifest,
    resolve_manifest,
    resolve_prefix,
    resolve_source,
    shard,
)
from .store import ObjectInfo, ObjectStore
from .upload import SyncResult, SyncState, sync_dir, upload_dir, upload_file
from .uris import as_folder, check_relative_path, file_uri, join_uri, parse_uri, relative_to_prefix, safe_join

__all__ = [
    "AUGMENTED_MANIFEST_FILE", "DEFAULT_MAX_MEMBERS", "FULLY_REPLICATED", "MANIFEST_FILE", "S3_OBJECT",
    "S3_PREFIX", "SHARDED_BY_S3_KEY", "AugmentedLine", "DataObject", "ObjectInfo", "ObjectStore",
    "PipeFeeder", "PipeItem", "PipeResult", "PipeSource", "Progress", "ProgressCallback", "ProgressReporter",
    "StagingError", "SyncResult", "SyncState", "as_folder", "augmented_records", "check_relative_path",
    "download_objects", "download_prefix", "download_source", "epoch_source", "feed_pipe", "fifo_path",
    "file_uri", "join_uri", "make_tar_gz", "open_object", "parse_uri", "read_augmented_manifest", "recordio",
    "relative_to_prefix", "resolve_manifest", "resolve_prefix", "resolve_source", "safe_extract", "safe_extract_zip",
    "safe_join", "shard", "stage_model_data", "sync_dir", "upload_dir", "upload_file",
]
