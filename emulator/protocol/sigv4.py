"""Optional SigV4 checking (`--require-signature`): unsigned or badly signed requests are refused.

The signature is recomputed with botocore's own SigV4 implementation over exactly the headers the
client says it signed (`SignedHeaders`), the raw path and query as sent, and the body, with the
secret configured for the access key; then compared in constant time. Errors are AWS's:
no `Authorization` → `MissingAuthenticationTokenException`, an access key we do not know →
`UnrecognizedClientException`, a different signature → `InvalidSignatureException` with AWS's text,
a timestamp more than 15 minutes away → `InvalidSignatureException` "Signature expired". HTTP 403, as
AWS's Common Errors list them, except the 400 of a malformed header (`IncompleteSignatureException`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import AwsError

DEFAULT_CREDENTIALS = {"testing": "testing"}
MAX_SKEW = dt.timedelta(minutes=15)

_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
                   r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;\-]+),\s*"
                   r"Signature=(?P<signature>[0-9a-f]{64})\s*$")
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


def parse_credentials(value: str) -> dict[str, str]:
    """`--require-signature` value: "" = off; 1/true/on = testing:testing; else `KEY:SECRET[,KEY:SECRET...]`."""
    value = (value or "").strip()
    if value.lower() in ("", "0", "false", "no", "off"):
        return {}
    if value.lower() in ("1", "true", "yes", "on"):
        return dict(DEFAULT_CREDENTIALS)
    pairs = {}
    for item in value.split(","):
        key, sep, secret = item.strip().partition(":")
        if not sep or not key or not secret:
            raise ValueError("--require-signature takes ACCESS_KEY:SECRET[,ACCESS_KEY:SECRET...] (or 1 for "
                             "testing:testing)")
        pairs[key] = secret
    return pairs


class SignatureError(AwsError):
    code = "InvalidSignatureException"
    status = 403


def precheck(headers: Mapping[str, str], credentials: Mapping[str, str], now: dt.datetime | None = None) -> None:
    """What can be refused from the headers alone, before the body is read."""
    authorization = headers.get("Authorization")
    if not authorization:
        raise SignatureError("Missing Authentication Token", code="MissingAuthenticationTokenException")
    match = _AUTH.match(authorization)
    if match is None:
        raise SignatureError(f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                             f"parameters in AWS4-HMAC-SHA256 form. Authorization={authorization[:200]}",
                             code="IncompleteSignatureException", status=400)
    if match["key"] not in credentials:
        raise SignatureError("The security token included in the request is invalid.",
                             code="UnrecognizedClientException")
    stamp = headers.get("X-Amz-Date") or ""
    try:
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise SignatureError("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                             "header.", code="IncompleteSignatureException", status=400) from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if abs(now - when) > MAX_SKEW:
        fmt = "%Y%m%dT%H%M%SZ"
        raise SignatureError(f"Signature expired: {stamp} is now earlier than "
                             f"{(now - MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} - 15 min.)"
                             if when < now else
                             f"Signature not yet current: {stamp} is still later than "
                             f"{(now + MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} + 15 min.)")
    if match["date"] != stamp[:8]:
        raise SignatureError(MISMATCH)


def verify(method: str, raw_uri: str, headers: Mapping[str, str], body: bytes,
           credentials: Mapping[str, str]) -> None:
    """Raise the AWS error for a request whose SigV4 signature is missing or wrong."""
    precheck(headers, credentials)
    match = _AUTH.match(headers["Authorization"])
    assert match is not None
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = match["signed"].split(";")
    if "host" not in signed or any(name not in lowered for name in signed):
        raise SignatureError(MISMATCH)
    request = AWSRequest(method=method, url=f"http://{lowered['host']}{raw_uri or '/'}",
                         headers={name: lowered[name] for name in signed}, data=body)
    claimed = lowered.get("x-amz-content-sha256")
    if claimed and claimed != "UNSIGNED-PAYLOAD" and claimed != hashlib.sha256(body).hexdigest():
        raise SignatureError("The provided 'x-amz-content-sha256' header does not match what was computed.")
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(match["key"], credentials[match["key"]]), match["service"], match["region"])
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    expected = auth.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, match["signature"]):  # AWS adds what it computed, to help debugging
        raise SignatureError(f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'"
                             f"\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n")
