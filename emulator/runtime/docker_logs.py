"""Following a container's output: Docker's log stream decoded into (stream, timestamp, line).

A serving container typically prints a line per request, so the follower runs as often as
invocations do and competes with them for the GIL. It is kept cheap three ways: the HTTP body is
de-chunked here from the connection's buffer in large blocks (urllib3 and http.client would make
several Python calls per chunk, and Docker sends one chunk per log write); after a small block the
follower waits `BATCH_SECONDS` so that the next read collects many lines at once (logs reach
CloudWatch a few tens of milliseconds later, which nobody can tell); and timestamps are parsed with
their date-and-time part remembered, since consecutive lines share it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

BLOCK = 65536
BATCH_SECONDS = 0.05
_SMALL = 4096  # a read shorter than this means the follower caught up: wait for more

_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")
_seconds: dict[str, float] = {}  # "date and time to the second" (+ zone) -> epoch seconds


def parse_timestamp(text: str) -> float:
    """Docker's RFC 3339 timestamps (`2026-11-26T17:07:01.123456789Z`) -> epoch seconds (now if unparsable)."""
    match = _STAMP.fullmatch(text)
    if match is None:
        return time.time()
    seconds, digits, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    key = seconds + zone
    base = _seconds.get(key)
    if base is None:
        try:
            base = dt.datetime.fromisoformat(key).timestamp()
        except ValueError:
            return time.time()
        if len(_seconds) >= 1024:
            _seconds.clear()
        _seconds[key] = base
    return base + int(digits[:6].ljust(6, "0")) / 1e6 if digits else base


def body_blocks(response: Any) -> Iterator[bytes]:
    """The body of a streamed `requests` response, de-chunked, in blocks as large as have arrived."""
    inner = getattr(getattr(response, "raw", None), "_fp", None)  # http.client.HTTPResponse
    fp = getattr(inner, "fp", None)
    if fp is None or not hasattr(fp, "read1") or getattr(inner, "chunk_left", None) is not None:
        while block := response.raw.read1(BLOCK):  # not the connection we know: the slow, general way
            yield block
        return
    if not getattr(inner, "chunked", False):
        while block := _read_batched(fp):
            yield block
        return
    buffer = b""
    left = 0  # bytes of the current chunk still to come
    skip = 0  # bytes of the CRLF after a chunk still to come
    while True:
        block = _read_batched(fp)
        if not block:
            return
        buffer += block
        out = []
        offset = 0
        while True:
            if skip:
                passed = min(skip, len(buffer) - offset)
                offset += passed
                skip -= passed
                if skip:
                    break
            if left:
                take = buffer[offset:offset + left]
                out.append(take)
                offset += len(take)
                left -= len(take)
                if left:
                    break
                skip = 2
                continue
            end = buffer.find(b"\r\n", offset)
            if end < 0:
                break
            try:
                left = int(buffer[offset:end].split(b";", 1)[0] or b"0", 16)
            except ValueError:
                raise ValueError(f"malformed chunk size {buffer[offset:end][:40]!r}") from None
            offset = end + 2
            if left == 0:
                if out:
                    yield b"".join(out)
                return
        buffer = buffer[offset:]
        if out:
            yield b"".join(out)


def _read_batched(fp: Any) -> bytes:
    block = fp.read1(BLOCK)
    if block and len(block) < _SMALL:
        time.sleep(BATCH_SECONDS)
    return block


def log_lines(blocks: Iterator[bytes]) -> Iterator[tuple[str, bytes]]:
    """(stream, line) from Docker's multiplexed log stream (8-byte frame headers: stream id, size)."""
    buffer = b""
    pending = {1: b"", 2: b""}
    for block in blocks:
        buffer += block
        offset = 0
        while len(buffer) - offset >= 8:
            kind = buffer[offset]
            size = int.from_bytes(buffer[offset + 4:offset + 8], "big")
            if len(buffer) - offset - 8 < size:
                break
            payload = buffer[offset + 8:offset + 8 + size]
            offset += 8 + size
            key = 2 if kind == 2 else 1
            *lines, pending[key] = (pending[key] + payload).split(b"\n")
            for line in lines:
                yield ("stderr" if key == 2 else "stdout"), line
        buffer = buffer[offset:]
    for key, rest in pending.items():
        if rest:
            yield ("stderr" if key == 2 else "stdout"), rest
