"""MXNet RecordIO framing, as SageMaker uses for `RecordWrapperType: RecordIO` and `SplitType: RecordIO`.

A record is: magic 0xced7230a (u32 little-endian), a u32 LE whose low 29 bits are the payload
length and whose top 3 bits are a continuation flag (0 = whole record), the payload, then zero
padding to a multiple of 4 bytes. This is exactly what the SageMaker Python SDK's
`sagemaker.amazon.common` writer emits; we never split records, but the reader accepts split
ones (flags 1/2/3) as MXNet's own writer produces them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from .errors import StagingError

MAGIC = 0xCED7230A
MAX_PAYLOAD = (1 << 29) - 1
_HEADER = struct.Struct("<II")


def header(length: int) -> bytes:
    """The 8-byte header of a whole (unsplit) record of `length` payload bytes."""
    if not 0 <= length <= MAX_PAYLOAD:
        raise StagingError(f"A RecordIO record holds at most {MAX_PAYLOAD} bytes, not {length}")
    return _HEADER.pack(MAGIC, length)


def padding(length: int) -> bytes:
    return b"\x00" * (-length % 4)


def pack(payload: bytes) -> bytes:
    """One payload as one RecordIO record."""
    return header(len(payload)) + payload + padding(len(payload))


def read_records(stream: BinaryIO) -> Iterator[bytes]:
    """The payloads of a RecordIO stream; `StagingError` on a bad magic or a truncated record."""
    parts: list[bytes] = []
    while True:
        head = _read_exactly(stream, 8, allow_eof=not parts)
        if head is None:
            return
        magic, lrecord = _HEADER.unpack(head)
        if magic != MAGIC:
            raise StagingError(f"Not a RecordIO stream: bad magic {magic:#010x}")
        length, flag = lrecord & MAX_PAYLOAD, lrecord >> 29
        payload = _read_exactly(stream, length, allow_eof=False) or b""
        _read_exactly(stream, -length % 4, allow_eof=False)
        if flag == 0:
            yield payload
        elif flag in (1, 2):
            parts.append(payload)
        elif flag == 3:
            parts.append(payload)
            # MXNet drops the magic at each split point; put it back between the parts.
            yield struct.pack("<I", MAGIC).join(parts)
            parts = []
        else:
            raise StagingError(f"Invalid RecordIO continuation flag {flag}")


def _read_exactly(stream: BinaryIO, n: int, allow_eof: bool) -> bytes | None:
    chunks = []
    remaining = n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if allow_eof and remaining == n:
                return None
            raise StagingError("Truncated RecordIO stream")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
