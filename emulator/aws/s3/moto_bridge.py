"""Bucket configuration (policy, CORS, lifecycle, tagging, encryption, ...): moto's, made durable.

Our store owns buckets and objects; moto keeps answering the many bucket-configuration
operations. Each bucket we create is created in moto's backend too, and every configuration
request moto accepts (PUT/POST/DELETE, 2xx) is journaled in the store; at start-up the buckets are
re-created in moto and the journal replayed into it in order, so moto's view comes back as it was.
DeleteBucket drops the bucket's journal.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .. import moto_state
from .store import S3Store

log = logging.getLogger(__name__)

_KEPT_HEADERS = ("CONTENT_TYPE", "HTTP_CONTENT_MD5", "HTTP_HOST")
_MAX_CONFIG_BODY = 4 << 20


def _backend(account_id: str, name: str | None = None, region: str | None = None) -> Any:
    """moto's S3 backend holding bucket `name` (or, for a new bucket, the one of `region`'s partition)."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    if name is not None and name in s3_backends.bucket_accounts:
        partition, account_id = s3_backends.bucket_accounts[name]
        return s3_backends[account_id][partition]
    return s3_backends[account_id][get_partition(region) if region else "aws"]


def moto_create_bucket(account_id: str, name: str, region: str) -> None:
    backend = _backend(account_id, name, region)
    if name not in backend.buckets:
        try:
            backend.create_bucket(name, region)
        except Exception:  # moto refuses a name we accepted: its configuration calls will say so
            log.warning("moto could not mirror bucket %s", name, exc_info=True)


def moto_delete_bucket(account_id: str, name: str) -> None:
    backend = _backend(account_id, name)
    if name in backend.buckets:
        try:
            backend.delete_bucket(name)
        except Exception:
            log.warning("moto could not delete its mirror of bucket %s", name, exc_info=True)


def moto_bucket(account_id: str, name: str) -> Any | None:
    """moto's bucket of that name (one CloudFormation created, say), or None."""
    return _backend(account_id, name).buckets.get(name)


def default_encryption(account_id: str, name: str) -> dict[str, str]:
    """The SSE headers a new object gets from its bucket's default encryption (PutBucketEncryption)."""
    bucket = moto_bucket(account_id, name)
    rule = ((getattr(bucket, "encryption", None) or {}).get("Rule") or {}) if bucket is not None else {}
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    headers = {}
    if default.get("SSEAlgorithm"):
        headers["x-amz-server-side-encryption"] = default["SSEAlgorithm"]
    if default.get("KMSMasterKeyID"):
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = default["KMSMasterKeyID"]
    if str(rule.get("BucketKeyEnabled", "")).lower() == "true":
        headers["x-amz-server-side-encryption-bucket-key-enabled"] = "true"
    return headers


def moto_versioning(account_id: str, name: str, status: str) -> None:
    backend = _backend(account_id, name)
    if name in backend.buckets:
        backend.put_bucket_versioning(name, status)


class MotoBridge:
    """Forwards a bucket-configuration request to moto's WSGI app and journals what changed."""

    def __init__(self, moto: Callable, store: S3Store, account_id: str) -> None:
        self.moto, self.store, self.account_id = moto, store, account_id

    def restore(self) -> None:
        """Start-up: moto's buckets and their configuration, as the journal left them."""
        for bucket in self.store.buckets():
            moto_create_bucket(self.account_id, bucket.name, bucket.region)
            if bucket.versioning:
                moto_versioning(self.account_id, bucket.name, bucket.versioning)
        for bucket_name, request, body in self.store.journal_entries():
            environ = {"REQUEST_METHOD": request["method"], "PATH_INFO": request["path"],
                       "QUERY_STRING": request["query"], "RAW_URI": request["raw_uri"],
                       "SERVER_NAME": "localhost", "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1",
                       "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
                       "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
                       "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
                       "HTTP_AUTHORIZATION": (f"AWS4-HMAC-SHA256 Credential=replay/20000101/{request['region']}/s3/"
                                              "aws4_request, SignedHeaders=host, Signature=0"),
                       **request["headers"]}
            status: list[str] = []
            try:
                for _ in self.moto(environ, lambda s, h, e=None, seen=status: seen.append(s)):
                    pass
            except Exception:
                log.warning("could not replay a configuration request on bucket %s", bucket_name, exc_info=True)
            if status and not status[0].startswith("2"):
                log.warning("replaying %s %s on bucket %s answered %s", request["method"], request["raw_uri"],
                            bucket_name, status[0])

    def forward(self, environ: dict, start_response: Callable, bucket: str, region: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD") or not bucket:
            return self.moto(environ, start_response)
        stream = environ["wsgi.input"]
        received = bytearray()
        while len(received) <= _MAX_CONFIG_BODY:
            chunk = stream.read(65536)
            if not chunk:
                break
            received += chunk
        body = bytes(received)
        forwarded = dict(environ)
        forwarded["wsgi.input"] = io.BytesIO(body)
        forwarded["CONTENT_LENGTH"] = str(len(body))
        forwarded.pop("HTTP_TRANSFER_ENCODING", None)
        answered: list[str] = []

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            answered.append(status)
            return start_response(status, headers, exc_info)

        result = self.moto(forwarded, recording_start_response)
        if answered and answered[0].startswith("2"):
            raw_uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
            self.store.journal(bucket, {
                "method": method, "path": environ.get("PATH_INFO", ""), "query": environ.get("QUERY_STRING", ""),
                "raw_uri": raw_uri, "region": region,
                "headers": {k: v for k, v in environ.items()
                            if k in _KEPT_HEADERS or (k.startswith("HTTP_X_AMZ_") and k != "HTTP_X_AMZ_DATE"
                                                      and "SECURITY_TOKEN" not in k)}}, body)
        return result


def notify(account_id: str, bucket_name: str, event: str, key: str, size: int = 0, etag: str = "",
           version_id: str | None = None) -> None:
    """S3 event notifications (SQS, SNS, Lambda, EventBridge) as the bucket's configuration in moto
    asks; moto delivers them. A no-op for the buckets (nearly all) without a configuration."""
    bucket = moto_bucket(account_id, bucket_name)
    if bucket is None or getattr(bucket, "notification_configuration", None) is None:
        return
    from types import SimpleNamespace

    from moto.s3 import notifications

    try:
        notifications.send_event(account_id, event, bucket, SimpleNamespace(  # type: ignore[arg-type]
            name=key, size=size, etag=etag.strip('"'), version_id=version_id))
    except Exception:
        log.warning("could not deliver the %s notification of s3://%s/%s", event, bucket_name, key, exc_info=True)
    moto_state.changed()  # the message now sits in a queue (or a topic's subscription) of moto's


class Materialized:
    """An object of ours copied into moto's backend for the length of one request moto answers
    (SelectObjectContent): moto's S3 Select reads the key's value from its own store."""

    _lock = threading.Lock()
    MAX_BYTES = 256 << 20

    def __init__(self, account_id: str, bucket: str, key: str, path: str, size: int) -> None:
        self.account_id, self.bucket, self.key, self.path, self.size = account_id, bucket, key, path, size

    def __enter__(self) -> Materialized:
        self._lock.acquire()
        try:
            with open(self.path, "rb") as f:
                value = f.read()
            _backend(self.account_id, self.bucket).put_object(self.bucket, self.key, value, disable_notification=True)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            keys = _backend(self.account_id, self.bucket).buckets[self.bucket].keys
            if keys.getlist(self.key):
                keys.pop(self.key)  # disposes of each version's buffer
        finally:
            self._lock.release()
