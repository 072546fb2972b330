"""S3 survives its server: kill -9 after an acknowledged write, a body cut off mid-way, plain restarts."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer


def s3_files(data_dir: Path, folder: str) -> list[Path]:
    return [p for p in (data_dir / "s3" / folder).rglob("*") if p.is_file()]


@pytest.mark.parametrize("args", [[], ["--s3-fsync"]], ids=["default", "fsync-mode"])
def test_kill_after_put_object_keeps_the_bytes(tmp_path, args):
    body = os.urandom(24 << 20)
    with EmulatorServer(data_dir=tmp_path, extra_args=args) as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="durable")
        etag = s3.put_object(Bucket="durable", Key="model.tar.gz", Body=body)["ETag"]
        server.stop(kill=True)  # right after the 200
        server.start()
        got = server.client("s3").get_object(Bucket="durable", Key="model.tar.gz")
        assert got["ETag"] == etag == f'"{hashlib.md5(body).hexdigest()}"'
        assert got["Body"].read() == body


@pytest.mark.parametrize("args", [[], ["--s3-fsync"]], ids=["default", "fsync-mode"])
def test_kill_after_complete_multipart_upload_keeps_the_bytes(tmp_path, args):
    parts = [os.urandom(5 << 20), os.urandom(5 << 20), os.urandom(123)]
    with EmulatorServer(data_dir=tmp_path, extra_args=args) as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="durable")
        upload = s3.create_multipart_upload(Bucket="durable", Key="joined")["UploadId"]
        etags = [s3.upload_part(Bucket="durable", Key="joined", UploadId=upload, PartNumber=i + 1, Body=p)["ETag"]
                 for i, p in enumerate(parts)]
        s3.complete_multipart_upload(Bucket="durable", Key="joined", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
        server.stop(kill=True)
        server.start()
        s3 = server.client("s3")
        assert s3.get_object(Bucket="durable", Key="joined")["Body"].read() == b"".join(parts)
        assert s3_files(tmp_path, "parts") == []  # the parts went with the completed upload


def _start_put(url: str, path: str, length: int, sent: int) -> socket.socket:
    """A PUT whose headers promise `length` bytes, of which `sent` are sent (and the rest never)."""
    address = urlparse(url)
    sock = socket.create_connection((address.hostname, address.port))
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Length: {length}\r\n\r\n".encode())
    sock.sendall(os.urandom(sent))
    return sock


def _wait_for_temp_file(data_dir: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not s3_files(data_dir, "tmp"):
        assert time.monotonic() < deadline, "the server never started writing the body"
        time.sleep(0.05)


def test_put_cut_off_by_a_crash_leaves_nothing(tmp_path):
    with EmulatorServer(data_dir=tmp_path) as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="durable")
        sock = _start_put(server.endpoint_url, "/durable/partial", 50 << 20, 3 << 20)
        _wait_for_temp_file(tmp_path)
        server.stop(kill=True)
        sock.close()
        assert s3_files(tmp_path, "tmp")  # the crash left the half-written body behind ...
        server.start()
        assert s3_files(tmp_path, "tmp") == []  # ... and the restart removed it
        with pytest.raises(ClientError) as exc:
            server.client("s3").head_object(Bucket="durable", Key="partial")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_put_cut_off_by_the_client_leaves_nothing(tmp_path):
    with EmulatorServer(data_dir=tmp_path) as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="durable")
        s3.put_object(Bucket="durable", Key="kept", Body=b"old")
        sock = _start_put(server.endpoint_url, "/durable/kept", 50 << 20, 2 << 20)
        _wait_for_temp_file(tmp_path)
        sock.close()
        deadline = time.monotonic() + 10
        while s3_files(tmp_path, "tmp"):
            assert time.monotonic() < deadline, "the temp file of an abandoned body stayed"
            time.sleep(0.05)
        assert s3.get_object(Bucket="durable", Key="kept")["Body"].read() == b"old"  # the old version stands
        assert len(s3_files(tmp_path, "objects")) == 1


def test_restart_keeps_buckets_objects_tags_versions_and_uploads(tmp_path):
    with EmulatorServer(data_dir=tmp_path) as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="kept")
        s3.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_tagging(Bucket="kept", Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
        v1 = s3.put_object(Bucket="kept", Key="k", Body=b"one", Metadata={"m": "1"}, Tagging="a=1")["VersionId"]
        v2 = s3.put_object(Bucket="kept", Key="k", Body=b"two")["VersionId"]
        s3.put_object(Bucket="kept", Key="gone", Body=b"x")
        marker = s3.delete_object(Bucket="kept", Key="gone")["VersionId"]
        upload = s3.create_multipart_upload(Bucket="kept", Key="later")["UploadId"]
        first = s3.upload_part(Bucket="kept", Key="later", UploadId=upload, PartNumber=1, Body=b"p" * (5 << 20))
        before = s3.list_object_versions(Bucket="kept")
        server.stop(kill=True)
        server.start()
        s3 = server.client("s3")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
        assert s3.get_bucket_versioning(Bucket="kept")["Status"] == "Enabled"
        assert s3.get_bucket_tagging(Bucket="kept")["TagSet"] == [{"Key": "team", "Value": "ml"}]
        after = s3.list_object_versions(Bucket="kept")
        assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in after["Versions"]] == [
            (v["Key"], v["VersionId"], v["IsLatest"]) for v in before["Versions"]]
        assert [m["VersionId"] for m in after["DeleteMarkers"]] == [marker]
        old = s3.get_object(Bucket="kept", Key="k", VersionId=v1)
        assert old["Body"].read() == b"one" and old["Metadata"] == {"m": "1"}
        assert s3.get_object_tagging(Bucket="kept", Key="k", VersionId=v1)["TagSet"] == [{"Key": "a", "Value": "1"}]
        assert s3.get_object(Bucket="kept", Key="k")["VersionId"] == v2
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="kept")["Uploads"]] == [upload]
        second = s3.upload_part(Bucket="kept", Key="later", UploadId=upload, PartNumber=2, Body=b"q")
        s3.complete_multipart_upload(Bucket="kept", Key="later", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]})
        assert s3.get_object(Bucket="kept", Key="later")["Body"].read() == b"p" * (5 << 20) + b"q"
        server.restart()  # and a clean one
        assert server.client("s3").get_object(Bucket="kept", Key="k")["Body"].read() == b"two"


def test_large_put_does_not_grow_the_server(tmp_path):
    """A 256 MiB body streams to disk: the server's resident memory grows by far less than that."""
    source = tmp_path / "big.bin"
    with open(source, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(1 << 20))
    with EmulatorServer(data_dir=tmp_path / "data") as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="big")
        rss = Path(f"/proc/{server.process.pid}/status")

        def resident() -> int:
            return next(int(line.split()[1]) for line in rss.read_text().splitlines() if line.startswith("VmHWM"))

        before = resident()
        with open(source, "rb") as body:
            s3.put_object(Bucket="big", Key="big", Body=body)
        digest = hashlib.md5()
        for chunk in s3.get_object(Bucket="big", Key="big")["Body"].iter_chunks(1 << 20):
            digest.update(chunk)
        assert digest.hexdigest() == hashlib.md5(source.read_bytes()).hexdigest()
        assert (resident() - before) * 1024 < 64 << 20  # peak RSS (VmHWM), in KiB
