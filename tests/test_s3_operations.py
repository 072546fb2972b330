"""Our S3 data plane through boto3 against the running emulator: every operation the SDKs and jobs use."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import urllib.request

import pytest
import requests
from botocore.exceptions import ClientError

from .helpers import error_of, unique


@pytest.fixture
def bucket(s3_client) -> str:
    name = unique("s3")
    s3_client.create_bucket(Bucket=name)
    return name


def test_buckets(s3_client, sagemaker_emulator):
    name = unique("bk")
    s3_client.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    assert s3_client.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    s3_client.create_bucket(Bucket=name)  # us-east-1: creating your own bucket again succeeds
    with pytest.raises(ClientError) as exc:
        s3_client.create_bucket(Bucket="ab")
    assert error_of(exc)[0] == "InvalidBucketName"
    west = sagemaker_emulator.client("s3", region_name="eu-west-1")
    other = unique("bk")
    with pytest.raises(ClientError) as exc:
        west.create_bucket(Bucket=other)
    assert error_of(exc)[0] == "IllegalLocationConstraintException"
    west.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3_client.get_bucket_location(Bucket=other)["LocationConstraint"] == "eu-west-1"
    assert s3_client.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3_client.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3_client.delete_bucket(Bucket=name)
    assert error_of(exc)[0] == "BucketNotEmpty"
    s3_client.delete_object(Bucket=name, Key="k")
    s3_client.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3_client.head_bucket(Bucket=name)
    assert error_of(exc)[2] == 404
    with pytest.raises(ClientError) as exc:
        s3_client.put_object(Bucket=name, Key="k", Body=b"x")
    assert error_of(exc)[0] == "NoSuchBucket"


def test_put_get_head_with_metadata(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"hello world", ContentType="text/plain",
                         Metadata={"owner": "me"}, CacheControl="no-cache", ContentDisposition="inline",
                         StorageClass="STANDARD_IA")
    got = s3_client.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ETag"] == f'"{hashlib.md5(b"hello world").hexdigest()}"'
    assert (got["ContentType"], got["Metadata"], got["CacheControl"], got["ContentDisposition"]) == (
        "text/plain", {"owner": "me"}, "no-cache", "inline")
    head = s3_client.head_object(Bucket=bucket, Key="dir/a.txt")
    assert head["ContentLength"] == 11 and head["StorageClass"] == "STANDARD_IA"
    assert s3_client.get_object(Bucket=bucket, Key="dir/a.txt", Range="bytes=6-")["Body"].read() == b"world"
    ranged = s3_client.get_object(Bucket=bucket, Key="dir/a.txt", Range="bytes=-5")
    assert ranged["Body"].read() == b"world" and ranged["ContentRange"] == "bytes 6-10/11"
    with pytest.raises(ClientError) as exc:
        s3_client.get_object(Bucket=bucket, Key="dir/a.txt", Range="bytes=50-60")
    assert error_of(exc)[0] == "InvalidRange"
    override = s3_client.get_object(Bucket=bucket, Key="dir/a.txt", ResponseContentType="application/json")
    assert override["ContentType"] == "application/json"
    with pytest.raises(ClientError) as exc:
        s3_client.get_object(Bucket=bucket, Key="missing")
    assert error_of(exc)[0] == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3_client.head_object(Bucket=bucket, Key="missing")
    assert error_of(exc)[2] == 404
    s3_client.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3_client.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_conditional_requests_and_checksums(s3_client, bucket):
    etag = s3_client.put_object(Bucket=bucket, Key="c", Body=b"v1", ChecksumAlgorithm="SHA256")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3_client.get_object(Bucket=bucket, Key="c", IfMatch='"other"')
    assert error_of(exc)[2] == 412
    with pytest.raises(ClientError) as exc:
        s3_client.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert error_of(exc)[2] == 304
    with pytest.raises(ClientError) as exc:
        s3_client.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert error_of(exc)[0] == "PreconditionFailed"
    head = s3_client.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"v1").digest()).decode()
    with pytest.raises(ClientError) as exc:  # a Content-MD5 that does not match the body
        s3_client.put_object(Bucket=bucket, Key="bad", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert error_of(exc)[0] == "BadDigest"
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket, Prefix="bad")


def test_listing_v1_v2_prefix_delimiter_pagination(s3_client, bucket):
    keys = [f"logs/2024/{i:03d}.txt" for i in range(25)] + ["logs/readme", "data/x", "data/y/z", "top"]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    pages = list(s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={
        "PageSize": 7}))
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(keys) and len(pages) == 5
    top = s3_client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["data/", "logs/"]
    assert [o["Key"] for o in top["Contents"]] == ["top"]
    logs = s3_client.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in logs["CommonPrefixes"]] == ["logs/2024/"] and logs["KeyCount"] == 2
    v1 = list(s3_client.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="logs/2024/",
                                                              PaginationConfig={"PageSize": 10}))
    assert [o["Key"] for p in v1 for o in p["Contents"]] == sorted(k for k in keys if k.startswith("logs/2024/"))
    after = s3_client.list_objects_v2(Bucket=bucket, StartAfter="logs/2024/020.txt", Prefix="logs/")
    assert [o["Key"] for o in after["Contents"]][:2] == ["logs/2024/021.txt", "logs/2024/022.txt"]
    prefixes = list(s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}))
    assert [e for p in prefixes for e in [c["Prefix"] for c in p.get("CommonPrefixes", [])]
            + [o["Key"] for o in p.get("Contents", [])]] == ["data/", "logs/", "top"]
    assert s3_client.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0


def test_delete_objects_and_copy(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"}, Tagging="t=1")
    s3_client.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    copied = s3_client.get_object(Bucket=bucket, Key="dst")
    assert copied["Body"].read() == b"payload" and copied["Metadata"] == {"a": "1"}
    s3_client.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                          Metadata={"b": "2"}, ContentType="text/csv")
    replaced = s3_client.head_object(Bucket=bucket, Key="dst2")
    assert replaced["Metadata"] == {"b": "2"} and replaced["ContentType"] == "text/csv"
    with pytest.raises(ClientError) as exc:
        s3_client.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert error_of(exc)[0] == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3_client.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert error_of(exc)[0] == "NoSuchKey"
    done = s3_client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "src"}, {"Key": "dst"},
                                                                       {"Key": "never-there"}]})
    assert sorted(d["Key"] for d in done["Deleted"]) == ["dst", "never-there", "src"]
    assert [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]] == ["dst2"]


def test_multipart(s3_client, bucket):
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"m": "1"})["UploadId"]
    assert [u["UploadId"] for u in s3_client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    one, two = os.urandom(5 << 20), os.urandom(1000)
    e1 = s3_client.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=one)["ETag"]
    e2 = s3_client.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2, Body=two)["ETag"]
    assert [p["PartNumber"] for p in s3_client.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]] == [1, 2]
    with pytest.raises(ClientError) as exc:
        s3_client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert error_of(exc)[0] == "InvalidPartOrder"
    done = s3_client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    digest = hashlib.md5(bytes.fromhex(e1.strip('"')) + bytes.fromhex(e2.strip('"'))).hexdigest()
    assert done["ETag"] == f'"{digest}-2"'
    got = s3_client.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == one + two and got["Metadata"] == {"m": "1"}
    assert s3_client.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == two
    assert "Uploads" not in s3_client.list_multipart_uploads(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3_client.list_parts(Bucket=bucket, Key="mp", UploadId=upload)
    assert error_of(exc)[0] == "NoSuchUpload"
    aborted = s3_client.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3_client.upload_part(Bucket=bucket, Key="gone", UploadId=aborted, PartNumber=1, Body=b"x")
    s3_client.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=aborted)
    assert "Uploads" not in s3_client.list_multipart_uploads(Bucket=bucket)
    copy = s3_client.create_multipart_upload(Bucket=bucket, Key="pc")["UploadId"]
    part = s3_client.upload_part_copy(Bucket=bucket, Key="pc", UploadId=copy, PartNumber=1,
                                      CopySource={"Bucket": bucket, "Key": "mp"}, CopySourceRange="bytes=0-99")
    s3_client.complete_multipart_upload(Bucket=bucket, Key="pc", UploadId=copy, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3_client.get_object(Bucket=bucket, Key="pc")["Body"].read() == one[:100]


def test_transfer_manager_round_trip(s3_client, bucket, tmp_path):
    data = os.urandom(20 << 20)  # multipart upload and ranged, threaded download
    s3_client.upload_fileobj(io.BytesIO(data), bucket, "big")
    target = tmp_path / "big"
    s3_client.download_file(bucket, "big", str(target))
    assert target.read_bytes() == data


def test_tagging_and_acl(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=2")
    assert s3_client.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    s3_client.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert s3_client.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3_client.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3_client.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as exc:
        s3_client.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
            {"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]})
    assert error_of(exc)[0] == "InvalidTag"
    s3_client.put_object_acl(Bucket=bucket, Key="t", ACL="public-read")
    grants = s3_client.get_object_acl(Bucket=bucket, Key="t")["Grants"]
    assert {g["Permission"] for g in grants} == {"FULL_CONTROL", "READ"}
    s3_client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    assert s3_client.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ml"}]


def test_versioning(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="v", Body=b"before")  # the `null` version
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3_client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3_client.put_object(Bucket=bucket, Key="v", Body=b"one")["VersionId"]
    v2 = s3_client.put_object(Bucket=bucket, Key="v", Body=b"two")["VersionId"]
    assert s3_client.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    assert s3_client.get_object(Bucket=bucket, Key="v", VersionId=v1)["Body"].read() == b"one"
    assert s3_client.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"before"
    marker = s3_client.delete_object(Bucket=bucket, Key="v")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as exc:
        s3_client.get_object(Bucket=bucket, Key="v")
    assert error_of(exc)[0] == "NoSuchKey"
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)
    versions = s3_client.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in versions["Versions"]] == [v2, v1, "null"]
    assert [(m["VersionId"], m["IsLatest"]) for m in versions["DeleteMarkers"]] == [(marker["VersionId"], True)]
    page = s3_client.list_object_versions(Bucket=bucket, MaxKeys=2)
    assert page["IsTruncated"] and page["NextVersionIdMarker"]
    rest = s3_client.list_object_versions(Bucket=bucket, KeyMarker=page["NextKeyMarker"],
                                          VersionIdMarker=page["NextVersionIdMarker"])
    assert len(rest.get("Versions", [])) + len(rest.get("DeleteMarkers", [])) == 2
    s3_client.delete_object(Bucket=bucket, Key="v", VersionId=marker["VersionId"])  # undelete
    assert s3_client.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    s3_client.delete_object(Bucket=bucket, Key="v", VersionId=v2)
    assert s3_client.get_object(Bucket=bucket, Key="v")["Body"].read() == b"one"


def test_presigned_urls(s3_client, bucket):
    put = s3_client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert requests.put(put, data=b"presigned body", timeout=10).status_code == 200
    get = s3_client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    with urllib.request.urlopen(get) as reply:
        assert reply.read() == b"presigned body"
    expired = s3_client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=-10)
    assert requests.get(expired, timeout=10).status_code == 403
    typed = s3_client.generate_presigned_url("put_object", ExpiresIn=60,
                                             Params={"Bucket": bucket, "Key": "t", "ContentType": "text/csv"})
    for headers in ({}, {"Content-Type": "application/json"}):  # the signed header missing, or another value
        refused = requests.put(typed, data=b"a,b", headers=headers, timeout=10)
        assert refused.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in refused.content
    assert requests.put(typed, data=b"a,b", headers={"Content-Type": "text/csv"}, timeout=10).status_code == 200
    assert s3_client.head_object(Bucket=bucket, Key="t")["ContentType"] == "text/csv"


def test_composite_checksum_of_a_multipart_object(s3_client, bucket):
    """HeadObject gives `<checksum of checksums>-<parts>`; GetObjectAttributes the same value without `-<parts>`."""
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key="cs", ChecksumAlgorithm="SHA256")["UploadId"]
    body = b"some value"
    part = s3_client.upload_part(Bucket=bucket, Key="cs", UploadId=upload, PartNumber=1, Body=body,
                                 ChecksumAlgorithm="SHA256")
    s3_client.complete_multipart_upload(Bucket=bucket, Key="cs", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}]})
    composite = base64.b64encode(hashlib.sha256(hashlib.sha256(body).digest()).digest()).decode()
    assert s3_client.head_object(Bucket=bucket, Key="cs", ChecksumMode="ENABLED")["ChecksumSHA256"] == composite + "-1"
    attributes = s3_client.get_object_attributes(Bucket=bucket, Key="cs", ObjectAttributes=["Checksum"])
    assert attributes["Checksum"]["ChecksumSHA256"] == composite


def test_presigned_post_form_upload(s3_client, bucket):
    post = s3_client.generate_presigned_post(Bucket=bucket, Key="uploads/${filename}",
                                             Fields={"Content-Type": "text/plain"}, ExpiresIn=60)
    reply = requests.post(post["url"], data=post["fields"], files={"file": ("notes.txt", b"form body")},
                          timeout=10)
    assert reply.status_code == 204
    got = s3_client.get_object(Bucket=bucket, Key="uploads/notes.txt")
    assert got["Body"].read() == b"form body" and got["ContentType"] == "text/plain"


def test_keys_with_odd_characters(s3_client, bucket):
    keys = ["with space", "unicodé/ключ", "a+b=c&d", "percent%2Fslash", "//double", "trailing/"]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(keys)
    for key in keys:
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()


def test_reads_during_overwrites_see_whole_versions(s3_client, bucket, sagemaker_emulator):
    """Each GET returns one complete version while another client keeps overwriting the key."""
    import threading

    bodies = [os.urandom(200_000) for _ in range(4)]
    s3_client.put_object(Bucket=bucket, Key="k", Body=bodies[0])
    stop, seen, errors = threading.Event(), [], []

    def writer() -> None:
        client, turn = sagemaker_emulator.client("s3"), 0
        while not stop.is_set():
            client.put_object(Bucket=bucket, Key="k", Body=bodies[turn % 4])
            turn += 1

    def reader() -> None:
        client = sagemaker_emulator.client("s3")
        for _ in range(60):
            try:
                seen.append(client.get_object(Bucket=bucket, Key="k")["Body"].read() in bodies)
            except ClientError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    write = threading.Thread(target=writer)
    write.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    write.join()
    assert errors == [] and len(seen) == 180 and all(seen)


def test_anonymous_reads_follow_object_acls(s3_client, bucket, sagemaker_emulator):
    s3_client.put_object(Bucket=bucket, Key="private", Body=b"p", ACL="private")
    s3_client.put_object(Bucket=bucket, Key="public", Body=b"q", ACL="public-read")
    s3_client.put_object(Bucket=bucket, Key="plain", Body=b"r")  # no ACL given: left open, as moto leaves it
    url = sagemaker_emulator.endpoint_url
    assert requests.get(f"{url}/{bucket}/private", timeout=10).status_code == 403
    assert requests.get(f"{url}/{bucket}/public", timeout=10).content == b"q"
    assert requests.get(f"{url}/{bucket}/plain", timeout=10).content == b"r"
    assert s3_client.get_object(Bucket=bucket, Key="private")["Body"].read() == b"p"  # signed: allowed
