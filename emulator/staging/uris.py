"""URIs and relative paths: the only place that decides where an object lands on disk.

Keeping the path rules in one module matters for security: every byte the staging layer writes
goes through `safe_join`, so a hostile S3 key (`../../etc/cron.d/x`) or archive member cannot
escape the directory that is later bind-mounted into a container.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from .errors import StagingError

SCHEMES = ("s3", "file")


@dataclass(frozen=True)
class ParsedUri:
    """`s3://bucket/key` or `file:///abs/path` taken apart; `key` is the absolute path for file URIs."""

    scheme: str
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return s3_uri(self.bucket, self.key) if self.scheme == "s3" else file_uri(self.key)


def parse_uri(uri: str) -> ParsedUri:
    """Split a data URI, refusing anything we could not resolve unambiguously."""
    if not isinstance(uri, str) or "\x00" in uri:
        raise StagingError(f"Invalid data URI {uri!r}", uri=str(uri))
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket:
            raise StagingError(f"Invalid S3 URI {uri!r}: no bucket name", uri=uri)
        return ParsedUri("s3", bucket, key)
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        # file://relative/x would silently mean host "relative"; the SDK's local mode only uses file:///abs.
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise StagingError(f"Invalid file URI {uri!r}: expected file:///absolute/path", uri=uri)
        return ParsedUri("file", "", parsed.path)
    raise StagingError(f"Unsupported data URI {uri!r}: expected s3://bucket/key or file:///path", uri=uri)


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def file_uri(path: str | os.PathLike[str]) -> str:
    return "file://" + os.path.abspath(os.fspath(path))


def as_folder(uri: str) -> str:
    """The URI with exactly one trailing '/', so that prefix matching stops at a folder boundary."""
    return uri if uri.endswith("/") else uri + "/"


def join_uri(base: str, relative: str) -> str:
    """`base/relative` without doubling the separator (a `//` in a key is refused by SageMaker)."""
    return as_folder(base) + relative.lstrip("/")


def relative_to_prefix(prefix: str, key: str) -> str:
    """Where an object matched by an S3 prefix lands, relative to the channel directory.

    SageMaker preserves key paths relative to the prefix; the open question is a prefix that does
    not end with '/'. We reproduce what real (remote) jobs do, as reported in
    aws/sagemaker-python-sdk#3612 and relied upon by the SDK examples:

    * key == prefix (the URI names one object): the last key segment (`data/train.csv` -> `train.csv`);
    * the prefix is a folder of the key (prefix ends with '/' or the key continues with '/'):
      the remainder after it (`data/train` + `data/train/a/x.csv` -> `a/x.csv`);
    * the prefix cuts a name in half (`data/train` + `data/train-1.csv`): relative to the prefix up
      to its last '/', so the file keeps its full name (`train-1.csv`), never the `-1.csv` stub the
      SDK's local mode produces.
    """
    if not key.startswith(prefix):
        raise StagingError(f"Key {key!r} is not under prefix {prefix!r}")
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if prefix == "" or prefix.endswith("/"):
        return key[len(prefix):]
    if key[len(prefix)] == "/":
        return key[len(prefix) + 1:]
    return key[prefix.rfind("/") + 1:]


def check_relative_path(relative: str, uri: str | None = None) -> str:
    """Validate a relative path taken from untrusted data (an S3 key, a manifest, a tar member).

    Returns it normalised (no '.' segments). Refuses: empty paths, NUL, absolute paths, '..'
    segments and empty segments ('a//b' is refused by SageMaker too, and would make two keys map to
    one file).
    """
    where = f" (from {uri})" if uri else ""
    if not relative or "\x00" in relative:
        raise StagingError(f"Invalid relative path {relative!r}{where}", uri=uri)
    if relative.startswith("/"):
        raise StagingError(f"Refusing absolute path {relative!r}{where}", uri=uri)
    parts = relative.split("/")
    if parts[-1] == "":  # a trailing '/' names a folder marker, not a file
        parts = parts[:-1]
    clean = []
    for part in parts:
        if part == "..":
            raise StagingError(f"Refusing path {relative!r} that escapes its directory{where}", uri=uri)
        if part == "":
            raise StagingError(f"Refusing path {relative!r} with an empty segment ('//'){where}", uri=uri)
        if part != ".":
            clean.append(part)
    if not clean:
        raise StagingError(f"Invalid relative path {relative!r}{where}", uri=uri)
    return str(PurePosixPath(*clean))


def safe_join(root: str | os.PathLike[str], relative: str, uri: str | None = None) -> Path:
    """`root/relative`, guaranteed to stay inside `root` on the real filesystem.

    Besides the lexical checks of `check_relative_path`, no existing component between `root` and
    the target may be a symlink: a directory pre-populated by a container (checkpoints, model dir)
    could otherwise redirect our writes anywhere on the host.
    """
    clean = check_relative_path(relative, uri)
    root_path = Path(root)
    current = root_path
    parts = clean.split("/")
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break
        if stat.S_ISLNK(mode):
            raise StagingError(f"Refusing to write through symlink {current}{f' (for {uri})' if uri else ''}",
                               uri=uri)
        if index < len(parts) - 1 and not stat.S_ISDIR(mode):
            raise StagingError(f"Path conflict: {current} is a file but {clean} needs it to be a directory"
                               f"{f' (for {uri})' if uri else ''}", uri=uri)
    return root_path.joinpath(*parts)


def is_within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether `path` is `root` or below it, after resolving symlinks of both."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)
