"""`ObjectStore`: one interface over the places job data lives, `s3://` and `file://`.

The emulator passes in a boto3 S3 client bound either to its embedded S3 or to a user-configured
S3-compatible endpoint; the SageMaker SDK's local mode also allows `file://` inputs and outputs.
Everything above this module (channels, checkpoints, model data, processing outputs) is written
once against this interface. Transfers stream in chunks: a multi-GB object never sits in memory.
"""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import io
import os
import stat
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from .errors import StagingError
from .uris import ParsedUri, file_uri, is_within, parse_uri, s3_uri

CHUNK_SIZE = 1 << 20
RAW_CHUNK_SIZE = 8 << 20  # reads of a body copied unchanged to a file
BytesCallback = Callable[[int], None]
LocalCopy = Callable[[str, str, int], "int | None"]
_MISSING = ("NoSuchKey", "404", "NotFound", "NoSuchBucket")


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its full URI, key (absolute path for file://), size and change markers."""

    uri: str
    key: str
    size: int
    etag: str | None = None
    mtime: float | None = None


class _CountingReader(io.RawIOBase):
    """Counts bytes pulled from a stream, so progress reflects transferred (compressed) bytes."""

    def __init__(self, raw: Any, on_bytes: BytesCallback | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n and self._on_bytes:
            self._on_bytes(n)
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


class ObjectStore:
    """List, read, write and delete objects by URI; S3 needs the client given at construction."""

    def __init__(self, s3_client: Any | None = None, chunk_size: int = CHUNK_SIZE,
                 local_copy: LocalCopy | None = None) -> None:
        """`local_copy(bucket, key, fd)`: when the S3 is the emulator's own, copies an object's bytes
        to `fd` in-process and returns their count (None: not served that way, ask over HTTP)."""
        self.s3 = s3_client
        self.chunk_size = chunk_size
        self.local_copy = local_copy

    # -- listing -----------------------------------------------------------------------------------
    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        """Objects under a prefix, in key order.

        S3: every key that starts with the prefix (plain prefix semantics, paginated).
        file://: a directory lists every regular file below it (recursively; symlinked directories
        are not entered, symlinked files only if they point inside the directory); a file lists
        itself; a missing path lists nothing.
        """
        parsed = parse_uri(prefix_uri)
        if parsed.scheme == "s3":
            yield from self._s3_list(parsed)
        else:
            yield from _file_list(parsed.key)

    def _s3_list(self, parsed: ParsedUri) -> Iterator[ObjectInfo]:
        client = self._client(parsed)
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=parsed.bucket, Prefix=parsed.key)
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(s3_uri(parsed.bucket, item["Key"]), item["Key"], int(item["Size"]),
                                     item.get("ETag", "").strip('"') or None,
                                     item["LastModified"].timestamp() if item.get("LastModified") else None)
        except (ClientError, BotoCoreError) as exc:
            raise _wrap(exc, parsed.uri, "list") from exc

    def stat(self, uri: str) -> ObjectInfo:
        """Metadata of one object; `StagingError` naming the URI when it does not exist."""
        parsed = parse_uri(uri)
        if parsed.scheme == "s3":
            try:
                head = self._client(parsed).head_object(Bucket=parsed.bucket, Key=parsed.key)
            except (ClientError, BotoCoreError) as exc:
                raise _wrap(exc, uri, "read") from exc
            return ObjectInfo(uri, parsed.key, int(head["ContentLength"]),
                              head.get("ETag", "").strip('"') or None,
                              head["LastModified"].timestamp() if head.get("LastModified") else None)
        try:
            st = os.stat(parsed.key)
        except OSError as exc:
            raise StagingError(f"Data not found: {uri} ({exc.strerror})", uri=uri) from exc
        if not stat.S_ISREG(st.st_mode):
            raise StagingError(f"Data not found: {uri} is not a regular file", uri=uri)
        return ObjectInfo(uri, parsed.key, st.st_size, None, st.st_mtime)

    def exists(self, uri: str) -> bool:
        try:
            self.stat(uri)
        except StagingError:
            return False
        return True

    # -- reading -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def open(self, uri: str, *, gzip: bool = False,
             on_bytes: BytesCallback | None = None) -> Iterator[BinaryIO]:
        """A streaming binary reader of one object, optionally gunzipping on the fly.

        `on_bytes` sees the bytes read from the store (before decompression).
        """
        raw = self._open_raw(uri)
        reader: BinaryIO = io.BufferedReader(_CountingReader(raw, on_bytes), self.chunk_size)  # type: ignore[arg-type]
        stream: BinaryIO = gzip_module.GzipFile(fileobj=reader, mode="rb") if gzip else reader  # type: ignore[assignment]
        try:
            yield _ErrorMapping(stream, uri)  # type: ignore[misc]
        finally:
            stream.close()
            reader.close()

    def _open_raw(self, uri: str) -> Any:
        """The object's bytes as they are stored: the GetObject body, or the local file (the caller closes it)."""
        parsed = parse_uri(uri)
        if parsed.scheme == "s3":
            try:
                return self._client(parsed).get_object(Bucket=parsed.bucket, Key=parsed.key)["Body"]
            except (ClientError, BotoCoreError) as exc:
                raise _wrap(exc, uri, "read") from exc
        try:
            return open(parsed.key, "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise StagingError(f"Data not found: {uri} ({exc.strerror})", uri=uri) from exc

    def iter_chunks(self, uri: str, *, gzip: bool = False,
                    on_bytes: BytesCallback | None = None) -> Iterator[bytes]:
        """The object's bytes as chunks of at most `chunk_size`."""
        with self.open(uri, gzip=gzip, on_bytes=on_bytes) as stream:
            while chunk := stream.read(self.chunk_size):
                yield chunk

    def get_bytes(self, uri: str, max_bytes: int = 256 << 20) -> bytes:
        """A small object (a manifest) in memory; refuses anything over `max_bytes`."""
        with self.open(uri) as stream:
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise StagingError(f"{uri} is larger than {max_bytes} bytes", uri=uri)
        return data

    def get_file(self, uri: str, dest: str | os.PathLike[str], *, gzip: bool = False,
                 on_bytes: BytesCallback | None = None) -> int:
        """Stream an object into `dest` (atomically: a temp file in the same directory, then rename).

        The rename replaces a symlink at `dest` rather than following it. Returns bytes written.
        """
        dest_path = Path(dest)
        fd, tmp = tempfile.mkstemp(prefix=".staging-", dir=dest_path.parent)
        written = 0
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                if gzip:
                    for chunk in self.iter_chunks(uri, gzip=gzip, on_bytes=on_bytes):
                        out.write(chunk)
                        written += len(chunk)
                else:
                    written = self._copy_raw(uri, out, on_bytes)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return written

    def _copy_raw(self, uri: str, out: BinaryIO, on_bytes: BytesCallback | None) -> int:
        """The object's bytes into `out` as they arrive, in large reads straight from the body: one
        copy per byte on the way (the buffered reader `open()` stacks for gunzipping would add two,
        which is a third of File-mode staging's time for a large channel). From our own S3, no copy
        through this process at all (`local_copy`)."""
        parsed = parse_uri(uri)
        if parsed.scheme == "s3" and self.local_copy is not None:
            copied = self.local_copy(parsed.bucket, parsed.key, out.fileno())
            if copied is not None:
                if on_bytes and copied:
                    on_bytes(copied)
                return copied
        raw = self._open_raw(uri)
        stream = _ErrorMapping(raw, uri)
        written = 0
        try:
            while chunk := stream.read(RAW_CHUNK_SIZE):
                view = memoryview(chunk)
                while view:
                    view = view[out.write(view) or 0:]
                written += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        finally:
            raw.close()
        return written

    # -- writing -----------------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike[str], uri: str, *,
                 on_bytes: BytesCallback | None = None) -> None:
        """Upload a local file (multipart and streaming for large files on S3)."""
        parsed = parse_uri(uri)
        if parsed.scheme == "s3":
            try:
                self._client(parsed).upload_file(os.fspath(path), parsed.bucket, parsed.key,
                                                 Callback=on_bytes)
            except (ClientError, BotoCoreError) as exc:
                raise _wrap(exc, uri, "write") from exc
            except Exception as exc:  # s3transfer wraps client errors in its own types
                raise StagingError(f"Could not write {uri}: {exc}", uri=uri) from exc
            return
        with open(path, "rb") as src:
            self._put_local(parsed.key, src, on_bytes)

    def put_bytes(self, data: bytes, uri: str) -> None:
        parsed = parse_uri(uri)
        if parsed.scheme == "s3":
            try:
                self._client(parsed).put_object(Bucket=parsed.bucket, Key=parsed.key, Body=data)
            except (ClientError, BotoCoreError) as exc:
                raise _wrap(exc, uri, "write") from exc
            return
        self._put_local(parsed.key, io.BytesIO(data), None)

    def _put_local(self, target: str, src: BinaryIO, on_bytes: BytesCallback | None) -> None:
        target_path = Path(target)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".staging-", dir=target_path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(self.chunk_size):
                    out.write(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, uri: str) -> None:
        """Delete one object; deleting a missing object is not an error (as in S3)."""
        self.delete_many([uri])

    def delete_many(self, uris: Iterable[str]) -> int:
        """Delete objects in batches (1000 keys per S3 request); returns how many were requested."""
        by_bucket: dict[str, list[str]] = {}
        count = 0
        for uri in uris:
            parsed = parse_uri(uri)
            count += 1
            if parsed.scheme == "file":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(parsed.key)
                continue
            by_bucket.setdefault(parsed.bucket, []).append(parsed.key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                batch = keys[start:start + 1000]
                try:
                    response = self._client(ParsedUri("s3", bucket, "")).delete_objects(
                        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
                except (ClientError, BotoCoreError) as exc:
                    raise _wrap(exc, s3_uri(bucket, batch[0]), "delete") from exc
                if response.get("Errors"):
                    err = response["Errors"][0]
                    failed = s3_uri(bucket, err.get("Key", ""))
                    raise StagingError(f"Could not delete {failed}: {err.get('Message')}", uri=failed)
        return count

    def _client(self, parsed: ParsedUri) -> Any:
        if self.s3 is None:
            raise StagingError(f"No S3 client configured for {parsed.uri}", uri=parsed.uri)
        return self.s3


class _ErrorMapping:
    """Wraps a reader so that decompression and transport errors become `StagingError`s."""

    def __init__(self, stream: BinaryIO, uri: str) -> None:
        self._stream = stream
        self._uri = uri

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise StagingError(f"Could not read {self._uri}: {exc}", uri=self._uri) from exc
        except (ClientError, BotoCoreError) as exc:
            raise _wrap(exc, self._uri, "read") from exc

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()


def _file_list(path: str) -> Iterator[ObjectInfo]:
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode):
        yield ObjectInfo(file_uri(path), path, st.st_size, None, st.st_mtime)
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    found = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                lst = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISLNK(lst.st_mode):
                # A symlinked file is data only if it stays inside the tree (as it would when the SDK's
                # local mode bind-mounts the directory); one pointing elsewhere is never followed.
                if not is_within(full, path):
                    continue
                try:
                    lst = os.stat(full)
                except OSError:
                    continue
            if stat.S_ISREG(lst.st_mode):
                found.append(ObjectInfo(file_uri(full), full, lst.st_size, None, lst.st_mtime))
    found.sort(key=lambda info: info.key)
    yield from found


def _wrap(exc: Exception, uri: str, action: str) -> StagingError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING:
            what = "bucket" if code == "NoSuchBucket" else "object"
            return StagingError(f"Data not found: {uri} ({what} does not exist)", uri=uri)
        return StagingError(f"Could not {action} {uri}: {code} {error.get('Message', '')}".rstrip(), uri=uri)
    return StagingError(f"Could not {action} {uri}: {exc}", uri=uri)

