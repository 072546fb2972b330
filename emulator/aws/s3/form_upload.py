"""PostObject: a browser form upload (what `generate_presigned_post` makes), streamed to a file.

The policy document and its signature are not checked (no request signature is, unless the
server requires SigV4 for its own APIs); the form's fields say where the object goes and how.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import urlencode

from werkzeug.formparser import parse_form_data

from .errors import S3Error
from .objects import (
    CONTENT_HEADERS,
    KEPT_AMZ_HEADERS,
    announce,
    apply_default_encryption,
    apply_lock_defaults,
    check_key,
    commit,
    parse_tags,
    require_bucket,
)
from .wire import S3Request, S3Response, child_text, children, x, xml_response


def _tags_from_xml(document: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                      "published schema") from None
    tags = {}
    for tag_set in children(root, "TagSet"):
        for tag in children(tag_set, "Tag"):
            tags[child_text(tag, "Key") or ""] = child_text(tag, "Value") or ""
    return tags


def post_object(req: S3Request) -> S3Response:
    bucket = require_bucket(req)
    temp = req.store.temp_path()
    handle: list[Any] = []

    def to_temp_file(*_: Any, **__: Any) -> Any:
        if handle:  # only the first file field is the object
            return open(os.devnull, "wb")  # noqa: SIM115 - werkzeug closes it
        handle.append(open(temp, "w+b"))  # noqa: SIM115 - closed below
        return handle[0]

    try:
        _, form, files = parse_form_data(req.environ, stream_factory=to_temp_file, silent=False)
        fields = {k.lower(): v for k, v in form.items()}
        if not handle or "file" not in files:
            raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.",
                          ArgumentName="file", ArgumentValue="0")
        key = fields.get("key")
        if not key:
            raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.", ArgumentName="key")
        filename = files["file"].filename or ""
        key = key.replace("${filename}", filename)
        check_key(key)
        out = handle[0]
        out.flush()
        req.store.sync(out.fileno())
        out.seek(0)
        md5, size = hashlib.md5(), 0
        while data := out.read(1 << 20):
            md5.update(data)
            size += len(data)
        out.close()
        meta: dict[str, Any] = {"headers": {}, "user": {}, "amz": {}}
        for name in CONTENT_HEADERS:
            if name.lower() in fields:
                meta["headers"][name] = fields[name.lower()]
        for name, value in fields.items():
            if name.startswith("x-amz-meta-"):
                meta["user"][name[len("x-amz-meta-"):]] = value
            elif name in KEPT_AMZ_HEADERS:
                meta["amz"][name] = value
        if fields.get("acl"):
            meta["acl"] = fields["acl"]
        if fields.get("tagging"):
            meta["tags"] = _tags_from_xml(fields["tagging"])
        elif fields.get("x-amz-tagging"):
            meta["tags"] = parse_tags(fields["x-amz-tagging"])
        placed = S3Request("POST", req.bucket, key, {}, req.environ, req.headers, req.region, req.request_id,
                           req.store, True, req.extra)
        apply_default_encryption(placed, meta)
        apply_lock_defaults(placed, bucket, meta)
        obj = commit(placed, bucket, temp, size, f'"{md5.hexdigest()}"', meta)
    except BaseException:
        for f in handle:
            f.close()
        temp.unlink(missing_ok=True)
        raise
    announce(placed, "s3:ObjectCreated:Post", obj)
    headers = {"ETag": obj.etag, "Location": f"/{req.bucket}/{key}"}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        query = urlencode({"bucket": req.bucket, "key": key, "etag": obj.etag})
        return S3Response(303, {**headers, "Location": f"{redirect}{'&' if '?' in redirect else '?'}{query}"})
    status = fields.get("success_action_status", "204")
    if status == "201":
        return xml_response("PostResponse", f"{x('Location', headers['Location'])}{x('Bucket', req.bucket)}"
                            f"{x('Key', key)}{x('ETag', obj.etag)}", headers, 201)
    return S3Response(200 if status == "200" else 204, headers)
