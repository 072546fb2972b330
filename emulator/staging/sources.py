"""From a channel's `S3DataSource` to the list of objects (or records) a host receives.

Resolution is separate from transfer so that the File-mode downloader, the Pipe-mode feeder,
batch transform and processing all see the same objects, with the same relative paths, the same
sharding and the same shuffling.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import StagingError
from .store import ObjectStore
from .uris import check_relative_path, join_uri, parse_uri, relative_to_prefix

S3_PREFIX = "S3Prefix"
S3_OBJECT = "S3Object"
MANIFEST_FILE = "ManifestFile"
AUGMENTED_MANIFEST_FILE = "AugmentedManifestFile"
FULLY_REPLICATED = "FullyReplicated"
SHARDED_BY_S3_KEY = "ShardedByS3Key"


@dataclass(frozen=True)
class DataObject:
    """One object of a channel and where it lands relative to the channel directory."""

    uri: str
    relative_path: str
    size: int | None = None

    @property
    def sort_key(self) -> str:
        return self.uri


@dataclass(frozen=True)
class AugmentedLine:
    """One JSON line of an augmented manifest; `index` keeps the file's order for sharding."""

    index: int
    record: dict[str, Any]

    @property
    def sort_key(self) -> int:
        return self.index


T = TypeVar("T", DataObject, AugmentedLine)


def resolve_source(store: ObjectStore, uri: str, data_type: str = S3_PREFIX) -> list[DataObject]:
    """The objects of an `S3Prefix`, `S3Object` or `ManifestFile` data source (or a file:// path).

    Raises `StagingError` naming the URI when nothing matches: SageMaker fails a job whose channel
    is empty rather than running the algorithm on no data.
    """
    if data_type == MANIFEST_FILE:
        return resolve_manifest(store, uri)
    if data_type == AUGMENTED_MANIFEST_FILE:
        raise StagingError(f"AugmentedManifestFile {uri} is streamed as records (Pipe mode), not as objects",
                           uri=uri)
    if data_type == S3_OBJECT:
        info = store.stat(uri)
        name = parse_uri(uri).key.rsplit("/", 1)[-1]
        return [DataObject(info.uri, check_relative_path(name, uri), info.size)]
    if data_type != S3_PREFIX:
        raise StagingError(f"Unsupported S3DataType {data_type!r} for {uri}", uri=uri)
    return resolve_prefix(store, uri)


def resolve_prefix(store: ObjectStore, uri: str, *, allow_empty: bool = False) -> list[DataObject]:
    """Every object whose key starts with the prefix, with paths per `uris.relative_to_prefix`.

    For file:// a directory contributes its files relative to it and a file its own name.
    Folder markers (keys ending in '/') are skipped: they are not data.
    """
    parsed = parse_uri(uri)
    objects: list[DataObject] = []
    for info in store.list(uri):
        if info.key.endswith("/"):
            continue
        if parsed.scheme == "file":
            root = parsed.key.rstrip("/") or "/"
            rel = info.key.rsplit("/", 1)[-1] if info.key == root else info.key[len(root):].lstrip("/")
        else:
            rel = relative_to_prefix(parsed.key, info.key)
        objects.append(DataObject(info.uri, check_relative_path(rel, info.uri), info.size))
    if not objects and not allow_empty:
        raise StagingError(f"No data found under {uri}: the prefix matches no objects", uri=uri)
    _check_unique(objects, uri)
    return objects


def resolve_manifest(store: ObjectStore, manifest_uri: str) -> list[DataObject]:
    """The objects listed by a manifest: `[{"prefix": "s3://b/p/"}, "rel/1", "rel/2", ...]`.

    Every entry is checked to exist now, so a typo fails the job before any container starts.
    """
    try:
        entries = json.loads(store.get_bytes(manifest_uri))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StagingError(f"Manifest {manifest_uri} is not valid JSON: {exc}", uri=manifest_uri) from exc
    if (not isinstance(entries, list) or not entries or not isinstance(entries[0], dict)
            or not isinstance(entries[0].get("prefix"), str)):
        raise StagingError(f'Manifest {manifest_uri} must be a JSON array starting with {{"prefix": "s3://..."}}',
                           uri=manifest_uri)
    prefix = entries[0]["prefix"]
    base = parse_uri(prefix)
    objects = []
    for entry in entries[1:]:
        if not isinstance(entry, str) or not entry:
            raise StagingError(f"Manifest {manifest_uri} has an invalid entry {entry!r}", uri=manifest_uri)
        if base.scheme == "file":  # a local path: '../' in the entry would read outside the prefix
            rel = check_relative_path(entry, manifest_uri)
            uri = join_uri(prefix, rel)
        else:  # S3 appends the entry to the prefix verbatim; the landing path is checked below
            key = base.key + entry
            uri = f"s3://{base.bucket}/{key}"
            rel = relative_to_prefix(base.key, key)
        rel = check_relative_path(rel, uri)  # before touching the store: the name alone can be hostile
        info = store.stat(uri)
        objects.append(DataObject(info.uri, rel, info.size))
    if not objects:
        raise StagingError(f"Manifest {manifest_uri} lists no objects", uri=manifest_uri)
    _check_unique(objects, manifest_uri)
    return objects


def read_augmented_manifest(store: ObjectStore, uri: str) -> list[AugmentedLine]:
    """The JSON Lines of an augmented manifest (blank lines ignored)."""
    lines = []
    with store.open(uri) as stream:
        text = stream.read()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise StagingError(f"Augmented manifest {uri} line {number} is not valid JSON: {exc}",
                               uri=uri) from exc
        if not isinstance(record, dict):
            raise StagingError(f"Augmented manifest {uri} line {number} is not a JSON object", uri=uri)
        lines.append(AugmentedLine(number, record))
    if not lines:
        raise StagingError(f"Augmented manifest {uri} has no records", uri=uri)
    return lines


def augmented_records(lines: Sequence[AugmentedLine], attribute_names: Sequence[str],
                      source_uri: str = "augmented manifest") -> Iterator[bytes | DataObject]:
    """The Pipe-mode records of an augmented manifest: per line, each attribute in `attribute_names` order.

    An attribute whose name ends in `-ref` names an object whose bytes form the record (returned as
    a `DataObject` so the feeder can stream it); any other value is sent as is: strings as UTF-8,
    anything else as compact JSON (`1` -> `b"1"`), as in the documented `["image-ref", "is-a-cat"]`
    example.
    """
    if not attribute_names:
        raise StagingError(f"AttributeNames is required for AugmentedManifestFile {source_uri}",
                           uri=source_uri)
    for line in lines:
        where = f"Augmented manifest {source_uri} line {line.index}"
        for name in attribute_names:
            if name not in line.record:
                raise StagingError(f"{where} has no attribute {name!r}", uri=source_uri)
            value = line.record[name]
            if name.endswith("-ref"):
                if not isinstance(value, str):
                    raise StagingError(f"{where}: {name} is not a URI", uri=source_uri)
                parse_uri(value)
                yield DataObject(value, value.rsplit("/", 1)[-1] or name)
            elif isinstance(value, str):
                yield value.encode()
            else:
                yield json.dumps(value, separators=(",", ":")).encode()


def shard(items: Sequence[T], host_index: int, host_count: int, distribution: str = FULLY_REPLICATED,
          seed: int | None = None, epoch: int = 0) -> list[T]:
    """The items one host receives.

    Deterministic on every host without coordination: items are sorted (objects by URI, manifest
    lines by position), shuffled with `ShuffleConfig.Seed` when given (re-shuffled per epoch, as
    SageMaker does in Pipe mode, so a host may get different objects each epoch), then dealt
    round-robin for `ShardedByS3Key`: disjoint, union complete, sizes differ by at most one.
    `host_index` is 0-based (`algo-1` is 0).
    """
    if host_count < 1 or not 0 <= host_index < host_count:
        raise StagingError(f"Invalid host index {host_index} of {host_count}")
    ordered = sorted(items, key=lambda item: item.sort_key)
    if seed is not None:
        random.Random(f"{seed}:{epoch}").shuffle(ordered)
    if distribution == FULLY_REPLICATED:
        return ordered
    if distribution == SHARDED_BY_S3_KEY:
        return ordered[host_index::host_count]
    raise StagingError(f"Unsupported S3DataDistributionType {distribution!r}")


def epoch_source(items: Sequence[T], host_index: int = 0, host_count: int = 1,
                 distribution: str = FULLY_REPLICATED, seed: int | None = None) -> Callable[[int], list[T]]:
    """`epoch -> items` for the Pipe feeder, re-sharding/re-shuffling each epoch."""
    def for_epoch(epoch: int) -> list[T]:
        return shard(items, host_index, host_count, distribution, seed, epoch)
    return for_epoch


def _check_unique(objects: Sequence[DataObject], uri: str) -> None:
    """Two keys mapping to one file would silently drop data; make it an error instead."""
    seen: dict[str, str] = {}
    for obj in objects:
        other = seen.setdefault(obj.relative_path, obj.uri)
        if other != obj.uri:
            raise StagingError(f"{other} and {obj.uri} (under {uri}) would both be written to "
                               f"{obj.relative_path}", uri=uri)
