"""The S3 data plane as a WSGI app: which request is which operation, and S3's way of answering.

Buckets, objects, listings, multipart uploads, tagging and versioning are ours (store.py, on
disk); any other bucket sub-resource (?policy, ?cors, ?lifecycle, ?tagging of a bucket, ...) goes
to moto through `MotoBridge`, which journals it so that it survives a restart too.
"""

from __future__ import annotations

import calendar
import io
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES

from . import buckets, copying, form_upload, listing, locking, multipart, objects, subresources
from .errors import S3Error
from .moto_bridge import Materialized, MotoBridge
from .store import S3Store
from .wire import S3Request, S3Response

log = logging.getLogger(__name__)

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"^[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request$")
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+?)\.(?:s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com|localhost|s3\.localhost)$")
# Object sub-resources we answer; any other one on an object is refused rather than mis-served.
_OBJECT_SUBRESOURCES = {"tagging", "acl", "uploadId", "uploads", "attributes", "restore", "partNumber", "versionId"}
_BUCKET_OWN = {"versioning", "location", "versions", "uploads", "delete", "list-type"}
_S3_POST_QUERIES = ("uploads", "uploadId", "delete", "restore", "select")


def _region_and_service(environ: dict) -> tuple[str | None, str | None]:
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION") or "")
    if match:
        return match.group(1), match.group(2)
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential=" in query:
        for name, value in parse_qsl(query):
            if name == "X-Amz-Credential":
                found = _QUERY_SCOPE.match(value)
                if found:
                    return found.group(1), found.group(2)
    return None, None


def owns(environ: dict) -> bool:
    """Whether a request that is not SageMaker's is S3's (and not, say, STS's or IAM's)."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/_emulator/", "/v20180820/")):
        return False
    if "s3-control" in environ.get("HTTP_HOST", ""):
        return False
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    if auth.startswith("AWS "):  # Signature V2: only S3 still takes it
        return True
    _, service = _region_and_service(environ)
    if service is not None:
        return service == "s3"
    query = environ.get("QUERY_STRING", "")
    if "AWSAccessKeyId=" in query and "Signature=" in query:
        return True
    if auth or environ.get("HTTP_X_AMZ_TARGET"):
        return False
    method = environ.get("REQUEST_METHOD", "GET")
    if method == "POST":
        if environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):  # a browser form upload
            return True
        names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        return any(n in names for n in _S3_POST_QUERIES)
    return method in ("GET", "HEAD", "PUT", "DELETE")


def _raw_path(environ: dict) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    path = raw.split("?", 1)[0] if raw else environ.get("PATH_INFO", "")
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return path


def _check_presigned_expiry(query: dict[str, str]) -> None:
    if "X-Amz-Date" in query and "X-Amz-Expires" in query:
        try:
            signed = calendar.timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
            expires = int(query["X-Amz-Expires"])
        except ValueError:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed") from None
        if time.time() > signed + expires:
            raise S3Error("AccessDenied", "Request has expired", 403, X_Amz_Expires=expires)
    elif "Expires" in query and "AWSAccessKeyId" in query:
        try:
            if time.time() > int(query["Expires"]):
                raise S3Error("AccessDenied", "Request has expired", 403)
        except ValueError:
            pass


# What a Signature V2 presigned URL signs besides the method and path: botocore puts these headers'
# values into the query string, and S3 computes the signature from the request's own headers.
_V2_SIGNED_HEADERS = ("Content-Disposition", "Content-Encoding", "Content-Language", "Content-MD5", "Content-Type")


def _check_presigned_headers(query: dict[str, str], headers: Any) -> None:
    """A V2 presigned URL used with other values of the headers it signed fails as on S3.

    Signatures are not verified (any secret is accepted), but a signed header whose value the URL
    records must arrive with that value: S3's signature would not match otherwise, and code that
    forgets the Content-Type of a presigned PUT must see the 403 it would get on AWS.
    """
    if "AWSAccessKeyId" not in query or "Signature" not in query:
        return
    lowered = {name.lower(): value for name, value in query.items()}
    for name in _V2_SIGNED_HEADERS:
        signed = lowered.get(name.lower())
        if signed is not None and headers.get(name) != signed:
            raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                          "you provided. Check your key and signing method.", 403,
                          AWSAccessKeyId=query["AWSAccessKeyId"])


Handler = Callable[[S3Request], S3Response]


@dataclass(frozen=True)
class _Route:
    """One row of a routing table: `handler` answers a `method` request whose query string names every
    sub-resource in `query` and for which `when` (if given) holds. `plain` marks the object itself rather
    than a sub-resource of it: a sub-resource we do not implement is refused before it is mis-served."""
    method: str
    query: tuple[str, ...]
    handler: Handler
    when: Callable[[S3Request], bool] | None = None
    plain: bool = False


def _first_match(routes: tuple[_Route, ...], req: S3Request) -> _Route | None:
    """The first row of `routes` that answers `req`: tables are read top-down, in S3's precedence."""
    for route in routes:
        if route.method == req.method and all(name in req.query for name in route.query) \
                and (route.when is None or route.when(req)):
            return route
    return None


def _copies(req: S3Request) -> bool:
    return bool(req.header("x-amz-copy-source"))


class S3App:
    def __init__(self, store: S3Store, moto: Callable, account_id: str, default_region: str,
                 new_request_id: Callable[[], str]) -> None:
        self.store = store
        self.account_id = account_id
        self.default_region = default_region
        self.new_request_id = new_request_id
        self.bridge = MotoBridge(moto, store, account_id)
        self.bridge.restore()
        # An object's operations, by S3's precedence: a part before ?tagging, a copy source before a plain PUT.
        self._object_routes = (
            _Route("PUT", ("uploadId", "partNumber"), multipart.upload_part_copy, when=_copies),
            _Route("PUT", ("uploadId", "partNumber"), multipart.upload_part),
            _Route("PUT", ("tagging",), subresources.put_tagging),
            _Route("PUT", ("acl",), subresources.put_acl),
            _Route("PUT", ("retention",), locking.put_retention),
            _Route("PUT", ("legal-hold",), locking.put_legal_hold),
            _Route("PUT", (), copying.copy_object, when=_copies),
            _Route("PUT", (), objects.put_object, plain=True),
            _Route("GET", ("uploadId",), multipart.list_parts),
            _Route("GET", ("tagging",), subresources.get_tagging),
            _Route("GET", ("acl",), subresources.get_acl),
            _Route("GET", ("attributes",), subresources.get_attributes),
            _Route("GET", ("retention",), locking.get_retention),
            _Route("GET", ("legal-hold",), locking.get_legal_hold),
            _Route("GET", (), objects.get_object, plain=True),
            _Route("HEAD", (), _head_object, plain=True),
            _Route("DELETE", ("uploadId",), multipart.abort_upload),
            _Route("DELETE", ("tagging",), subresources.delete_tagging),
            _Route("DELETE", (), objects.delete_object, plain=True),
            _Route("POST", ("uploads",), multipart.create_upload),
            _Route("POST", ("uploadId",), multipart.complete_upload),
            _Route("POST", ("restore",), subresources.restore),
            _Route("POST", ("select",), self._select),
        )
        # A bucket's own operations (its other sub-resources are moto's, see _bucket_route).
        self._bucket_routes = (
            _Route("PUT", ("versioning",), self._put_versioning),
            _Route("PUT", (), buckets.create_bucket),
            _Route("GET", ("versioning",), buckets.get_versioning),
            _Route("GET", ("location",), buckets.get_location),
            _Route("GET", ("versions",), listing.list_object_versions),
            _Route("GET", ("uploads",), listing.list_uploads),
            _Route("GET", (), listing.list_objects_v2, when=lambda req: req.query.get("list-type") == "2"),
            _Route("GET", (), listing.list_objects),
            _Route("HEAD", (), buckets.head_bucket),
            _Route("DELETE", (), buckets.delete_bucket),
            _Route("POST", ("delete",), objects.delete_objects),
            _Route("POST", (), form_upload.post_object,
                   when=lambda req: (req.header("Content-Type") or "").startswith("multipart/form-data")),
        )

    def copy_object_to(self, bucket: str, key: str, out_fd: int, region: str) -> int | None:
        """GetObject of `bucket`/`key` answered in this process, its bytes copied by the kernel
        (copy_file_range) to `out_fd`: how a job's File-mode channel is staged from our own S3. The
        request goes through the same routing and checks as one on the wire (signed, as the job's
        client signs it), only without three copies of every byte through a socket. None when the
        answer is not a 200 with a file behind it: the caller then asks over HTTP, and gets the error."""
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/{bucket}/{key}", "QUERY_STRING": "",
                   "RAW_URI": f"/{quote(bucket)}/{quote(key, safe='/~')}", "HTTP_HOST": "localhost",
                   "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=emulator/20000101/{region}/s3/aws4_request, "
                                         "SignedHeaders=host, Signature=0", "wsgi.input": io.BytesIO()}
        status: list[str] = []
        body = self(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            if not status or not status[0].startswith("200 "):
                return None
            file_range = getattr(body, "file_range", None)
            if file_range is None:
                return 0 if isinstance(body, list) and body == [b""] else None
            handle, offset, count = file_range
            objects.copy_range(handle.fileno(), out_fd, offset, count)
            return count
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def reset(self) -> None:
        self.store.reset()

    def _locate(self, environ: dict) -> tuple[str, str, bool]:
        """(bucket, key, whether the path named a key), path style or virtual-hosted style."""
        path = _raw_path(environ)
        host = (environ.get("HTTP_HOST") or "").rsplit(":", 1)[0].lower()
        virtual = _VIRTUAL_HOST.match(host)
        if virtual and virtual.group("bucket") not in ("s3", "www"):
            key = path[1:]
            return virtual.group("bucket"), unquote(key), True if key or path.endswith("/") and path != "/" else False
        parts = path[1:].split("/", 1)
        bucket = unquote(parts[0])
        if len(parts) == 1:
            return bucket, "", False
        return bucket, unquote(parts[1]), parts[1] != ""

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request_id = self.new_request_id()
        headers = environ.get("emulator.headers") or EnvironHeaders(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        region, _ = _region_and_service(environ)
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        bucket, key, has_key = self._locate(environ)
        req = S3Request(method, bucket, key, query, environ, headers, region or self.default_region, request_id,
                        self.store, has_key, {"account": self.account_id})
        try:
            _check_presigned_expiry(query)
            _check_presigned_headers(query, headers)
            handler = self._route(req)
            if handler is None:
                return self.bridge.forward(environ, start_response, bucket, req.region)
            if req.has_key and req.bucket:
                subresources.check_object_access(req)
            response = handler(req)
        except S3Error as err:
            bare = method == "HEAD" or err.status == 304 or err.bare
            response = S3Response(err.status, {"Content-Type": "application/xml", **err.headers},
                                  b"" if bare else err.xml(request_id))
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            log.exception("S3 %s %s failed", method, environ.get("RAW_URI"))
            internal = S3Error("InternalError", "We encountered an internal error. Please try again.", 500)
            response = S3Response(500, {"Content-Type": "application/xml"},
                                  b"" if method == "HEAD" else internal.xml(request_id))
        reply = dict(response.headers)
        reply["x-amz-request-id"] = request_id
        reply["x-amz-id-2"] = request_id
        reply["x-amzn-RequestId"] = request_id
        if not (method == "PUT" and response.status == 200 and response.body == b""):
            reply.setdefault("Content-Type", "application/xml")  # S3 sends none with PutObject/UploadPart
        body = response.body
        if isinstance(body, bytes):
            if "Content-Length" not in reply or method != "HEAD":
                reply.setdefault("Content-Length", str(len(body)))
            body = [body]
        status = response.status
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", list(reply.items()))
        return body

    def _route(self, req: S3Request) -> Handler | None:
        """The handler for this request, or None for a bucket sub-resource moto answers."""
        m, q = req.method, req.query
        if not req.bucket:
            if m == "GET":
                return buckets.list_buckets
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.",
                          Method=m, ResourceType="SERVICE")
        if not req.has_key:
            return self._bucket_route(req)
        route = _first_match(self._object_routes, req)
        if route is None:
            raise S3Error("NotImplemented", f"{m} on an object with {sorted(q)} is not implemented by this emulator.")
        if route.plain:
            self._refuse_unknown(req)
        return route.handler

    @staticmethod
    def _refuse_unknown(req: S3Request) -> None:
        unknown = [name for name in req.query if name == "torrent"]
        if unknown:
            raise S3Error("NotImplemented", f"The object sub-resource ?{unknown[0]} is not implemented by this "
                          "emulator.")

    def _bucket_route(self, req: S3Request) -> Handler | None:
        m, q = req.method, req.query
        names = set(q)
        own = names & _BUCKET_OWN
        others = names - _BUCKET_OWN - {"prefix", "delimiter", "marker", "max-keys", "encoding-type",
                                        "continuation-token", "start-after", "fetch-owner", "key-marker",
                                        "version-id-marker", "upload-id-marker", "max-uploads", "x-id"}
        others = {n for n in others if not n.startswith(("X-Amz-", "AWSAccessKeyId", "Signature", "Expires"))}
        if others and not own:
            if m in ("GET", "HEAD", "PUT", "POST", "DELETE") and req.store.bucket(req.bucket) is None \
                    and m != "PUT":
                raise S3Error("NoSuchBucket", "The specified bucket does not exist", BucketName=req.bucket)
            return None
        route = _first_match(self._bucket_routes, req)
        if route is None:
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.",
                          Method=m, ResourceType="BUCKET")
        return route.handler

    def _put_versioning(self, req: S3Request) -> S3Response:
        body = buckets.put_versioning(req)
        environ = dict(req.environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        status: list[Any] = []
        for _ in self.bridge.forward(environ, lambda s, h, e=None: status.append(s), req.bucket, req.region):
            pass
        return S3Response(200)


    def _select(self, req: S3Request) -> S3Response:
        """SelectObjectContent: moto's engine, on a copy of the object put into moto for the request."""
        obj = objects.find_object(req, objects.require_bucket(req))
        if obj.size > Materialized.MAX_BYTES:
            raise S3Error("NotImplemented", f"S3 Select here reads objects up to {Materialized.MAX_BYTES} bytes.")
        answered: list[Any] = []
        with Materialized(self.account_id, req.bucket, req.key, str(self.store.path(obj.file)), obj.size):
            chunks = self.bridge.moto(req.environ, lambda s, h, e=None: answered.append((s, h)))
            body = b"".join(chunks)
        status, headers = answered[0]
        return S3Response(int(status.split()[0]), {k: v for k, v in headers if k.lower() != "content-length"}, body)


def _head_object(req: S3Request) -> S3Response:
    return objects.get_object(req, head=True)
