"""ListObjects (v1, v2), ListObjectVersions and ListMultipartUploads, paged from SQLite in key order.

A page costs one indexed range query per common prefix (or one for the whole page without a
delimiter): 1,000 keys of 100,000 come back in a few milliseconds.
"""

from __future__ import annotations

import base64
from typing import Any

from .errors import S3Error
from .objects import require_bucket
from .store import ObjectVersion
from .wire import S3Request, S3Response, elements, encode_key, int_param, iso, owner, text, x, xml_response

_AFTER_PREFIX = "\U0010ffff"  # sorts after every other character: `cp + this` skips the keys under cp


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return key[:at + len(delimiter)] if at >= 0 else None


def _is_common_prefix(marker: str, prefix: str, delimiter: str) -> bool:
    return bool(delimiter and marker.startswith(prefix) and marker.endswith(delimiter)
                and _common_prefix(marker, prefix, delimiter) == marker)


def walk(req: S3Request, prefix: str, delimiter: str, after: str, max_keys: int
         ) -> tuple[list[tuple[str, Any]], bool]:
    """Up to max_keys entries ('key', obj) or ('prefix', cp) after `after`; and whether more follow."""
    out: list[tuple[str, Any]] = []
    cursor = after + _AFTER_PREFIX if _is_common_prefix(after, prefix, delimiter) else after
    batch_size = min(max_keys + 1, 1001)
    while True:
        batch = req.store.list_latest(req.bucket, cursor, prefix, batch_size)
        if not batch:
            return out, False
        jumped = False
        for obj in batch:
            cursor = obj.key
            if obj.delete_marker:
                continue
            common = _common_prefix(obj.key, prefix, delimiter)
            if len(out) == max_keys:
                return out, True
            if common is not None:
                out.append(("prefix", common))
                cursor = common + _AFTER_PREFIX
                jumped = True
                break
            out.append(("key", obj))
        if not jumped and len(batch) < batch_size:
            return out, False


def _stored(obj: ObjectVersion) -> str:
    """What a listing says of an object's bytes: ListObjects' Contents and ListObjectVersions' Version alike.

    Written out by hand rather than with `x()`: a 1,000-key page builds this 1,000 times, and the
    generic calls were most of its time."""
    meta = obj.meta
    checksums = meta.get("checksums")
    checksum = "".join(f"<ChecksumAlgorithm>{alg}</ChecksumAlgorithm>" for alg in checksums) if checksums else ""
    return (f"<ETag>{text(obj.etag)}</ETag>{checksum}<Size>{obj.size}</Size>"
            f"<StorageClass>{text(meta.get('storage_class', 'STANDARD'))}</StorageClass>")


def _contents(obj: ObjectVersion, encoding: str | None, with_owner: bool) -> str:
    return (f"<Contents><Key>{text(encode_key(obj.key, encoding))}</Key>"
            f"<LastModified>{iso(obj.modified)}</LastModified>{_stored(obj)}{owner() if with_owner else ''}</Contents>")


def _prefixes(entries: list[tuple[str, Any]], encoding: str | None) -> str:
    return "".join(f"<CommonPrefixes>{x('Prefix', encode_key(v, encoding))}</CommonPrefixes>"
                   for kind, v in entries if kind == "prefix")


def _last_key(entries: list[tuple[str, Any]]) -> str:
    """Where a truncated page stopped: its last common prefix or the key of its last object."""
    kind, last = entries[-1]
    return last if kind == "prefix" else last.key


def _params(req: S3Request, max_name: str) -> tuple[str, str, str | None, int]:
    """(prefix, delimiter, encoding-type, page size named `max_name`) of a listing, its bucket checked."""
    require_bucket(req)
    return (req.query.get("prefix", ""), req.query.get("delimiter", ""), _encoding(req),
            int_param(req, max_name, 1000, 1000))


def _delimiting(delimiter: str, encoding: str | None) -> tuple[tuple[str, Any], ...]:
    """The Delimiter and EncodingType fields the object listings echo."""
    return ("Delimiter", encode_key(delimiter, encoding) if delimiter else None), ("EncodingType", encoding)


def _encoding(req: S3Request) -> str | None:
    encoding = req.query.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type",
                      ArgumentValue=encoding)
    return encoding


def list_objects(req: S3Request) -> S3Response:
    prefix, delimiter, encoding, max_keys = _params(req, "max-keys")
    marker = req.query.get("marker", "")
    entries, truncated = walk(req, prefix, delimiter, marker, max_keys)
    contents = "".join(_contents(v, encoding, True) for kind, v in entries if kind == "key")
    # S3 sends NextMarker with a delimiter only; moto (and clients) like it always
    next_marker = encode_key(_last_key(entries), encoding) if truncated and entries else None
    inner = elements(("Name", req.bucket), ("Prefix", encode_key(prefix, encoding) if prefix else None),
                     ("Marker", encode_key(marker, encoding)), ("MaxKeys", max_keys),
                     *_delimiting(delimiter, encoding), ("IsTruncated", truncated), ("NextMarker", next_marker))
    return xml_response("ListBucketResult", inner + contents + _prefixes(entries, encoding))


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token") from None


def list_objects_v2(req: S3Request) -> S3Response:
    prefix, delimiter, encoding, max_keys = _params(req, "max-keys")
    token = req.query.get("continuation-token")
    if token == "":
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token")
    start_after = req.query.get("start-after", "")
    after = _untoken(token) if token is not None else start_after
    with_owner = req.query.get("fetch-owner", "").lower() == "true"
    entries, truncated = walk(req, prefix, delimiter, after, max_keys)
    contents = "".join(_contents(v, encoding, with_owner) for kind, v in entries if kind == "key")
    next_token = _token(_last_key(entries)) if truncated and entries else None
    inner = elements(("Name", req.bucket), ("Prefix", encode_key(prefix, encoding)), ("MaxKeys", max_keys),
                     ("KeyCount", len(entries)), *_delimiting(delimiter, encoding), ("IsTruncated", truncated),
                     ("ContinuationToken", token), ("NextContinuationToken", next_token),
                     ("StartAfter", encode_key(start_after, encoding) if start_after and token is None else None))
    return xml_response("ListBucketResult", inner + contents + _prefixes(entries, encoding))


def list_object_versions(req: S3Request) -> S3Response:
    prefix, delimiter, encoding, max_keys = _params(req, "max-keys")
    key_marker, vid_marker = req.query.get("key-marker", ""), req.query.get("version-id-marker", "")
    if vid_marker and not key_marker:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.",
                      ArgumentName="version-id-marker", ArgumentValue=vid_marker)
    after_seq = None
    if vid_marker:
        marked = req.store.version(req.bucket, key_marker, vid_marker)
        after_seq = marked.seq if marked else None
    entries: list[tuple[str, Any]] = []
    truncated = False
    cursor_key = key_marker + _AFTER_PREFIX if _is_common_prefix(key_marker, prefix, delimiter) else key_marker
    cursor_seq = after_seq
    while not truncated:
        batch = req.store.list_versions(req.bucket, cursor_key, cursor_seq, prefix, max_keys + 1)
        if not batch:
            break
        jumped = False
        for obj in batch:
            cursor_key, cursor_seq = obj.key, obj.seq
            common = _common_prefix(obj.key, prefix, delimiter)
            if len(entries) == max_keys:
                truncated = True
                break
            if common is not None:
                entries.append(("prefix", common))
                cursor_key, cursor_seq = common + _AFTER_PREFIX, None
                jumped = True
                break
            entries.append(("version", obj))
        if not jumped and not truncated and len(batch) < max_keys + 1:
            break
    parts = []
    for kind, value in entries:
        if kind != "version":
            continue
        common = (f"{x('Key', encode_key(value.key, encoding))}{x('VersionId', value.version_id)}"
                  f"{x('IsLatest', value.latest)}{x('LastModified', iso(value.modified))}")
        if value.delete_marker:
            parts.append(f"<DeleteMarker>{common}{owner()}</DeleteMarker>")
        else:
            parts.append(f"<Version>{common}{_stored(value)}{owner()}</Version>")
    next_key: str | None = None
    next_version: str | None = None
    if truncated and entries:
        next_key = encode_key(_last_key(entries), encoding)
        kind, last = entries[-1]
        next_version = None if kind == "prefix" else last.version_id
    inner = elements(("Name", req.bucket), ("Prefix", encode_key(prefix, encoding)),
                     ("KeyMarker", encode_key(key_marker, encoding)), ("VersionIdMarker", vid_marker),
                     ("MaxKeys", max_keys), *_delimiting(delimiter, encoding), ("IsTruncated", truncated),
                     ("NextKeyMarker", next_key), ("NextVersionIdMarker", next_version))
    return xml_response("ListVersionsResult", inner + "".join(parts) + _prefixes(entries, encoding))


def list_uploads(req: S3Request) -> S3Response:
    prefix, delimiter, encoding, max_uploads = _params(req, "max-uploads")
    key_marker, id_marker = req.query.get("key-marker", ""), req.query.get("upload-id-marker", "")
    if not key_marker:
        id_marker = ""
    after_id = id_marker if id_marker else _AFTER_PREFIX if key_marker else ""
    uploads = req.store.uploads(req.bucket, prefix, key_marker, after_id, max_uploads + 1)
    prefixes: list[str] = []
    listed = []
    for upload in uploads:
        common = _common_prefix(upload.key, prefix, delimiter)
        if common is not None:
            if common not in prefixes:
                prefixes.append(common)
            continue
        listed.append(upload)
    truncated = len(listed) > max_uploads
    listed = listed[:max_uploads]
    body = "".join(
        f"<Upload>{x('Key', encode_key(u.key, encoding))}{x('UploadId', u.upload_id)}"
        f"<Initiator>{x('ID', 'arn:aws:iam::' + req.extra.get('account', '123456789012') + ':root')}"
        f"{x('DisplayName', 'webfile')}</Initiator>{owner()}"
        f"{x('StorageClass', u.meta.get('storage_class', 'STANDARD'))}{x('Initiated', iso(u.initiated))}"
        f"{x('ChecksumAlgorithm', u.meta.get('checksum_algorithm'))}"
        f"{x('ChecksumType', u.meta.get('checksum_type'))}</Upload>" for u in listed)
    last = listed[-1] if truncated and listed else None
    inner = elements(("Bucket", req.bucket), ("KeyMarker", key_marker), ("UploadIdMarker", id_marker),
                     ("NextKeyMarker", encode_key(last.key, encoding) if last else None),
                     ("NextUploadIdMarker", last.upload_id if last else None),
                     ("Prefix", prefix), ("Delimiter", delimiter or None), ("EncodingType", encoding),
                     ("MaxUploads", max_uploads), ("IsTruncated", truncated))
    return xml_response("ListMultipartUploadsResult", inner + body + "".join(
        f"<CommonPrefixes>{x('Prefix', p)}</CommonPrefixes>" for p in prefixes))
