"""PutObject, GetObject, HeadObject, DeleteObject(s): the data path, bodies streamed from and to files."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import parse_qsl

from .bodies import ALGORITHMS, receive, requested_checksum
from .errors import S3Error, no_such_bucket, no_such_key
from .moto_bridge import default_encryption, moto_bucket, notify
from .store import Bucket, ObjectVersion
from .wire import (
    S3Request,
    S3Response,
    child_text,
    children,
    http_time,
    parse_http_time,
    x,
    xml_response,
)

# Stored as sent and returned on GET/HEAD.
CONTENT_HEADERS = ("Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control",
                   "Expires")
KEPT_AMZ_HEADERS = ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
                    "x-amz-server-side-encryption-bucket-key-enabled",
                    "x-amz-server-side-encryption-customer-algorithm",
                    "x-amz-server-side-encryption-customer-key-md5", "x-amz-website-redirect-location",
                    "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
                    "x-amz-object-lock-legal-hold")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
                   "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE")
MAX_KEY_BYTES = 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def require_bucket(req: S3Request) -> Bucket:
    """The bucket, or NoSuchBucket. A bucket only moto knows (CloudFormation made it) is adopted."""
    bucket = req.store.bucket(req.bucket)
    if bucket is None:
        mirrored = moto_bucket(req.extra["account"], req.bucket) if req.bucket else None
        if mirrored is None:
            raise no_such_bucket(req.bucket)
        req.store.create_bucket(req.bucket, mirrored.region_name, {})
        bucket = req.store.bucket(req.bucket)
        assert bucket is not None
    return bucket


def apply_default_encryption(req: S3Request, meta: dict[str, Any]) -> None:
    """An object written without SSE headers gets its bucket's default encryption."""
    if "x-amz-server-side-encryption" not in meta["amz"]:
        meta["amz"].update(default_encryption(req.extra["account"], req.bucket))


def new_version_id() -> str:
    return uuid.uuid4().hex


def parse_tags(encoded: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for k, v in parse_qsl(encoded, keep_blank_values=True):
        if k in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
        tags[k] = v
    validate_tags(tags)
    return tags


def validate_tags(tags: dict[str, str]) -> None:
    if len(tags) > 10:
        raise S3Error("BadRequest", "Object tags cannot be greater than 10")
    for k, v in tags.items():
        if k.startswith("aws:"):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")
        if len(k) > 128:
            raise S3Error("InvalidTag", "The TagKey you have provided is too long, max 128")
        if len(v) > 256:
            raise S3Error("InvalidTag", "The TagValue you have provided is too long, max 256")


def meta_from_headers(req: S3Request) -> dict[str, Any]:
    """What PutObject / CreateMultipartUpload / CopyObject (REPLACE) record from the request headers."""
    meta: dict[str, Any] = {"headers": {}, "user": {}, "amz": {}}
    for name in CONTENT_HEADERS:
        value = req.header(name)
        if value is not None:
            if name == "Content-Encoding":
                value = ",".join(p for p in (s.strip() for s in value.split(",")) if p and p != "aws-chunked")
                if not value:
                    continue
            meta["headers"][name] = value
    for name, value in [*req.headers.items(), *req.query.items()]:  # a presigned URL may carry them in its query
        lower = name.lower()
        if lower.startswith("x-amz-meta-"):
            meta["user"][lower[len("x-amz-meta-"):]] = value
    for name in KEPT_AMZ_HEADERS:
        value = req.header(name)
        if value is not None:
            meta["amz"][name] = value
    storage = req.header("x-amz-storage-class")
    if storage:
        if storage not in STORAGE_CLASSES:
            raise S3Error("InvalidStorageClass", "The storage class you specified is not valid",
                          StorageClassRequested=storage)
        meta["storage_class"] = storage
    tagging = req.header("x-amz-tagging")
    if tagging is not None:
        meta["tags"] = parse_tags(tagging)
    acl = req.header("x-amz-acl")
    from .subresources import header_grants  # the ACL module builds on this one

    grants = header_grants(req)
    if acl and grants:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    if acl or grants:
        meta["acl"] = acl or grants
    return meta


def check_key(key: str) -> None:
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long", Size=len(key.encode()), MaxSizeAllowed=MAX_KEY_BYTES)


def version_headers(bucket: Bucket, obj: ObjectVersion) -> dict[str, str]:
    return {"x-amz-version-id": obj.version_id} if bucket.versioning else {}


def checksum_headers(meta: dict[str, Any]) -> dict[str, str]:
    out = {f"x-amz-checksum-{alg.lower()}": value for alg, value in meta.get("checksums", {}).items()}
    if out:
        out["x-amz-checksum-type"] = meta.get("checksum_type", "FULL_OBJECT")
    return out


def commit(req: S3Request, bucket: Bucket, temp_path: Any, size: int, etag: str, meta: dict[str, Any]) -> ObjectVersion:
    """Install a finished body and make it the key's latest version (its old file goes if replaced)."""
    file = req.store.install_object_file(temp_path)
    versioned = bucket.versioning == "Enabled"
    try:
        return req.store.put(bucket.name, req.key, new_version_id() if versioned else "null", size=size, etag=etag,
                             file=file, meta=meta, keep_history=versioned)
    except BaseException:
        req.store.remove_file(file)
        raise


def announce(req: S3Request, event: str, obj: ObjectVersion | None, key: str | None = None) -> None:
    """The S3 event notification `event` (e.g. "s3:ObjectCreated:Put") for this object, if configured."""
    if obj is None:
        notify(req.extra["account"], req.bucket, event, key or req.key)
    else:
        notify(req.extra["account"], obj.bucket, event, obj.key, obj.size, obj.etag,
               obj.version_id if obj.version_id != "null" else None)


def check_write_conditions(req: S3Request) -> None:
    """Conditional writes: If-None-Match: * (only if absent), If-Match: <etag> (only if unchanged)."""
    none_match, match = req.header("If-None-Match"), req.header("If-Match")
    if none_match is None and match is None:
        return
    current = req.store.latest(req.bucket, req.key)
    exists = current is not None and not current.delete_marker
    if none_match is not None and none_match.strip() == "*" and exists:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                      Condition="If-None-Match")
    if match is not None:
        if not exists:
            raise no_such_key(req.key)
        if current is None or not etag_matches(match, current.etag):
            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                          Condition="If-Match")


def new_object_meta(req: S3Request, bucket: Bucket) -> dict[str, Any]:
    """A new object's metadata (PutObject, CreateMultipartUpload): its headers, then the bucket's defaults."""
    check_key(req.key)
    meta = meta_from_headers(req)
    apply_default_encryption(req, meta)
    apply_lock_defaults(req, bucket, meta)
    return meta


def put_object(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    meta = new_object_meta(req, bucket)
    check_write_conditions(req)
    algorithm, expected = requested_checksum(req.headers)
    received = receive(req.environ, req.headers, req.store.temp_path(), algorithm=algorithm, expected=expected,
                       fsync=req.store.fsync)
    if received.checksums:
        meta["checksums"] = received.checksums
        meta["checksum_type"] = "FULL_OBJECT"
    obj = commit(req, bucket, received.path, received.size, received.etag, meta)
    announce(req, "s3:ObjectCreated:Put", obj)
    headers = {"ETag": obj.etag, **version_headers(bucket, obj), **checksum_headers(meta), **sse_headers(meta)}
    if algorithm:
        headers["x-amz-sdk-checksum-algorithm"] = algorithm
    return S3Response(200, headers)


def apply_lock_defaults(req: S3Request, bucket: Bucket, meta: dict[str, Any]) -> None:
    from .locking import apply_on_write  # locking's handlers use this module's lookups

    apply_on_write(req, bucket, meta)


def sse_headers(meta: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in meta.get("amz", {}).items() if k.startswith("x-amz-server-side")}


def check_restored(obj: ObjectVersion) -> None:
    """Archived objects (GLACIER, DEEP_ARCHIVE) are unreadable until RestoreObject."""
    storage = obj.meta.get("storage_class")
    if storage in ("GLACIER", "DEEP_ARCHIVE") and not obj.meta.get("restore"):
        raise S3Error("InvalidObjectState", "The operation is not valid for the object's storage class",
                      StorageClass=storage)


def find_object(req: S3Request, bucket: Bucket, for_head: bool = False) -> ObjectVersion:
    """The version asked for (versionId) or the latest; delete markers answer as S3 does."""
    version_id = req.query.get("versionId")
    if version_id is not None:
        if version_id == "":
            raise S3Error("InvalidArgument", "Version id cannot be the empty string", ArgumentName="versionId",
                          ArgumentValue="")
        obj = req.store.version(bucket.name, req.key, version_id)
        if obj is None:
            if version_id != "null" and (not bucket.versioning
                                         or not re.fullmatch(r"[0-9a-zA-Z._-]{1,1024}", version_id)):
                raise S3Error("InvalidArgument", "Invalid version id specified", ArgumentName="versionId",
                              ArgumentValue=version_id)
            raise S3Error("NoSuchVersion", "The specified version does not exist.", Key=req.key,
                          VersionId=version_id)
        if obj.delete_marker:
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.",
                          headers={"x-amz-delete-marker": "true", "x-amz-version-id": obj.version_id,
                                   "Last-Modified": http_time(obj.modified), "Allow": "DELETE"},
                          Method=req.method, ResourceType="DeleteMarker")
        return obj
    obj = req.store.latest(bucket.name, req.key)
    if obj is None:
        raise no_such_key(req.key)
    if obj.delete_marker:
        err = no_such_key(req.key)
        err.headers = {"x-amz-delete-marker": "true", "x-amz-version-id": obj.version_id}
        raise err
    return obj


def etag_matches(condition: str, etag: str) -> bool:
    """S3 compares ETags with or without their quotes (even one of them)."""
    values = [v.strip().strip('"') for v in condition.split(",")]
    return "*" in values or etag.strip('"') in values


def check_read_conditions(req: S3Request, obj: ObjectVersion, prefix: str = "") -> None:
    """If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304), with S3's precedence.
    `prefix` = "x-amz-copy-source-" for CopyObject's conditions on the source (failures are 412 there)."""
    match, none_match = req.header(prefix + "If-Match"), req.header(prefix + "If-None-Match")
    unmodified = parse_http_time(req.header(prefix + "If-Unmodified-Since"))
    modified_since = parse_http_time(req.header(prefix + "If-Modified-Since"))
    last = int(obj.modified)
    failed = S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                     Condition=f"{prefix}If-Match")
    if match is not None:
        if not etag_matches(match, obj.etag):
            raise failed
    elif unmodified is not None and last > unmodified:
        failed.extra["Condition"] = f"{prefix}If-Unmodified-Since"
        raise failed
    not_modified = S3Error("NotModified", "Not Modified", 304,
                           headers={"ETag": obj.etag, "Last-Modified": http_time(obj.modified)})
    if prefix:
        not_modified = S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                               Condition=f"{prefix}If-None-Match")
    if none_match is not None:
        if etag_matches(none_match, obj.etag):
            raise not_modified
    elif modified_since is not None and last <= modified_since and match is None:
        raise not_modified


def object_headers(bucket: Bucket, obj: ObjectVersion, req: S3Request) -> dict[str, str]:
    meta = obj.meta
    headers = {"ETag": obj.etag, "Last-Modified": http_time(obj.modified), "Accept-Ranges": "bytes",
               "Content-Type": "binary/octet-stream"}
    headers.update(meta.get("headers", {}))
    for name, value in meta.get("user", {}).items():
        headers[f"x-amz-meta-{name}"] = value
    headers.update(meta.get("amz", {}))
    if bucket.versioning:
        headers["x-amz-version-id"] = obj.version_id
    storage = meta.get("storage_class")
    if storage and storage != "STANDARD":
        headers["x-amz-storage-class"] = storage
    tags = meta.get("tags")
    if tags:
        headers["x-amz-tagging-count"] = str(len(tags))
    if meta.get("restore"):
        headers["x-amz-restore"] = meta["restore"]
    if (req.header("x-amz-checksum-mode") or "").upper() == "ENABLED":
        headers.update(checksum_headers(meta))
    for param, header in (("response-content-type", "Content-Type"), ("response-content-language", "Content-Language"),
                          ("response-expires", "Expires"), ("response-cache-control", "Cache-Control"),
                          ("response-content-disposition", "Content-Disposition"),
                          ("response-content-encoding", "Content-Encoding")):
        if param in req.query:
            headers[header] = req.query[param]
    return headers


def byte_range(req: S3Request, obj: ObjectVersion) -> tuple[int, int] | None:
    """(first, last) inclusive from the Range header or partNumber; None for the whole object."""
    part = req.query.get("partNumber")
    if part is not None:
        try:
            number = int(part)
        except ValueError:
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                          ArgumentName="partNumber", ArgumentValue=part) from None
        sizes = obj.meta.get("part_sizes") or [obj.size]
        if not 1 <= number <= 10000:
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                          ArgumentName="partNumber", ArgumentValue=part)
        if number > len(sizes):
            raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable")
        start = sum(sizes[:number - 1])
        return (start, start + sizes[number - 1] - 1) if sizes[number - 1] else None
    header = req.header("Range")
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None  # S3 ignores a Range it cannot parse (several ranges included) and sends everything
    first, last = match.group(1), match.group(2)
    size = obj.size
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    else:
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0:
            start = size
    if start >= size or size == 0:
        raise S3Error("InvalidRange", "The requested range is not satisfiable", RangeRequested=header,
                      ActualObjectSize=size, headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _file_chunks(handle: Any, remaining: int) -> Generator[bytes, None, None]:
    try:
        while remaining > 0:
            data = handle.read(min(1 << 20, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        handle.close()


class FileBody:
    """A response body read from an open file, 1 MiB at a time (closed when the server is done).
    `file_range` lets our HTTP server hand the bytes to sendfile(2) instead: no copy through Python."""

    def __init__(self, handle: Any, remaining: int) -> None:
        self.handle = handle
        self.file_range = (handle, handle.tell(), remaining)
        self.chunks = _file_chunks(handle, remaining)

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        self.chunks.close()
        self.handle.close()


def get_object(req: S3Request, head: bool = False) -> S3Response:
    for _ in range(3):
        try:
            return _get_object(req, head)
        except FileNotFoundError:  # overwritten (its old file removed) between lookup and open: look again
            continue
    return _get_object(req, head)


def _get_object(req: S3Request, head: bool) -> S3Response:
    bucket = require_bucket(req)
    obj = find_object(req, bucket)
    if not head:
        check_restored(obj)
    check_read_conditions(req, obj)
    headers = object_headers(bucket, obj, req)
    span = byte_range(req, obj)
    status = 200
    if "partNumber" in req.query and obj.meta.get("part_sizes"):
        headers["x-amz-mp-parts-count"] = str(len(obj.meta["part_sizes"]))
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
        headers.pop("x-amz-checksum-type", None)
        for alg in ALGORITHMS:
            headers.pop(f"x-amz-checksum-{alg.lower()}", None)
    else:
        start, end = 0, obj.size - 1
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if head or length == 0 or not obj.file:
        return S3Response(status, headers, b"")
    handle = open(req.store.path(obj.file), "rb")  # noqa: SIM115 - closed by FileBody
    if start:
        handle.seek(start)
    return S3Response(status, headers, FileBody(handle, length))


def delete_object(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    version_id = req.query.get("versionId")
    match = req.header("If-Match")
    if match is not None:
        current = req.store.latest(bucket.name, req.key)
        if current is None or current.delete_marker:
            raise no_such_key(req.key)
        if not etag_matches(match, current.etag):
            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                          Condition="If-Match")
    deleted = _delete_one(req, bucket, req.key, version_id)
    headers = {}
    if deleted.get("DeleteMarker"):
        headers["x-amz-delete-marker"] = "true"
    vid = deleted.get("DeleteMarkerVersionId") or deleted.get("VersionId")
    if vid and bucket.versioning:
        headers["x-amz-version-id"] = vid
    return S3Response(204, headers)


def _delete_one(req: S3Request, bucket: Bucket, key: str, version_id: str | None) -> dict[str, Any]:
    store = req.store
    if version_id is not None:
        doomed = store.version(bucket.name, key, version_id)
        if doomed is not None:
            from .locking import check_deletable

            check_deletable(req, doomed)
        gone = store.delete_version(bucket.name, key, version_id)
        announce(req, "s3:ObjectRemoved:Delete", None, key)
        out: dict[str, Any] = {"Key": key, "VersionId": version_id}
        if gone is not None and gone.delete_marker:
            out["DeleteMarker"] = True
            out["DeleteMarkerVersionId"] = version_id
        return out
    announce(req, "s3:ObjectRemoved:Delete", None, key)
    if bucket.versioning == "Enabled":
        marker = store.put(bucket.name, key, new_version_id(), delete_marker=True)
        return {"Key": key, "DeleteMarker": True, "DeleteMarkerVersionId": marker.version_id}
    if bucket.versioning == "Suspended":
        store.put(bucket.name, key, "null", delete_marker=True, keep_history=False)
        return {"Key": key, "DeleteMarker": True, "DeleteMarkerVersionId": "null"}
    store.delete_version(bucket.name, key, "null")
    return {"Key": key}


def delete_objects(req: S3Request) -> S3Response:
    root = req.xml_body()
    objects = children(root, "Object")
    if not objects or len(objects) > 1000:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                      "published schema")
    bucket = require_bucket(req)
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    parts = []
    for element in objects:
        key = child_text(element, "Key")
        if key is None:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                          "our published schema")
        version_id = child_text(element, "VersionId")
        try:
            from moto.iam.access_control import PermissionResult

            from .subresources import policy_permission  # the ACL module builds on this one

            if policy_permission(req, "s3:DeleteObject", key) == PermissionResult.DENIED:
                raise S3Error("AccessDenied", "Access Denied", 403)
            done = _delete_one(req, bucket, key, version_id)
        except S3Error as err:
            parts.append(f"<Error>{x('Key', key)}{x('VersionId', version_id)}{x('Code', err.code)}"
                         f"{x('Message', err.message)}</Error>")
            continue
        if not quiet:
            parts.append(f"<Deleted>{x('Key', done['Key'])}{x('VersionId', done.get('VersionId'))}"
                         f"{x('DeleteMarker', done.get('DeleteMarker'))}"
                         f"{x('DeleteMarkerVersionId', done.get('DeleteMarkerVersionId'))}</Deleted>")
    return xml_response("DeleteResult", "".join(parts))


def copy_range(src: int, dst: int, offset: int, length: int, hashers: tuple[Any, ...] = ()) -> None:
    """Append `length` bytes of `src` from `offset` to `dst` (file descriptors): in the kernel with
    copy_file_range when nothing needs hashing, through memory otherwise."""
    in_kernel = not hashers and hasattr(os, "copy_file_range")
    end = offset + length
    while offset < end:
        done = 0
        if in_kernel:
            try:
                done = os.copy_file_range(src, dst, min(end - offset, 1 << 30), offset)
            except OSError:
                in_kernel = False
        if done <= 0:
            in_kernel = False
            data = os.pread(src, min(end - offset, 1 << 20), offset)
            if not data:
                raise OSError("the source file is shorter than recorded")
            for hasher in hashers:
                hasher.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view):]
            done = len(data)
        offset += done


def copy_file(source: Any, target: Any, start: int = 0, length: int | None = None,
              hashers: tuple[Any, ...] = (), fsync: bool = False) -> None:
    """Copy a file or a range of it into a new file (fsync'ed if asked)."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        if length is None:
            length = os.fstat(src.fileno()).st_size - start
        copy_range(src.fileno(), dst.fileno(), start, length, hashers)
        if fsync:
            os.fsync(dst.fileno())
