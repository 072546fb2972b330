"""An object's sub-resources: ?tagging, ?acl, ?attributes, ?restore."""

from __future__ import annotations

from typing import Any

from .errors import S3Error
from .objects import announce, find_object, require_bucket, validate_tags
from .store import ObjectVersion
from .wire import OWNER_ID, OWNER_NAME, S3Request, S3Response, child_text, children, iso, owner, x, xml_response

_ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
_AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
_CANNED = {"private": [], "public-read": [(_ALL_USERS, "READ")],
           "public-read-write": [(_ALL_USERS, "READ"), (_ALL_USERS, "WRITE")],
           "authenticated-read": [(_AUTHENTICATED, "READ")], "bucket-owner-read": [], "bucket-owner-full-control": [],
           "aws-exec-read": []}


def _version_header(req: S3Request, version_id: str) -> dict[str, str]:
    bucket = req.store.bucket(req.bucket)
    return {"x-amz-version-id": version_id} if bucket and bucket.versioning else {}


def _set(req: S3Request, obj: ObjectVersion, name: str, value: Any, event: str, status: int = 200) -> S3Response:
    """Set (or, with None, drop) one item of a version's metadata, announce it, answer."""
    meta = dict(obj.meta)
    if value is None:
        meta.pop(name, None)
    else:
        meta[name] = value
    req.store.update_meta(obj.seq, meta)
    announce(req, event, obj)
    return S3Response(status, _version_header(req, obj.version_id))


def get_tagging(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    tags = "".join(f"<Tag>{x('Key', k)}{x('Value', v)}</Tag>" for k, v in obj.meta.get("tags", {}).items())
    return xml_response("Tagging", f"<TagSet>{tags}</TagSet>", _version_header(req, obj.version_id))


def put_tagging(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    root = req.xml_body()
    tags: dict[str, str] = {}
    for tag_set in children(root, "TagSet"):
        for tag in children(tag_set, "Tag"):
            key = child_text(tag, "Key")
            if key is None:
                raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate "
                              "against our published schema")
            if key in tags:
                raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
            if key.startswith("aws:"):
                raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")
            tags[key] = child_text(tag, "Value") or ""
    validate_tags(tags)
    return _set(req, obj, "tags", tags, "s3:ObjectTagging:Put")


def delete_tagging(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    return _set(req, obj, "tags", None, "s3:ObjectTagging:Delete", 204)


_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_GRANTEE_KINDS = {"id": "CanonicalUser", "uri": "Group", "url": "Group", "emailaddress": "AmazonCustomerByEmail"}


def _grant(kind: str, value: str, permission: str) -> str:
    if kind == "Group":
        who = x("URI", value)
    elif kind == "AmazonCustomerByEmail":
        who = x("EmailAddress", value)
    else:
        who = x("ID", value) + (x("DisplayName", OWNER_NAME) if value == OWNER_ID else "")
    return f'<Grant><Grantee {_XSI} xsi:type="{kind}">{who}</Grantee>{x("Permission", permission)}</Grant>'


def acl_document(acl: str | list | None) -> str:
    """An ACL is a canned name (the owner's FULL_CONTROL plus the canned grants) or explicit grants."""
    if isinstance(acl, list):
        grants = [tuple(g) for g in acl]
    else:
        grants = [("CanonicalUser", OWNER_ID, "FULL_CONTROL")]
        grants += [("Group", uri, permission) for uri, permission in _CANNED.get(acl or "private", [])]
    return f"{owner()}<AccessControlList>{''.join(_grant(*g) for g in grants)}</AccessControlList>"


def get_acl(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    return xml_response("AccessControlPolicy", acl_document(obj.meta.get("acl")),
                        _version_header(req, obj.version_id))


def header_grants(req: S3Request) -> list[tuple[str, str, str]]:
    grants = []
    for name, permission in (("x-amz-grant-full-control", "FULL_CONTROL"), ("x-amz-grant-read", "READ"),
                             ("x-amz-grant-write", "WRITE"), ("x-amz-grant-read-acp", "READ_ACP"),
                             ("x-amz-grant-write-acp", "WRITE_ACP")):
        for grantee in filter(None, (g.strip() for g in (req.header(name) or "").split(","))):
            kind, _, value = grantee.partition("=")
            grants.append((_GRANTEE_KINDS.get(kind.strip().lower(), "CanonicalUser"), value.strip().strip('"'),
                           permission))
    return grants


def _body_grants(req: S3Request) -> list[tuple[str, str, str]]:
    grants = []
    for access in children(req.xml_body(), "AccessControlList"):
        for grant in children(access, "Grant"):
            permission = child_text(grant, "Permission") or ""
            for grantee in children(grant, "Grantee"):
                kind = next((v for k, v in grantee.attrib.items() if k.endswith("}type") or k == "type"),
                            "CanonicalUser")
                value = child_text(grantee, "URI") or child_text(grantee, "ID") or child_text(
                    grantee, "EmailAddress") or ""
                grants.append((kind, value, permission))
    return grants


def put_acl(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    canned = req.header("x-amz-acl")
    grants = header_grants(req)
    if canned and grants:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    acl: str | list
    if canned:
        if canned not in _CANNED:
            raise S3Error("InvalidArgument", "Invalid canned ACL", ArgumentName="x-amz-acl", ArgumentValue=canned)
        acl = canned
    else:
        acl = grants or _body_grants(req)
    return _set(req, obj, "acl", acl, "s3:ObjectAcl:Put")


def get_attributes(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    obj = find_object(req, bucket)
    wanted = {a.strip() for a in (req.header("x-amz-object-attributes") or "").split(",") if a.strip()}
    if not wanted:
        raise S3Error("InvalidArgument", "Invalid attribute name specified.")
    parts = []
    if "ETag" in wanted:
        parts.append(x("ETag", obj.etag.strip('"')))
    if "Checksum" in wanted and obj.meta.get("checksums"):
        # A multipart object's composite checksum carries `-<parts>` in HeadObject/GetObject, not here
        # (AWS-verified in moto's test_copy_key_with_args__using_multipart); base64 never holds a '-'.
        inner = "".join(x(f"Checksum{alg}", value.split("-", 1)[0]) for alg, value in obj.meta["checksums"].items())
        parts.append(f"<Checksum>{inner}</Checksum>")
    if "ObjectParts" in wanted and obj.meta.get("part_sizes"):
        sizes = obj.meta["part_sizes"]
        listed = "".join(f"<Part>{x('PartNumber', i + 1)}{x('Size', s)}</Part>" for i, s in enumerate(sizes))
        parts.append(f"<ObjectParts>{x('TotalPartsCount', len(sizes))}{x('PartNumberMarker', 0)}"
                     f"{x('NextPartNumberMarker', len(sizes))}{x('MaxParts', 1000)}{x('IsTruncated', False)}"
                     f"{listed}</ObjectParts>")
    if "StorageClass" in wanted:
        parts.append(x("StorageClass", obj.meta.get("storage_class", "STANDARD")))
    if "ObjectSize" in wanted:
        parts.append(x("ObjectSize", obj.size))
    headers = {"Last-Modified": _http(obj.modified)}
    if bucket.versioning:
        headers["x-amz-version-id"] = obj.version_id
    return xml_response("GetObjectAttributesResponse", "".join(parts), headers)


def _http(ts: float) -> str:
    from .wire import http_time

    return http_time(ts)


def restore(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    storage = obj.meta.get("storage_class", "STANDARD")
    if storage not in ("GLACIER", "DEEP_ARCHIVE"):
        raise S3Error("InvalidObjectState", "The operation is not valid for the object's storage class",
                      StorageClass=storage)
    root = req.xml_body()
    days = child_text(root, "Days") or "1"
    already = bool(obj.meta.get("restore"))
    meta = dict(obj.meta)
    import time

    meta["restore"] = f'ongoing-request="false", expiry-date="{iso(time.time() + int(days) * 86400)}"'
    req.store.update_meta(obj.seq, meta)
    announce(req, "s3:ObjectRestore:Post", obj)
    announce(req, "s3:ObjectRestore:Completed", obj)  # restored at once here
    return S3Response(200 if already else 202)


def _public_read(acl: str | list | None) -> bool:
    if isinstance(acl, list):
        return any(value.endswith("/global/AllUsers") and permission in ("READ", "FULL_CONTROL")
                   for _, value, permission in acl)
    return acl in ("public-read", "public-read-write")


def policy_permission(req: S3Request, action: str, key: str) -> Any:
    """What the bucket's policy (moto's) says of `action` on `key`: moto's PermissionResult, or None."""
    from .moto_bridge import moto_bucket

    mirrored = moto_bucket(req.extra["account"], req.bucket)
    if mirrored is None:
        return None
    return mirrored.get_permission(action, f"arn:{mirrored.partition}:s3:::{req.bucket}/{key}")


def check_object_access(req: S3Request) -> None:
    """What moto's server enforces on object requests, kept: a bucket policy that denies the action
    refuses it for anyone; an anonymous request (neither signed nor presigned) is refused an object
    given a non-public ACL, unless the policy allows it. (Objects stored without an ACL stay open to
    anonymous reads, as they were.) Refusals are a bare 403, as moto's."""
    from moto.iam.access_control import PermissionResult

    permission = policy_permission(req, f"s3:{req.method.capitalize()}Object", req.key)
    if permission is None:
        return
    denied = S3Error("AccessDenied", "Access Denied", 403, bare=True)
    if permission == PermissionResult.DENIED:
        raise denied
    anonymous = not req.header("Authorization") and "Signature=" not in req.environ.get("QUERY_STRING", "")
    if anonymous and permission != PermissionResult.PERMITTED:
        obj = req.store.latest(req.bucket, req.key)
        if obj is not None and not obj.delete_marker and "acl" in obj.meta and not _public_read(obj.meta["acl"]):
            raise denied
