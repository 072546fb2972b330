"""CopyObject and the copy source shared with UploadPartCopy."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from .bodies import new_checksum
from .errors import S3Error, no_such_bucket
from .moto_bridge import default_encryption
from .objects import (
    announce,
    apply_default_encryption,
    apply_lock_defaults,
    check_key,
    check_read_conditions,
    check_restored,
    checksum_headers,
    commit,
    copy_file,
    find_object,
    meta_from_headers,
    parse_tags,
    require_bucket,
    sse_headers,
)
from .store import Bucket, ObjectVersion
from .wire import S3Request, S3Response, iso, x, xml_response


def copy_source(req: S3Request) -> tuple[Bucket, ObjectVersion]:
    """The object named by x-amz-copy-source (`bucket/key[?versionId=...]`), its conditions checked."""
    raw = req.header("x-amz-copy-source") or ""
    path, _, query = raw.partition("?")
    path = unquote(path).lstrip("/")
    bucket_name, _, key = path.partition("/")
    if not bucket_name or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                      ArgumentName="x-amz-copy-source", ArgumentValue=raw)
    version_id = None
    for item in query.split("&"):
        name, _, value = item.partition("=")
        if name == "versionId":
            version_id = unquote(value)
    source_bucket = req.store.bucket(bucket_name)
    if source_bucket is None:
        raise no_such_bucket(bucket_name)
    lookup = S3Request("GET", bucket_name, key, {"versionId": version_id} if version_id else {}, req.environ,
                       req.headers, req.region, req.request_id, req.store, True)
    obj = find_object(lookup, source_bucket)
    try:
        check_restored(obj)
    except S3Error as err:
        raise S3Error("ObjectNotInActiveTierError", "The source object of the COPY action is not in the active "
                      "tier and is only stored in Amazon S3 Glacier.", 403) from err
    check_read_conditions(req, obj, prefix="x-amz-copy-source-")
    return source_bucket, obj


def copy_object(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    check_key(req.key)
    source_bucket, source = copy_source(req)
    directive = (req.header("x-amz-metadata-directive") or "COPY").upper()
    tagging_directive = (req.header("x-amz-tagging-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE") or tagging_directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.")
    algorithm = (req.header("x-amz-checksum-algorithm") or "").upper() or None
    if directive == "REPLACE":
        meta = meta_from_headers(req)
    else:
        meta = {k: v for k, v in source.meta.items()
                if k not in ("tags", "part_sizes", "acl", "restore", "storage_class")}
        meta["amz"] = {k: v for k, v in source.meta.get("amz", {}).items()
                       if not k.startswith(("x-amz-server-side", "x-amz-object-lock"))
                       and k != "x-amz-website-redirect-location"}
        replaced = meta_from_headers(req)
        meta["amz"].update(replaced["amz"])
        if "storage_class" in replaced:
            meta["storage_class"] = replaced["storage_class"]
        if "acl" in replaced:
            meta["acl"] = replaced["acl"]
    apply_default_encryption(req, meta)
    same = source_bucket.name == bucket.name and source.key == req.key
    source_sse = source.meta.get("amz", {}).get("x-amz-server-side-encryption")
    if same and source_sse and source_sse != "AES256" and "x-amz-server-side-encryption" not in meta["amz"]:
        meta["amz"]["x-amz-server-side-encryption"] = "AES256"  # S3's default replaces the source's KMS
    apply_lock_defaults(req, bucket, meta)
    if tagging_directive == "COPY":
        meta["tags"] = dict(source.meta.get("tags", {}))
    else:
        meta["tags"] = parse_tags(req.header("x-amz-tagging") or "")
    if same and directive == "COPY" and not _changes_something(req, bucket, source, algorithm):
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata, storage class, website redirect location or "
                      "encryption attributes.")
    multipart = "-" in source.etag
    md5 = hashlib.md5() if multipart else None
    hasher = new_checksum(algorithm) if algorithm else None
    temp = req.store.temp_path()
    try:
        copy_file(req.store.path(source.file), temp, hashers=tuple(h for h in (md5, hasher) if h is not None),
                  fsync=req.store.fsync)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    etag = f'"{md5.hexdigest()}"' if md5 is not None else source.etag
    checksums: dict[str, str] = {}
    if hasher is not None:
        import base64

        checksums[str(algorithm)] = base64.b64encode(hasher.digest()).decode()
    elif not multipart:
        checksums = dict(source.meta.get("checksums", {}))
    meta.pop("checksums", None)
    meta.pop("checksum_type", None)
    if checksums:
        meta["checksums"], meta["checksum_type"] = checksums, "FULL_OBJECT"
    obj = commit(req, bucket, temp, source.size, etag, meta)
    announce(req, "s3:ObjectCreated:Copy", obj)
    result = (f"{x('ETag', obj.etag)}{x('LastModified', iso(obj.modified))}"
              + "".join(x(f"Checksum{alg}", value) for alg, value in checksums.items()))
    headers: dict[str, Any] = {**checksum_headers(meta), **sse_headers(meta)}
    if source_bucket.versioning:
        headers["x-amz-copy-source-version-id"] = source.version_id
    if bucket.versioning:
        headers["x-amz-version-id"] = obj.version_id
    return xml_response("CopyObjectResult", result, headers)


def _changes_something(req: S3Request, bucket: Bucket, source: ObjectVersion, algorithm: str | None) -> bool:
    """Copying an object onto itself must change something (moto's and S3's rule, as moto states it)."""
    if req.header("x-amz-storage-class") or req.header("x-amz-website-redirect-location"):
        return True
    if bucket.versioning == "Enabled" and "versionId=" in (req.header("x-amz-copy-source") or ""):
        return True
    source_sse = source.meta.get("amz", {}).get("x-amz-server-side-encryption")
    if (source_sse and source_sse != "AES256") or default_encryption(req.extra["account"], bucket.name):
        return True
    if any(req.header(h) for h in ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
                                   "x-amz-server-side-encryption-customer-algorithm")):
        return True
    return bool(algorithm)
