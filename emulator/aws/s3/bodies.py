"""Request bodies to files, hashed on the way: nothing holds a whole object in memory.

A body is read from `wsgi.input` 1 MiB at a time (de-framed first when the SDK sent it
`aws-chunked`, with or without a trailing checksum), MD5'ed (the ETag) and checksummed with the
algorithm the client asked for, each on its own thread, and written to a temp file (fsync'ed before
the answer in the store's fsync mode).
"""

from __future__ import annotations

import base64
import hashlib
import mmap
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import S3Error

CHUNK = 1 << 20
ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _crt_checksum(name: str) -> Callable[[], Any] | None:
    """CRC32C / CRC64NVME need awscrt (botocore's optional dependency); without it a value the
    client sends is stored as sent, not verified, and none is computed."""
    try:
        from awscrt import checksums  # type: ignore[import-not-found]
    except ImportError:
        return None
    fn, width = (checksums.crc32c, 4) if name == "CRC32C" else (checksums.crc64nvme, 8)

    class _Crt:
        def __init__(self) -> None:
            self.value = 0

        def update(self, data: bytes) -> None:
            self.value = fn(data, self.value)

        def digest(self) -> bytes:
            return self.value.to_bytes(width, "big")

    return _Crt


def new_checksum(algorithm: str) -> Any | None:
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    factory = _crt_checksum(algorithm)
    return factory() if factory else None


def checksum_of_file(path: Path, algorithm: str, offset: int = 0, length: int | None = None) -> str | None:
    """The base64 checksum of `length` bytes of `path` from `offset` (to its end if None)."""
    hasher = new_checksum(algorithm)
    if hasher is None:
        return None
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left is None or left > 0:
            data = f.read(CHUNK if left is None else min(CHUNK, left))
            if not data:
                break
            hasher.update(data)
            if left is not None:
                left -= len(data)
    return base64.b64encode(hasher.digest()).decode()


class AwsChunked:
    """An `aws-chunked` body (SigV4 streaming, with or without trailers), de-framed: each chunk is
    `<hex size>[;chunk-signature=...]\\r\\n<bytes>\\r\\n`, the last one has size 0 and is followed
    by trailer lines (`x-amz-checksum-crc32:...`) and an empty line."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.buf = b""
        self.left = 0
        self.done = False
        self.trailers: dict[str, str] = {}

    def _fill(self, need: int) -> None:
        while len(self.buf) < need:
            data = self.raw.read(max(need - len(self.buf), 65536))
            if not data:
                raise S3Error("IncompleteBody", "The request body terminated unexpectedly")
            self.buf += data

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line
            if len(self.buf) > 8192:
                raise S3Error("InvalidRequest", "Malformed aws-chunked body")
            more = self.raw.read(65536)
            if not more:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                raise S3Error("IncompleteBody", "The request body terminated unexpectedly")
            self.buf += more

    def read(self, size: int) -> bytes:
        if self.done:
            return b""
        if self.left == 0:
            line = self._line()
            try:
                self.left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise S3Error("InvalidRequest", "Malformed aws-chunked chunk size") from None
            if self.left == 0:
                self.done = True
                while True:
                    try:
                        trailer = self._line()
                    except S3Error:
                        break
                    if not trailer:
                        break
                    name, _, value = trailer.decode("latin-1").partition(":")
                    self.trailers[name.strip().lower()] = value.strip()
                return b""
        if not self.buf:
            data = self.raw.read(min(size, self.left))
            if not data:
                raise S3Error("IncompleteBody", "The request body terminated unexpectedly")
        else:
            data, self.buf = self.buf[:min(size, self.left)], self.buf[min(size, self.left):]
        self.left -= len(data)
        if self.left == 0:
            self._fill(2)
            self.buf = self.buf[2:]  # the CRLF after the chunk
        return data


class _Digester:
    """One hash (MD5 for the ETag, or the requested checksum) of a body, on a thread of its own.

    hashlib, zlib and the socket and file calls release the GIL on large buffers, so each hash runs
    in parallel with receiving, writing and the other hash: a PUT costs the slowest of them (MD5,
    about 600 MB/s on one core), not their sum. At most QUEUED chunks wait: memory stays bounded
    whatever the body's size.
    """

    QUEUED = 3  # per hash thread; the ring of a request is QUEUED + 2 MiB (ten parallel parts: 50 MB)

    def __init__(self, hasher: Any) -> None:
        import queue
        import threading

        self.hasher = hasher
        self.chunks: queue.Queue = queue.Queue(self.QUEUED)
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="s3-digest", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.chunks.get()) is not None:
            try:
                self.hasher.update(data)
            except BaseException as exc:  # reported by finish()
                self.failed = exc

    def feed(self, data: bytes | memoryview) -> None:
        self.chunks.put(data)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.chunks.put(None)
            self.thread.join()

    def finish(self) -> None:
        self.stop()
        if self.failed is not None:
            raise self.failed


class _Writeback:
    """In fsync mode, start the disk writing each few MiB as soon as they are written
    (sync_file_range SYNC_FILE_RANGE_WRITE: it does not wait), so the fsync at the end waits only
    for the tail instead of the whole body."""

    STEP = 8 << 20
    _call: Any = None

    def __init__(self, fd: int, enabled: bool, offset: int = 0) -> None:
        self.fd, self.done, self.pending = fd, offset, 0
        self.enabled = enabled and self._libc() is not None

    @classmethod
    def _libc(cls) -> Any:
        if cls._call is None:
            import ctypes

            call: Any = False
            try:
                call = ctypes.CDLL(None, use_errno=True).sync_file_range
                call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
            except (OSError, AttributeError):
                call = False
            cls._call = call
        return cls._call or None

    def wrote(self, count: int) -> None:
        if not self.enabled:
            return
        self.pending += count
        if self.pending >= self.STEP:
            self._libc()(self.fd, self.done, self.pending, 2)  # SYNC_FILE_RANGE_WRITE
            self.done += self.pending
            self.pending = 0


@dataclass
class Received:
    """A body now in `path`, with what was computed on the way."""

    path: Path
    size: int
    md5: bytes
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64, verified or as sent

    @property
    def etag(self) -> str:
        return f'"{self.md5.hex()}"'


def requested_checksum(headers: Any) -> tuple[str | None, str | None]:
    """(algorithm, value sent in a header or None) from x-amz-checksum-* / x-amz-sdk-checksum-algorithm."""
    for name in ALGORITHMS:
        value = headers.get(f"x-amz-checksum-{name.lower()}")
        if value:
            return name, value
    algorithm = (headers.get("x-amz-sdk-checksum-algorithm") or headers.get("x-amz-checksum-algorithm") or "")
    algorithm = algorithm.upper()
    if algorithm and algorithm not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm} is not supported")
    trailer = (headers.get("x-amz-trailer") or "").lower()
    if not algorithm and trailer.startswith("x-amz-checksum-"):
        algorithm = trailer[len("x-amz-checksum-"):].upper()
    return (algorithm or None), None


def _aws_chunked(environ: dict) -> bool:
    return (environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING-")
            or "aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", ""))


def body_length(environ: dict) -> int | None:
    """The length of the body once de-framed, if the request says it (it does not when chunked)."""
    name = "HTTP_X_AMZ_DECODED_CONTENT_LENGTH" if _aws_chunked(environ) else "CONTENT_LENGTH"
    length = environ.get(name)
    return int(length) if length and length.isdigit() else None


def body_stream(environ: dict) -> tuple[Any, int | None]:
    """The body to read, de-framed, and its decoded length if known."""
    raw = environ["wsgi.input"]
    return (AwsChunked(raw) if _aws_chunked(environ) else raw), body_length(environ)


def receive(environ: dict, headers: Any, temp: Path, *, algorithm: str | None = None,
            expected: str | None = None, fsync: bool = False, offset: int | None = None) -> Received:
    """Stream the request body into `temp`, verify Content-MD5 and the checksum; fsync if asked.

    With `offset`, `temp` is a file shared with other bodies (a multipart upload's assembly file,
    see multipart.py): the body is written at that offset, and the file is left alone if it fails."""
    stream, length = body_stream(environ)
    md5 = hashlib.md5()
    hasher = new_checksum(algorithm) if algorithm else None
    size = 0
    # A ring of buffers the body is received into and hashed from: none is refilled before every
    # digest thread is done with it (at most QUEUED wait in each, one is being hashed). Mapped, not
    # bytearrays: glibc serves freed 1 MiB blocks again from per-thread arenas that keep them, and ten
    # parallel parts grew the server by 150 MB that way; a mapping goes back to the kernel when dropped.
    ring = [memoryview(mmap.mmap(-1, CHUNK)) for _ in range(_Digester.QUEUED + 2)]
    direct = hasattr(stream, "readinto") and not isinstance(stream, AwsChunked)
    digesters = [_Digester(h) for h in (md5, hasher) if h is not None]
    try:
        with _open_target(temp, offset) as out:
            writeback = _Writeback(out.fileno(), fsync, offset or 0)
            turn = 0
            while True:
                want = CHUNK if length is None else min(CHUNK, length - size)
                if want <= 0:
                    break
                if direct:
                    view = ring[turn % len(ring)][:want]
                    turn += 1
                    got = stream.readinto(view)
                    data = view[:got]
                else:
                    data = memoryview(stream.read(want))
                if not data:
                    if length is not None and size < length:
                        raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by "
                                      "the Content-Length HTTP header")
                    break
                for digester in digesters:
                    digester.feed(data)
                rest = data
                while rest:
                    rest = rest[out.write(rest):]
                writeback.wrote(len(data))
                size += len(data)
            if isinstance(stream, AwsChunked) and not stream.done:
                stream.read(1)  # the final chunk and the trailers
            for digester in digesters:
                digester.finish()
            if fsync:
                os.fsync(out.fileno())
        digest = md5.digest()
        content_md5 = headers.get("Content-MD5")
        if content_md5:
            try:
                sent = base64.b64decode(content_md5, validate=True)
            except ValueError:
                raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.") from None
            if sent != digest:
                raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
        checksums: dict[str, str] = {}
        if algorithm:
            if expected is None and isinstance(stream, AwsChunked):
                expected = stream.trailers.get(f"x-amz-checksum-{algorithm.lower()}")
            computed = base64.b64encode(hasher.digest()).decode() if hasher is not None else None
            if expected and computed and expected != computed:
                raise S3Error("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")
            value = computed or expected
            if value:
                checksums[algorithm] = value
        return Received(temp, size, digest, checksums)
    except BaseException:
        for digester in digesters:
            digester.stop()
        if offset is None:
            temp.unlink(missing_ok=True)
        raise


def _open_target(path: Path, offset: int | None) -> Any:
    """A new file to write a body into, or (with `offset`) an existing one positioned there."""
    if offset is None:
        return open(path, "wb", buffering=0)
    out = open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), "wb", buffering=0)
    out.seek(offset)
    return out
