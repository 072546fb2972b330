"""Following a container's output: Docker's log stream decoded into (stream, timestamp, line).

A serving container typically prints a line per request, so the follower runs as often as
invocations do and competes with them for the GIL. It is kept cheap three ways: the log request is
our own over the engine's socket (`open_log_stream`, the public Engine API) and its body is
de-chunked here from the socket buffer in large blocks (urllib3 and http.client would make several
Python calls per chunk, and Docker sends one chunk per log write); after a small block the
follower waits `BATCH_SECONDS` so that the next read collects many lines at once (logs reach
CloudWatch a few tens of milliseconds later, which nobody can tell); and timestamps are parsed with
their date-and-time part remembered, since consecutive lines share it.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator

from sagemaker_emulator.server.sockio import BufferedSocket

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


def open_log_stream(docker_host: str, container_id: str, since: float | None = None) -> tuple[BufferedSocket, bool]:
    """`GET /containers/<id>/logs?follow=1&timestamps=1` of the Engine API over its Unix socket or TCP.

    Returns the connection, positioned at the body, and whether the body is chunked. Our own request
    (not docker-py's) so the body can be read in large blocks straight from the socket buffer.
    """
    query = "stdout=1&stderr=1&follow=1&timestamps=1" + (f"&since={int(since) + 1}" if since else "")
    sock = connect(docker_host)
    sock.send(f"GET /containers/{container_id}/logs?{query} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    head = sock.head()
    if head is None:
        sock.close()
        raise ConnectionError("the Docker engine closed the log stream")
    status_line, *headers = head.decode("latin-1").split("\n")
    if status_line.split(None, 2)[1:2] != ["200"]:
        sock.close()
        raise ConnectionError(f"the Docker engine answered {status_line.strip()!r} to a log request")
    chunked = any(h.lower().startswith("transfer-encoding:") and "chunked" in h.lower() for h in headers)
    return sock, chunked


def connect(docker_host: str) -> BufferedSocket:
    """A blocking connection (no timeout) to the engine at `unix:///path` or `tcp://host:port`."""
    if docker_host.startswith("unix://"):
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(docker_host[len("unix://"):])
    elif docker_host.startswith(("tcp://", "http://")):
        url = urllib.parse.urlsplit(docker_host)
        raw = socket.create_connection((url.hostname or "127.0.0.1", url.port or 2375))
    else:
        raise ValueError(f"unsupported Docker host {docker_host!r} (unix:// or tcp://)")
    return BufferedSocket(raw, 0)


def body_blocks(read_some: Callable[[int], bytes], chunked: bool) -> Iterator[bytes]:
    """A streamed body, de-chunked, in blocks as large as have arrived (`read_some(n)`: like read1)."""
    if not chunked:
        while block := _read_batched(read_some):
            yield block
        return
    buffer = b""
    left = 0  # bytes of the current chunk still to come
    skip = 0  # bytes of the CRLF after a chunk still to come
    while True:
        block = _read_batched(read_some)
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


def _read_batched(read_some: Callable[[int], bytes]) -> bytes:
    block = read_some(BLOCK)
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
