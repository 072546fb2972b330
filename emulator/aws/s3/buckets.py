"""CreateBucket, DeleteBucket, HeadBucket, ListBuckets, bucket versioning and location."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .errors import S3Error, malformed_xml
from .moto_bridge import moto_bucket, moto_create_bucket, moto_delete_bucket, moto_versioning
from .objects import require_bucket
from .wire import S3Request, S3Response, child_text, int_param, iso, owner, x, xml_response

# moto's rule (length only, plus the characters a URL path can hold); S3 outside us-east-1 is stricter.
_NAME = re.compile(r"^[A-Za-z0-9._\-]{3,63}$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
DEFAULT_REGION = "us-east-1"


def valid_bucket_name(name: str) -> bool:
    return bool(_NAME.match(name)) and not _IP.match(name)


def create_bucket(req: S3Request) -> S3Response:
    name = req.bucket
    if not valid_bucket_name(name):
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", BucketName=name)
    root = req.xml_body(optional=True)
    constraint = child_text(root, "LocationConstraint") if root is not None else None
    region = req.region
    if region == DEFAULT_REGION:
        if constraint == DEFAULT_REGION:
            raise S3Error("InvalidLocationConstraint", "The specified location-constraint is not valid",
                          LocationConstraint=constraint)
    else:
        if not constraint:
            raise S3Error("IllegalLocationConstraintException", "The unspecified location constraint is "
                          "incompatible for the region specific endpoint this request was sent to.")
        if constraint != region:
            raise S3Error("IllegalLocationConstraintException", f"The {constraint} location constraint is "
                          "incompatible for the region specific endpoint this request was sent to.")
    bucket_region = constraint or region
    meta: dict = {}
    namespace = req.header("x-amz-bucket-namespace")
    if namespace == "account-regional":
        suffix = f"-{req.extra['account']}-{bucket_region}-an"
        if not name.endswith(suffix):
            raise S3Error("InvalidNamespaceHeader", "The requested bucket name did not include the "
                          "account-regional namespace suffix, but the provided x-amz-bucket-namespace header value "
                          f"is account-regional. Specify {suffix} as the bucket name suffix to create a bucket in "
                          "your account-regional namespace, or remove the header.")
        meta["namespace"] = namespace
    lock = (req.header("x-amz-bucket-object-lock-enabled") or "").lower() == "true"
    if lock:
        meta["object_lock"] = True
    if req.header("x-amz-acl"):
        meta["acl"] = req.header("x-amz-acl")
    created = req.store.create_bucket(name, bucket_region, meta)
    if not created:
        existing = req.store.bucket(name)
        if existing and existing.region == DEFAULT_REGION and region == DEFAULT_REGION:
            return S3Response(200, {"Location": f"/{name}"})  # us-east-1: creating your own bucket again is a no-op
        raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and "
                      "you already own it.", BucketName=name)
    if lock:
        req.store.set_bucket(name, versioning="Enabled")
    moto_create_bucket(req.extra["account"], name, bucket_region)
    mirrored = moto_bucket(req.extra["account"], name)
    if lock and mirrored is not None:
        moto_versioning(req.extra["account"], name, "Enabled")
        mirrored.object_lock_enabled = True
    if req.header("x-amz-object-ownership") and mirrored is not None:
        mirrored.ownership_rule = req.header("x-amz-object-ownership")
    if namespace == "account-regional":
        return S3Response(200, {"Location": f"/{name}", "x-amz-bucket-arn": f"arn:aws:s3:::{name}"})
    return S3Response(200, {"Location": f"/{name}"})


def delete_bucket(req: S3Request) -> S3Response:
    require_bucket(req)
    if not req.store.bucket_is_empty(req.bucket):
        raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", BucketName=req.bucket)
    req.store.delete_bucket(req.bucket)
    moto_delete_bucket(req.extra["account"], req.bucket)
    return S3Response(204)


def head_bucket(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    return S3Response(200, {"x-amz-bucket-region": bucket.region, "x-amz-access-point-alias": "false"})


def list_buckets(req: S3Request) -> S3Response:
    prefix = req.query.get("prefix", "")
    region = req.query.get("bucket-region")
    max_buckets = int_param(req, "max-buckets", 10000, 10000)
    after = req.query.get("continuation-token", "")
    buckets = [b for b in req.store.buckets()
               if b.name.startswith(prefix) and b.name > after and (region is None or b.region == region)]
    page = buckets[:max_buckets] if "max-buckets" in req.query else buckets
    listed = "".join(f"<Bucket>{x('Name', b.name)}{x('CreationDate', iso(b.created))}"
                     f"{x('BucketRegion', b.region)}</Bucket>" for b in page)
    token = x("ContinuationToken", page[-1].name) if len(page) < len(buckets) and page else ""
    return xml_response("ListAllMyBucketsResult", f"{owner()}<Buckets>{listed}</Buckets>{token}"
                        f"{x('Prefix', prefix or None)}")


def get_versioning(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    return xml_response("VersioningConfiguration", x("Status", bucket.versioning or None))


def put_versioning(req: S3Request) -> bytes:
    """Record the new state; the caller forwards the same request to moto. Returns the body sent."""
    bucket = require_bucket(req)
    body = req.body()
    try:
        status = child_text(ET.fromstring(body), "Status")
    except ET.ParseError:
        raise malformed_xml() from None
    if status not in ("Enabled", "Suspended"):
        raise malformed_xml()
    if status == "Suspended" and bucket.meta.get("object_lock"):
        raise S3Error("InvalidBucketState", "An Object Lock configuration is present on this bucket, so the "
                      "versioning state cannot be changed.")
    req.store.set_bucket(req.bucket, versioning=status)
    return body


def get_location(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    region = None if bucket.region == DEFAULT_REGION else bucket.region
    return S3Response(200, {"Content-Type": "application/xml"},
                      f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
                      f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{region or ""}</LocationConstraint>'.encode())
