"""Multipart parts received in place (the upload's assembly file): CompleteMultipartUpload of parts
1..k takes that file as the object without copying it, and every case that does not fit (a part
that arrived first but is the short last one, a re-upload, a subset of the parts, a part that
failed) still ends with exactly the bytes and ETag S3 gives."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import error_of, unique

PART = 5 << 20  # S3's smallest part but the last


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with EmulatorServer(data_dir=tmp_path_factory.mktemp("assembly")) as running:
        yield running


@pytest.fixture
def s3(server):
    client = server.client("s3")
    client.bucket = unique("asm")  # type: ignore[attr-defined]
    client.create_bucket(Bucket=client.bucket)  # type: ignore[attr-defined]
    return client


def _upload(s3, key: str) -> str:
    return s3.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]


def _part(s3, key: str, upload: str, number: int, body: bytes) -> dict:
    etag = s3.upload_part(Bucket=s3.bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
    return {"PartNumber": number, "ETag": etag}


def _complete(s3, key: str, upload: str, parts: list[dict]) -> str:
    return s3.complete_multipart_upload(Bucket=s3.bucket, Key=key, UploadId=upload,
                                        MultipartUpload={"Parts": parts})["ETag"]


def _multipart_etag(bodies: list[bytes]) -> str:
    return f'"{hashlib.md5(b"".join(hashlib.md5(b).digest() for b in bodies)).hexdigest()}-{len(bodies)}"'


def _part_files(server, upload: str) -> list[str]:
    folder = Path(server.data_dir) / "s3" / "parts" / upload
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _check(s3, key: str, bodies: list[bytes], etag: str) -> None:
    assert etag == _multipart_etag(bodies)
    got = s3.get_object(Bucket=s3.bucket, Key=key)
    assert got["ETag"] == etag and got["ContentLength"] == sum(map(len, bodies))
    assert got["Body"].read() == b"".join(bodies)


def test_equal_parts_land_in_one_file_that_becomes_the_object(server, s3):
    bodies = [os.urandom(PART), os.urandom(PART), os.urandom(777)]
    upload = _upload(s3, "k")
    parts = [_part(s3, "k", upload, i + 1, b) for i, b in enumerate(bodies)]
    assert _part_files(server, upload) == ["data"]  # no part file of its own: all in place
    inode = os.stat(Path(server.data_dir) / "s3" / "parts" / upload / "data").st_ino
    _check(s3, "k", bodies, _complete(s3, "k", upload, parts))
    objects = [p for p in (Path(server.data_dir) / "s3" / "objects").rglob("*") if p.is_file()]
    assert inode in {p.stat().st_ino for p in objects}  # renamed, not copied
    assert not (Path(server.data_dir) / "s3" / "parts" / upload).exists()


def test_short_last_part_arriving_first_falls_back_to_a_copy(server, s3):
    bodies = [os.urandom(PART), os.urandom(PART), os.urandom(1000)]
    upload = _upload(s3, "k")
    last = _part(s3, "k", upload, 3, bodies[2])  # too small to set the slot size: a file of its own
    parts = [_part(s3, "k", upload, 1, bodies[0]), _part(s3, "k", upload, 2, bodies[1]), last]
    assert len(_part_files(server, upload)) == 2  # the assembly file and part 3's
    _check(s3, "k", bodies, _complete(s3, "k", upload, parts))


def test_reuploaded_part_replaces_the_first_and_keeps_the_others(server, s3):
    bodies = [os.urandom(PART), os.urandom(PART), os.urandom(PART)]
    upload = _upload(s3, "k")
    parts = [_part(s3, "k", upload, i + 1, b) for i, b in enumerate(bodies)]
    bodies[1] = os.urandom(PART)
    parts[1] = _part(s3, "k", upload, 2, bodies[1])  # its slot is taken: a file of its own
    _check(s3, "k", bodies, _complete(s3, "k", upload, parts))


def test_subset_of_parts_and_parts_past_the_last_listed(server, s3):
    bodies = [os.urandom(PART) for _ in range(3)]
    upload = _upload(s3, "gap")
    parts = [_part(s3, "gap", upload, i + 1, b) for i, b in enumerate(bodies)]
    _check(s3, "gap", [bodies[0], bodies[2]], _complete(s3, "gap", upload, [parts[0], parts[2]]))  # copied
    upload = _upload(s3, "head")
    parts = [_part(s3, "head", upload, i + 1, b) for i, b in enumerate(bodies)]
    _check(s3, "head", bodies[:2], _complete(s3, "head", upload, parts[:2]))  # in place, cut to size


def test_part_larger_than_the_slot_and_checksums(server, s3):
    bodies = [os.urandom(PART), os.urandom(PART + 1)]  # part 2 does not fit its slot: a file of its own
    upload = s3.create_multipart_upload(Bucket=s3.bucket, Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    parts = []
    for i, body in enumerate(bodies):
        reply = s3.upload_part(Bucket=s3.bucket, Key="k", UploadId=upload, PartNumber=i + 1, Body=body,
                               ChecksumAlgorithm="SHA256")
        assert reply["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        parts.append({"PartNumber": i + 1, "ETag": reply["ETag"], "ChecksumSHA256": reply["ChecksumSHA256"]})
    _check(s3, "k", bodies, _complete(s3, "k", upload, parts))


def test_failed_part_frees_its_slot_and_leaves_the_others(server, s3):
    bodies = [os.urandom(PART), os.urandom(PART)]
    upload = _upload(s3, "k")
    first = _part(s3, "k", upload, 1, bodies[0])
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=s3.bucket, Key="k", UploadId=upload, PartNumber=2, Body=bodies[1],
                       ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
    assert error_of(exc)[0] == "BadDigest"
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=s3.bucket, Key="k", UploadId=upload)["Parts"]] == [1]
    second = _part(s3, "k", upload, 2, bodies[1])
    assert _part_files(server, upload) == ["data"]
    _check(s3, "k", bodies, _complete(s3, "k", upload, [first, second]))


def test_abort_removes_the_assembly_file(server, s3):
    upload = _upload(s3, "k")
    _part(s3, "k", upload, 1, os.urandom(PART))
    s3.abort_multipart_upload(Bucket=s3.bucket, Key="k", UploadId=upload)
    assert _part_files(server, upload) == []
