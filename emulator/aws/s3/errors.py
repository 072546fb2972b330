"""S3's errors: a code, a message, an HTTP status and the extra elements S3 puts in `<Error>`."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

_STATUS = {
    "AccessDenied": 403, "BadDigest": 400, "BucketAlreadyExists": 409, "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409, "EntityTooSmall": 400, "EntityTooLarge": 400, "IllegalLocationConstraintException": 400,
    "IncompleteBody": 400, "InvalidArgument": 400, "InvalidBucketName": 400, "InvalidDigest": 400,
    "InvalidLocationConstraint": 400, "InvalidPart": 400, "InvalidPartOrder": 400, "InvalidRange": 416,
    "InvalidRequest": 400, "InvalidTag": 400, "InvalidStorageClass": 400, "MalformedXML": 400,
    "MethodNotAllowed": 405, "NoSuchBucket": 404, "NoSuchKey": 404, "NoSuchUpload": 404, "NoSuchVersion": 404,
    "NoSuchTagSet": 404, "NotImplemented": 501, "PreconditionFailed": 412, "NotModified": 304,
    "InvalidObjectState": 403, "KeyTooLongError": 400, "MissingContentLength": 411, "InvalidToken": 400,
    "IncompatibleLocationConstraintException": 400, "InvalidBucketState": 409, "BadRequest": 400,
    "ConditionalRequestConflict": 409, "InvalidPartNumber": 416,
}


class S3Error(Exception):
    def __init__(self, code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None,
                 bare: bool = False, **extra: Any) -> None:
        """`bare`: answered with the status alone, no XML body (as moto answers refused access)."""
        super().__init__(message)
        self.bare = bare
        self.code, self.message = code, message
        self.status = status or _STATUS.get(code, 400)
        self.headers = headers or {}
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def xml(self, request_id: str) -> bytes:
        extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in self.extra.items())
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code>'
                f"<Message>{escape(self.message)}</Message>{extra}<RequestId>{request_id}</RequestId>"
                f"<HostId>{request_id}</HostId></Error>").encode()


def malformed_xml() -> S3Error:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                   "published schema")


def no_such_bucket(name: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", BucketName=name)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", Key=key)
