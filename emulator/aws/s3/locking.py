"""Object Lock on our objects: retention and legal hold per version, and what they forbid.

The bucket's Object Lock configuration (default retention) is moto's (PutObjectLockConfiguration
goes through the bridge and is journaled); the per-version state lives in the version's metadata
as the x-amz-object-lock-* headers S3 returns with it.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from .errors import S3Error
from .moto_bridge import moto_bucket
from .objects import find_object, require_bucket
from .store import Bucket, ObjectVersion
from .wire import S3Request, S3Response, child_text, x, xml_response

MODE, UNTIL, HOLD = "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold"


def _lock_enabled(req: S3Request, bucket: Bucket) -> bool:
    if bucket.meta.get("object_lock"):
        return True
    mirrored = moto_bucket(req.extra["account"], bucket.name)
    return bool(getattr(mirrored, "object_lock_enabled", False))


def _missing_configuration() -> S3Error:
    return S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")


def apply_on_write(req: S3Request, bucket: Bucket, meta: dict[str, Any]) -> None:
    """PutObject & co.: lock headers need a lock-enabled bucket; the bucket's default retention applies."""
    amz = meta["amz"]
    asked = any(k in amz for k in (MODE, UNTIL, HOLD))
    enabled = _lock_enabled(req, bucket) if asked or bucket.versioning else False
    if asked and not enabled:
        raise _missing_configuration()
    if not enabled or MODE in amz:
        return
    mirrored = moto_bucket(req.extra["account"], bucket.name)
    mode = getattr(mirrored, "default_lock_mode", "") if mirrored is not None else ""
    if mode:
        days = (getattr(mirrored, "default_lock_days", 0) or 0) + 365 * (getattr(mirrored, "default_lock_years", 0)
                                                                           or 0)
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
        amz[MODE] = mode
        amz[UNTIL] = until.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _until_ts(value: str) -> float:
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def check_deletable(req: S3Request, obj: ObjectVersion) -> None:
    """Deleting a version for good: a legal hold or a retention still running forbids it."""
    amz = obj.meta.get("amz", {})
    if amz.get(HOLD) == "ON":
        raise S3Error("AccessDenied", "Access Denied because object protected by object lock.", 403)
    mode, until = amz.get(MODE), amz.get(UNTIL)
    if mode and until and _until_ts(until) > time.time():
        bypass = (req.header("x-amz-bypass-governance-retention") or "").lower() == "true"
        if mode == "COMPLIANCE" or not bypass:
            raise S3Error("AccessDenied", "Access Denied because object protected by object lock.", 403)


def _update(req: S3Request, obj: ObjectVersion, changes: dict[str, str | None]) -> None:
    meta = dict(obj.meta)
    amz = dict(meta.get("amz", {}))
    for key, value in changes.items():
        if value is None:
            amz.pop(key, None)
        else:
            amz[key] = value
    meta["amz"] = amz
    req.store.update_meta(obj.seq, meta)


def put_retention(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    obj = find_object(req, bucket)
    if not _lock_enabled(req, bucket):
        raise _missing_configuration()
    root = req.xml_body()
    mode, until = child_text(root, "Mode"), child_text(root, "RetainUntilDate")
    current = obj.meta.get("amz", {})
    if current.get(MODE) == "COMPLIANCE" and _until_ts(current.get(UNTIL, "")) > time.time() and (
            mode != "COMPLIANCE" or _until_ts(until or "") < _until_ts(current.get(UNTIL, ""))):
        raise S3Error("AccessDenied", "Access Denied because object protected by object lock.", 403)
    _update(req, obj, {MODE: mode or None, UNTIL: until or None})
    return S3Response(200)


def get_retention(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    amz = obj.meta.get("amz", {})
    if MODE not in amz:
        raise S3Error("NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock "
                      "configuration", 404)
    return xml_response("Retention", f"{x('Mode', amz[MODE])}{x('RetainUntilDate', amz.get(UNTIL))}")


def put_legal_hold(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    obj = find_object(req, bucket)
    if not _lock_enabled(req, bucket):
        raise _missing_configuration()
    status = child_text(req.xml_body(), "Status")
    if status not in ("ON", "OFF"):
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                      "published schema")
    _update(req, obj, {HOLD: status})
    return S3Response(200)


def get_legal_hold(req: S3Request) -> S3Response:
    obj = find_object(req, require_bucket(req))
    status = obj.meta.get("amz", {}).get(HOLD)
    if status is None:
        raise S3Error("NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock "
                      "configuration", 404)
    return xml_response("LegalHold", x("Status", status))
