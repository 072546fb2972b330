"""Splitting input objects into records and packing records into request bodies (spec §4.2). Pure.

A record is yielded in its *wire form*, the bytes that go into a request body, so that packing is
plain concatenation and the size limit is checked on exactly what the container receives:

* `Line`: one line, always ending in `\\n` (blank lines are skipped: they are no records);
* `RecordIO`: the framed record; MultiRecord keeps the 4-byte padding, SingleRecord strips it;
* `TFRecord`: the framed record (length, length CRC, data, data CRC), as read;
* `None`: the whole object.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sagemaker_emulator.staging import recordio
from sagemaker_emulator.staging.errors import StagingError

NONE, LINE, RECORDIO, TFRECORD = "None", "Line", "RecordIO", "TFRecord"
SINGLE_RECORD, MULTI_RECORD = "SingleRecord", "MultiRecord"
MIB = 1024 * 1024
READ_CHUNK = 1 << 20


class RecordTooLarge(Exception):
    """One record alone is over MaxPayloadInMB: SageMaker fails the job on it."""

    def __init__(self, index: int, size: int, limit: int) -> None:
        super().__init__(f"record {index + 1} is {size} bytes, larger than MaxPayloadInMB "
                         f"({limit // MIB} MB = {limit} bytes)")
        self.index, self.size, self.limit = index, size, limit


class BadRecords(Exception):
    """The object cannot be split as SplitType says (bad RecordIO magic, truncated TFRecord)."""


@dataclass
class Batch:
    """One request: `count` consecutive records starting at record `first` (0-based)."""

    first: int
    records: list[bytes]

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def body(self) -> bytes:
        return b"".join(self.records)


def normalize_strategy(value: str | None) -> str | None:
    """`MULTI_RECORD`/`MultiRecord`/`multi_record` -> `MultiRecord` (containers use both spellings)."""
    if not value:
        return None
    key = value.replace("_", "").replace("-", "").lower()
    return {"multirecord": MULTI_RECORD, "singlerecord": SINGLE_RECORD}.get(key)


def env_strategy(value: str) -> str:
    """The SAGEMAKER_BATCH_STRATEGY spelling: `MULTI_RECORD` / `SINGLE_RECORD`."""
    return "MULTI_RECORD" if value == MULTI_RECORD else "SINGLE_RECORD"


def split(stream: BinaryIO, split_type: str, strategy: str = MULTI_RECORD) -> Iterator[bytes]:
    """The records of one object, in order, in wire form."""
    if split_type in (NONE, "", None):
        yield stream.read()
    elif split_type == LINE:
        yield from split_lines(stream)
    elif split_type == RECORDIO:
        yield from split_recordio(stream, keep_padding=strategy == MULTI_RECORD)
    elif split_type == TFRECORD:
        yield from split_tfrecord(stream)
    else:
        raise BadRecords(f"Unsupported SplitType {split_type!r}")


def split_lines(stream: BinaryIO) -> Iterator[bytes]:
    rest = b""
    while chunk := stream.read(READ_CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.strip(b"\r"):
                yield line + b"\n"
    if rest.strip(b"\r"):
        yield rest + b"\n"


def split_recordio(stream: BinaryIO, keep_padding: bool) -> Iterator[bytes]:
    try:
        for payload in recordio.read_records(stream):
            framed = recordio.header(len(payload)) + payload
            yield framed + recordio.padding(len(payload)) if keep_padding else framed
    except StagingError as exc:
        raise BadRecords(str(exc)) from None


_TF_HEADER = struct.Struct("<QI")


def split_tfrecord(stream: BinaryIO) -> Iterator[bytes]:
    """TFRecord framing: u64 LE length, u32 masked CRC of the length, data, u32 masked CRC of the data."""
    while True:
        head = stream.read(_TF_HEADER.size)
        if not head:
            return
        if len(head) < _TF_HEADER.size:
            raise BadRecords("Truncated TFRecord header")
        length, _ = _TF_HEADER.unpack(head)
        rest = _read_exactly(stream, length + 4)
        if rest is None:
            raise BadRecords(f"Truncated TFRecord (declared length {length})")
        yield head + rest


def tfrecord(data: bytes) -> bytes:
    """Frame `data` as a TFRecord (CRCs zero: we never check them). For tests and tools."""
    return _TF_HEADER.pack(len(data), 0) + data + b"\x00\x00\x00\x00"


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    parts, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def pack(records: Iterable[bytes], strategy: str, max_bytes: int) -> Iterator[Batch]:
    """Records -> request batches, in order.

    SingleRecord: one record per batch. MultiRecord: as many whole records as fit in `max_bytes`
    (0 = unlimited). A record over `max_bytes` raises RecordTooLarge, whatever the strategy.
    """
    current: list[bytes] = []
    size = 0
    first = 0
    for index, record in enumerate(records):
        if max_bytes and len(record) > max_bytes:
            if current:
                yield Batch(first, current)
            raise RecordTooLarge(index, len(record), max_bytes)
        if strategy == SINGLE_RECORD:
            yield Batch(index, [record])
            continue
        if current and max_bytes and size + len(record) > max_bytes:
            yield Batch(first, current)
            current, size = [], 0
        if not current:
            first = index
        current.append(record)
        size += len(record)
    if current:
        yield Batch(first, current)


def max_payload_bytes(max_payload_mb: int) -> int:
    return max_payload_mb * MIB
