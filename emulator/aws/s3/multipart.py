"""Multipart uploads: parts are received into the upload's assembly file at their offsets when
their sizes allow (`S3Store.claim_part_slot`), else into files of their own.

When CompleteMultipartUpload lists parts 1..k all in place, the assembly file (cut to the object's
size) is renamed into place: no byte is read or copied again, and the ETag comes from the part MD5s
already known. Otherwise the join copies the parts in the kernel (copy_file_range) into one new
body. Either way the body is complete (and fsync'ed in the store's fsync mode) before the object
row is committed; the upload and its part files go only after that.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from .bodies import ALGORITHMS, body_length, checksum_of_file, new_checksum, receive, requested_checksum
from .copying import copy_source
from .errors import S3Error
from .objects import (
    announce,
    check_write_conditions,
    checksum_headers,
    commit,
    copy_file,
    copy_range,
    new_object_meta,
    require_bucket,
    sse_headers,
    version_headers,
)
from .store import Bucket, ObjectVersion, Part, Upload, assembly_file, fsync_dir
from .wire import S3Request, S3Response, child_text, children, elements, int_param, iso, owner, x, xml_response

MIN_PART_SIZE = int(os.environ.get("S3_UPLOAD_PART_MIN_SIZE", str(5 << 20)))
_COPY_RANGE = re.compile(r"^(?:bytes=)?(\d+)-(\d+)$")


def _no_such_upload(upload_id: str | None) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                   "upload may have been aborted or completed.", UploadId=upload_id)


def _upload(req: S3Request) -> Upload:
    upload_id = req.query.get("uploadId", "")
    upload = req.store.upload(upload_id)
    if upload is None or upload.bucket != req.bucket or (upload.key != req.key and req.method != "DELETE"):
        raise _no_such_upload(upload_id)
    return upload


def _part_number(req: S3Request) -> int:
    raw = req.query.get("partNumber", "")
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if number > 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                      ArgumentName="partNumber", ArgumentValue=raw)
    if number < 1:  # what S3 (and moto) answer for a zero or negative one
        raise _no_such_upload(req.query.get("uploadId"))
    return number


def create_upload(req: S3Request) -> S3Response:
    meta = new_object_meta(req, require_bucket(req))
    algorithm = (req.header("x-amz-checksum-algorithm") or "").upper()
    if algorithm:
        if algorithm not in ALGORITHMS:
            raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm} is not supported")
        meta["checksum_algorithm"] = algorithm
        meta["checksum_type"] = (req.header("x-amz-checksum-type") or "COMPOSITE").upper()
    upload = req.store.create_upload(req.bucket, req.key, meta)
    headers = {"x-amz-checksum-algorithm": algorithm} if algorithm else {}
    headers.update(sse_headers(meta))
    if algorithm:
        headers["x-amz-checksum-type"] = meta["checksum_type"]
    return xml_response("InitiateMultipartUploadResult", f"{x('Bucket', req.bucket)}{x('Key', req.key)}"
                        f"{x('UploadId', upload.upload_id)}", headers)


def upload_part(req: S3Request) -> S3Response:
    upload = _upload(req)
    number = _part_number(req)
    algorithm, expected = requested_checksum(req.headers)
    wanted = upload.meta.get("checksum_algorithm")
    store = req.store
    offset = store.claim_part_slot(upload.upload_id, number, body_length(req.environ), MIN_PART_SIZE)
    stored = False
    try:
        target = store.temp_path() if offset is None else store.path(assembly_file(upload.upload_id))
        received = receive(req.environ, req.headers, target, algorithm=algorithm or wanted, expected=expected,
                           fsync=store.fsync, offset=offset)
        if wanted and wanted not in received.checksums:  # the SDK checksummed the part with its default algorithm
            value = checksum_of_file(received.path, wanted, offset or 0, received.size)
            if value:
                received.checksums[wanted] = value
        meta: dict = {"checksums": received.checksums}
        if offset is None:
            file = store.install_part_file(received.path, upload.upload_id, number)
        else:
            file = assembly_file(upload.upload_id)
            meta.update(offset=offset, slot=store.part_slot_size(upload.upload_id))
            if store.fsync:  # the file's name, as install_part_file syncs a part file's
                fsync_dir(store.path(file).parent)
        store.put_part(upload.upload_id, number, received.size, received.etag, file, meta)
        stored = True
    finally:
        if offset is not None:
            store.part_slot_done(upload.upload_id, number, stored)
    headers = {"ETag": received.etag, **sse_headers(upload.meta)}
    headers.update({f"x-amz-checksum-{alg.lower()}": v for alg, v in received.checksums.items()})
    return S3Response(200, headers)


def upload_part_copy(req: S3Request) -> S3Response:
    upload = _upload(req)
    number = _part_number(req)
    _, source = copy_source(req)
    span = req.header("x-amz-copy-source-range")
    start, length = 0, source.size
    if span:
        match = _COPY_RANGE.match(span.strip())
        if not match or int(match.group(2)) < int(match.group(1)) or int(match.group(2)) >= source.size:
            raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                          "bytes=first-last where first and last are the zero-based offsets of the first and last "
                          "bytes to copy", ArgumentName="x-amz-copy-source-range", ArgumentValue=span)
        start, length = int(match.group(1)), int(match.group(2)) - int(match.group(1)) + 1
    md5 = hashlib.md5()
    algorithm = upload.meta.get("checksum_algorithm")
    hasher = new_checksum(algorithm) if algorithm else None
    temp = req.store.temp_path()
    try:
        copy_file(req.store.path(source.file), temp, start, length, tuple(h for h in (md5, hasher) if h is not None),
                  fsync=req.store.fsync)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    file = req.store.install_part_file(temp, upload.upload_id, number)
    checksums = {algorithm: base64.b64encode(hasher.digest()).decode()} if hasher is not None else {}
    etag = f'"{md5.hexdigest()}"'
    req.store.put_part(upload.upload_id, number, length, etag, file, {"checksums": checksums})
    headers = {"x-amz-copy-source-version-id": source.version_id} if source.version_id != "null" else {}
    result = f"{x('ETag', etag)}{x('LastModified', iso(source.modified))}" + "".join(
        x(f"Checksum{alg}", v) for alg, v in checksums.items())
    return xml_response("CopyPartResult", result, headers)


def list_parts(req: S3Request) -> S3Response:
    upload = _upload(req)
    max_parts = int_param(req, "max-parts", 1000, 1000)
    marker = int_param(req, "part-number-marker", 0)
    parts = [p for p in req.store.parts(upload.upload_id) if p.number > marker]
    truncated = len(parts) > max_parts
    parts = parts[:max_parts]
    listed = "".join(
        f"<Part>{x('PartNumber', p.number)}{x('LastModified', iso(p.modified))}{x('ETag', p.etag)}"
        f"{x('Size', p.size)}"
        + "".join(x(f"Checksum{alg}", v) for alg, v in p.meta.get("checksums", {}).items()) + "</Part>"
        for p in parts)
    algorithm = upload.meta.get("checksum_algorithm")
    inner = (elements(("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id),
                      ("PartNumberMarker", marker), ("NextPartNumberMarker", parts[-1].number if parts else 0),
                      ("MaxParts", max_parts), ("IsTruncated", truncated))
             + f"<Initiator>{x('ID', 'webfile')}{x('DisplayName', 'webfile')}</Initiator>{owner()}"
             + elements(("StorageClass", upload.meta.get("storage_class", "STANDARD")),
                        ("ChecksumAlgorithm", algorithm)) + listed)
    return xml_response("ListPartsResult", inner)


def abort_upload(req: S3Request) -> S3Response:
    require_bucket(req)
    upload = _upload(req)
    req.store.end_upload(upload.upload_id)
    return S3Response(204)


def _completed_again(req: S3Request) -> S3Response | None:
    """CompleteMultipartUpload of an upload completed already: the same answer, while that object stands."""
    done = req.store.completed_upload(req.query.get("uploadId", ""))
    if done is None or done[:2] != (req.bucket, req.key):
        return None
    obj = req.store.version(req.bucket, req.key, done[3])
    if obj is None or obj.etag != done[2]:
        return None
    return _completion_answer(req, require_bucket(req), obj)


def _completion_answer(req: S3Request, bucket: Bucket, obj: ObjectVersion) -> S3Response:
    checksum = "".join(x(f"Checksum{alg}", v) for alg, v in obj.meta.get("checksums", {}).items())
    location = f"http://{req.header('Host') or 'localhost'}/{req.bucket}/{req.key}"
    return xml_response("CompleteMultipartUploadResult",
                        f"{x('Location', location)}{x('Bucket', req.bucket)}{x('Key', req.key)}"
                        f"{x('ETag', obj.etag)}{checksum}",
                        {**version_headers(bucket, obj), **checksum_headers(obj.meta), **sse_headers(obj.meta)})


def complete_upload(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    again = _completed_again(req)
    if again is not None:
        return again
    upload = _upload(req)
    root = req.xml_body()
    requested = []
    for element in children(root, "Part"):
        try:
            number = int(child_text(element, "PartNumber") or "")
        except ValueError:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                          "our published schema") from None
        requested.append((number, (child_text(element, "ETag") or "").strip()))
    if not requested:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                      "published schema")
    numbers = [n for n, _ in requested]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be "
                      "specified in order by part number.", UploadId=upload.upload_id)
    check_write_conditions(req)
    stored = {p.number: p for p in req.store.parts(upload.upload_id)}
    chosen = []
    for i, (number, etag) in enumerate(requested):
        part = stored.get(number)
        if part is None or etag.strip('"') != part.etag.strip('"'):
            raise S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may not "
                          "have been uploaded, or the specified entity tag may not match the part's entity tag.",
                          UploadId=upload.upload_id, PartNumber=number, ETag=etag)
        if i < len(requested) - 1 and part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.",
                          ProposedSize=part.size, MinSizeAllowed=MIN_PART_SIZE, PartNumber=number, ETag=part.etag)
        chosen.append(part)
    temp = _join(req, upload, chosen)
    md5s = b"".join(bytes.fromhex(p.etag.strip('"')) for p in chosen)
    etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"'
    meta = dict(upload.meta)
    algorithm = meta.pop("checksum_algorithm", None)
    checksum_type = meta.pop("checksum_type", None)
    if algorithm and all(algorithm in p.meta.get("checksums", {}) for p in chosen):
        joined = b"".join(base64.b64decode(p.meta["checksums"][algorithm]) for p in chosen)
        hasher = new_checksum(algorithm)
        if hasher is not None:
            hasher.update(joined)
            meta["checksums"] = {algorithm: f"{base64.b64encode(hasher.digest()).decode()}-{len(chosen)}"}
            meta["checksum_type"] = checksum_type or "COMPOSITE"
    meta["part_sizes"] = [p.size for p in chosen]
    size = sum(p.size for p in chosen)
    obj = commit(req, bucket, temp, size, etag, meta)
    req.store.end_upload(upload.upload_id, (req.bucket, req.key, obj.etag, obj.version_id))
    announce(req, "s3:ObjectCreated:CompleteMultipartUpload", obj)
    return _completion_answer(req, bucket, obj)


def _in_place(upload: Upload, parts: list[Part]) -> bool:
    """Every part sits in the assembly file right where the object's bytes go (parts 1..k, equal
    sizes but the last)."""
    offset = 0
    for part in parts:
        if part.file != assembly_file(upload.upload_id) or part.meta.get("offset") != offset:
            return False
        offset += part.size
    return True


def _join(req: S3Request, upload: Upload, parts: list[Part]) -> Path:
    """The object's body in a file of its own: the assembly file itself, cut to size, when the parts
    are all in place (and no part is being written into it); else a copy of the parts."""
    store = req.store
    size = sum(p.size for p in parts)
    if _in_place(upload, parts) and store.seal_assembly(upload.upload_id):
        temp = store.temp_path()
        try:  # into tmp/: swept at start-up if we stop before the commit
            os.rename(store.path(assembly_file(upload.upload_id)), temp)
        except FileNotFoundError:  # a concurrent CompleteMultipartUpload took it
            raise _no_such_upload(upload.upload_id) from None
        with open(temp, "r+b") as out:
            if os.fstat(out.fileno()).st_size != size:  # parts past the last one listed
                out.truncate(size)
            store.sync(out.fileno())
        return temp
    temp = store.temp_path()
    try:
        with open(temp, "wb") as out:
            for part in parts:
                with open(store.path(part.file), "rb") as src:
                    copy_range(src.fileno(), out.fileno(), part.meta.get("offset", 0), part.size)
            store.sync(out.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp
