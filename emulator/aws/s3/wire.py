"""S3's REST-XML on the wire: the request as the handlers see it, and how answers are written."""

from __future__ import annotations

import functools
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from .errors import S3Error, malformed_xml
from .store import S3Store

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
OWNER_NAME = "webfile"
MAX_XML_BODY = 2 << 20

Body = bytes | Iterable[bytes]


@dataclass
class S3Request:
    method: str
    bucket: str  # '' for the service (ListBuckets)
    key: str  # '' for a bucket
    query: dict[str, str]
    environ: dict
    headers: Any
    region: str
    request_id: str
    store: S3Store
    has_key: bool = False  # a key was in the path (even an empty one after the slash)
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def body(self, limit: int = MAX_XML_BODY) -> bytes:
        stream = self.environ["wsgi.input"]
        data = bytearray()
        while len(data) <= limit:
            chunk = stream.read(min(65536, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) > limit:
            raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
        return bytes(data)

    def xml_body(self, optional: bool = False) -> ET.Element | None:
        """The body as XML (MalformedXML if it is not); None for an empty `optional` one."""
        data = self.body()
        if not data.strip():
            if optional:
                return None
            raise malformed_xml()
        try:
            return ET.fromstring(data)
        except ET.ParseError:
            raise malformed_xml() from None


@dataclass
class S3Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Body = b""


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element | None, name: str) -> list[ET.Element]:
    """The child elements called `name` (none of a missing element)."""
    return [c for c in element if local(c.tag) == name] if element is not None else []


def child_text(element: ET.Element | None, name: str, default: str | None = None) -> str | None:
    for c in element if element is not None else ():
        if local(c.tag) == name:
            return c.text or ""
    return default


def iso(ts: float) -> str:
    return f"{_iso_second(int(ts))}.{int(ts * 1000) % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    """Formatted once per second: a listing's 1,000 objects were mostly written in a few seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def http_time(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def parse_http_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def x(name: str, value: Any) -> str:
    """One element with text; nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{text(str(value))}</{name}>"


def text(value: str) -> str:
    """`value` as XML character data (most keys and ETags have nothing to escape: no copy then)."""
    return escape(value) if "&" in value or "<" in value or ">" in value else value


def elements(*fields: tuple[str, Any]) -> str:
    """`x` of each (name, value) in order: a listing's or a result's fields, the None ones left out."""
    return "".join(x(name, value) for name, value in fields)


def document(root: str, inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{inner}</{root}>'.encode()


def xml_response(root: str, inner: str, headers: dict[str, str] | None = None, status: int = 200) -> S3Response:
    return S3Response(status, {"Content-Type": "application/xml", **(headers or {})}, document(root, inner))


def owner() -> str:
    return f"<Owner><ID>{OWNER_ID}</ID><DisplayName>{OWNER_NAME}</DisplayName></Owner>"


def encode_key(key: str, encoding: str | None) -> str:
    return quote(key, safe="/") if encoding == "url" else key


def int_param(req: S3Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range",
                      ArgumentName=name, ArgumentValue=raw) from None
    if value > 2147483647:
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range",
                      ArgumentName=name, ArgumentValue=raw)
    if value < 0:
        raise S3Error("InvalidArgument", f"Argument {name} must be an integer between 0 and 2147483647",
                      ArgumentName=name, ArgumentValue=raw)
    return min(value, maximum) if maximum is not None else value
