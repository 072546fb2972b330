"""Hostile and malformed input: a property-based fuzzer over botocore's models, hostile archives and
paths end-to-end, and body limits enforced before a body is read.

Every request goes over HTTP to one emulator started for this module. The properties: never a 5xx,
and every answer parses in botocore, as the operation's output or as an AWS error whose code the
operation declares or one every operation may answer. `FUZZ_EXAMPLES=5000` runs more examples per
operation (default: a few, so the module stays well under a minute).

Resources the fuzzer manages to create name images that do not exist (and S3 buckets that do not
exist), so jobs and endpoints fail at once; the module checks that no container is left.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_emulator.protocol.service import service_model
from sagemaker_emulator.services import _logs_handlers, _sagemaker_handlers
from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, error_of, managed_containers, training_request, unique, wait_training

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(max_examples=EXAMPLES or 25, deadline=None, derandomize=EXAMPLES is None,
                suppress_health_check=list(HealthCheck), database=None)
MISSING_IMAGE = "sm-fuzz-no-such-image"
# Codes any operation may answer besides the ones it declares (what our protocol layer emits).
COMMON = {"ValidationException", "SerializationException", "UnknownOperationException", "NotImplementedException",
          "MissingAuthenticationTokenException", "InvalidSignatureException", "UnrecognizedClientException"}
NAMES = ["fuzz-a", "fuzz-b", "Fuzz-A"]  # a small pool, so Create/Describe/Delete meet each other


def implemented(model_name: str, modules: list) -> list[str]:
    model = service_model(model_name)
    return sorted(op for op in model.operation_names if any(hasattr(m, xform_name(op)) for m in modules))


FIRST = ["CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint"]  # so each finds the one before
SAGEMAKER_OPS = sorted(implemented("sagemaker", _sagemaker_handlers()),
                       key=lambda op: (FIRST.index(op) if op in FIRST else len(FIRST), op.startswith("Delete"), op))
LOGS_OPS = implemented("logs", _logs_handlers())


@pytest.fixture(scope="module")
def server(docker_ready, tmp_path_factory):
    with EmulatorServer(data_dir=tmp_path_factory.mktemp("fuzz")) as srv:
        yield srv
        sm = srv.client("sagemaker")
        deadline = time.time() + 60
        while time.time() < deadline:  # whatever the fuzzer started must end by itself, fast
            busy = [j for op, key, status in (("list_training_jobs", "TrainingJobSummaries", "TrainingJobStatus"),
                                              ("list_processing_jobs", "ProcessingJobSummaries", "ProcessingJobStatus"),
                                              ("list_transform_jobs", "TransformJobSummaries", "TransformJobStatus"))
                    for j in getattr(sm, op)(MaxResults=100)[key] if j[status] in ("InProgress", "Stopping")]
            busy += [e for e in sm.list_endpoints(MaxResults=100)["Endpoints"]
                     if e["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")]
            if not busy and not managed_containers(srv):
                break
            time.sleep(0.5)
        assert managed_containers(srv) == [], "the fuzzer left containers running"
        assert not busy, f"still busy after the fuzz: {busy}"


# -- strategies from shapes ------------------------------------------------------------------------
JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)


def string_values(shape: Shape, member: str) -> st.SearchStrategy:
    meta = shape.metadata
    low, high = meta.get("min", 0), meta.get("max")
    options = [st.text(max_size=min(high or 40, 40)), st.just("")]
    if high is not None and high < 100_000:
        options.append(st.integers(high + 1, high + 5).map(lambda n: "x" * n))  # one past the limit
    if low:
        options.append(st.text(max_size=max(low - 1, 0)))
    if shape.enum:
        options += [st.sampled_from(shape.enum)] * 3 + [st.sampled_from([e.lower() for e in shape.enum])]
    lowered = member.lower()
    if "image" in lowered:  # never an image that exists: whatever gets created fails at once
        return st.one_of(st.just(f"{MISSING_IMAGE}:1"), st.text(max_size=10).map(lambda t: f"{MISSING_IMAGE}-{t}"),
                         st.just(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{MISSING_IMAGE}:2"))
    if "uri" in lowered or "url" in lowered or lowered.endswith("path"):
        options += [st.sampled_from(["s3://sm-fuzz-missing/x", "s3://sm-fuzz-missing/../../../etc/passwd",
                                     "s3://sm-fuzz-missing/a/./../b", "s3:///", "s3://", "http://169.254.169.254/"])]
        return st.one_of(options)
    if lowered.endswith("name") or lowered == "name":
        options += [st.sampled_from(NAMES)] * 3
    if lowered.endswith("arn"):
        options += [st.sampled_from([ROLE, "arn:aws:sagemaker:us-east-1:123456789012:model/fuzz-a",
                                     "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fuzz-a"])]
    return st.one_of(options)


@cache
def values(shape: Shape, member: str = "", depth: int = 0) -> st.SearchStrategy:
    """Mostly plausible values of `shape`, often just outside its constraints, sometimes junk."""
    kind = shape.type_name
    if kind == "string":
        plain = string_values(shape, member)
    elif kind in ("integer", "long"):
        low, high = shape.metadata.get("min", -10), shape.metadata.get("max", 10_000)
        plain = st.one_of(st.integers(low - 2, min(high, low + 100) + 2), st.sampled_from([high, high + 1, -1, 2**63]))
    elif kind in ("float", "double"):
        plain = st.floats(allow_nan=False, allow_infinity=False, width=32)
    elif kind == "boolean":
        plain = st.booleans()
    elif kind == "timestamp":
        plain = st.one_of(st.integers(-1, 2**40), st.floats(0, 2e9), st.text(max_size=25))
    elif kind == "blob":
        plain = st.text(max_size=20)
    elif depth > 4:
        plain = st.just([] if kind == "list" else {})
    elif kind == "list":
        high = shape.metadata.get("max", 4)
        plain = st.lists(values(shape.member, member, depth + 1), max_size=min(high + 1, 4))
    elif kind == "map":
        keys = string_values(shape.key, "key") if shape.key.type_name == "string" else st.text(max_size=5)
        plain = st.dictionaries(keys, values(shape.value, "value", depth + 1), max_size=3)
    else:
        plain = structures(shape, depth)
    return st.one_of(plain, plain, plain, plain, JUNK)


def structures(shape: Shape, depth: int = 0) -> st.SearchStrategy:
    required = set(shape.required_members)
    members = {name: values(m, name, depth + 1) for name, m in shape.members.items()}
    return st.fixed_dictionaries(
        {}, optional={**members, "SmFuzzUnknownMember": JUNK}).flatmap(
        # required members are usually present, sometimes not
        lambda doc: st.fixed_dictionaries({n: members[n] for n in required if n not in doc}).map(
            lambda extra: {**doc, **extra}) | st.just(doc))


def _matches(pattern: str | None, value: str, low: int, high: int) -> bool:
    import regex

    if not low <= len(value) <= high:
        return False
    try:
        return pattern is None or regex.fullmatch(pattern, value) is not None
    except regex.error:
        return True


@cache
def pattern_strings(pattern: str | None, low: int, high: int) -> st.SearchStrategy:
    """Strings matching a botocore pattern within [low, high] (plain ones first, as real callers send)."""
    import re
    import string

    simple = st.text(string.ascii_letters + string.digits, min_size=max(low, 1), max_size=max(low, min(high, 12)))
    options = [simple.filter(lambda t: _matches(pattern, t, low, high))]
    if pattern:
        try:
            re.compile(pattern)
            options.append(st.from_regex(pattern, fullmatch=True).filter(lambda t: _matches(None, t, low, high)))
        except re.error:
            pass
    return st.one_of(options)


SPECIAL = [ROLE, "s3://sm-fuzz-missing/x", "s3://sm-fuzz-missing/prefix/", "/opt/ml/processing/input", *NAMES[:2],
           f"{MISSING_IMAGE}:1", "ml.m5.large"]


@cache
def valid_values(shape: Shape, member: str = "", depth: int = 0) -> st.SearchStrategy:
    """Values that satisfy the shape's constraints (so requests reach the handlers), with safe resources."""
    kind, meta = shape.type_name, shape.metadata
    lowered = member.lower()
    if kind == "string":
        low, high = meta.get("min", 0), meta.get("max", 64)
        if shape.enum:
            return st.sampled_from(shape.enum)
        if "image" in lowered:  # never an image that exists
            return st.just(f"{MISSING_IMAGE}:1")
        fitting = [v for v in SPECIAL if _matches(meta.get("pattern"), v, low, high)]
        if lowered.endswith("name") and any(v in NAMES for v in fitting):
            return st.sampled_from([v for v in fitting if v in NAMES])
        if ("uri" in lowered or "url" in lowered or lowered.endswith("path") or lowered.endswith("arn")) and fitting:
            return st.sampled_from(fitting)
        return pattern_strings(meta.get("pattern"), low, high)
    if kind in ("integer", "long"):
        return st.integers(meta.get("min", 0), min(meta.get("max", 1000), meta.get("min", 0) + 1000))
    if kind in ("float", "double"):
        return st.floats(meta.get("min", 0), meta.get("max", 100), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.integers(1_500_000_000, 2_000_000_000)
    if kind == "blob":
        return st.just("eyJ4IjogMX0=")
    if depth > 7:
        return st.just([] if kind == "list" else {})
    if kind == "list":
        low = meta.get("min", 0)
        return st.lists(valid_values(shape.member, member, depth + 1), min_size=low,
                        max_size=max(low, min(meta.get("max", 2), 2)))
    if kind == "map":
        return st.dictionaries(valid_values(shape.key, "key", depth + 1),
                               valid_values(shape.value, "value", depth + 1), max_size=2)
    required = set(shape.required_members)
    members = {n: valid_values(m, n, depth + 1) for n, m in shape.members.items()}
    return st.fixed_dictionaries({n: members[n] for n in required},
                                 optional={n: v for n, v in members.items() if n not in required})


S3 = "s3://sm-fuzz-missing/data/"
# Known-good requests: the fuzzer overlays generated members on them, so jobs and endpoints really start
# (and fail at once on the missing image or bucket).
BASES = {
    "CreateModel": {"ModelName": "fuzz-a", "ExecutionRoleArn": ROLE,
                    "PrimaryContainer": {"Image": f"{MISSING_IMAGE}:1"}},
    "CreateEndpointConfig": {"EndpointConfigName": "fuzz-a", "ProductionVariants": [
        {"VariantName": "v", "ModelName": "fuzz-a", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]},
    "CreateEndpoint": {"EndpointName": "fuzz-a", "EndpointConfigName": "fuzz-a"},
    "CreateTrainingJob": {"TrainingJobName": "fuzz-a", "RoleArn": ROLE,
                          "AlgorithmSpecification": {"TrainingImage": f"{MISSING_IMAGE}:1",
                                                     "TrainingInputMode": "File"},
                          "OutputDataConfig": {"S3OutputPath": S3},
                          "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                          "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
    "CreateTransformJob": {"TransformJobName": "fuzz-a", "ModelName": "fuzz-a",
                           "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": S3}}},
                           "TransformOutput": {"S3OutputPath": S3},
                           "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}},
    "CreateProcessingJob": {"ProcessingJobName": "fuzz-a", "RoleArn": ROLE,
                            "AppSpecification": {"ImageUri": f"{MISSING_IMAGE}:1"},
                            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                                      "VolumeSizeInGB": 1}},
                            "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
}


def requests(shape: Shape, operation: str = "") -> st.SearchStrategy:
    """Well-formed requests (reaching handlers and storage), and mostly-plausible invalid ones."""
    options = [valid_values(shape), structures(shape)]
    if operation in BASES:  # a good request with some members replaced (valid or not) or one dropped
        base = BASES[operation]

        def overlay(picks: list[str]) -> st.SearchStrategy:
            changes = {n: st.one_of(valid_values(shape.members[n], n), values(shape.members[n], n)) for n in picks}
            return st.fixed_dictionaries(changes).map(lambda c: {**base, **c})

        options += [st.lists(st.sampled_from(sorted(shape.members)), max_size=2, unique=True).flatmap(overlay)] * 2
        options.append(st.sampled_from(sorted(base)).map(lambda drop: {k: v for k, v in base.items() if k != drop}))
    return st.one_of(options)


# -- checking answers ------------------------------------------------------------------------------
def post(url: str, body: bytes, headers: dict[str, str], path: str = "/") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def check_answer(op: OperationModel, status: int, headers: dict[str, str], body: bytes, what: str) -> str:
    """Assert no 5xx and a botocore-parsable answer; returns the error code ('' on success)."""
    assert status < 500, f"{what}: HTTP {status}: {body[:500]!r}"
    protocol = op.service_model.metadata["protocol"]
    response = {"status_code": status, "headers": headers, "body": body}
    if status < 300 and protocol == "rest-json" and op.output_shape is not None:
        response["body"] = body if not op.output_shape.serialization.get("payload") else io.BytesIO(body)
    parsed = create_parser(protocol).parse(response, op.output_shape if status < 300 else None)
    if status < 300:
        assert "Error" not in parsed, f"{what}: {parsed}"
        return ""
    code = parsed.get("Error", {}).get("Code")
    allowed = COMMON | {e.name for e in op.error_shapes} | ({"ValidationError"} if protocol == "rest-json" else set())
    assert code in allowed, f"{what}: HTTP {status} code {code!r} not declared: {body[:500]!r}"
    assert parsed["Error"].get("Message"), f"{what}: no message: {body[:300]!r}"
    return code


def call_json(server: EmulatorServer, service: str, operation: str, document: object) -> str:
    model = service_model(service)
    op = model.operation_model(operation)
    body = json.dumps(document).encode()
    status, headers, raw = post(server.endpoint_url, body, {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{model.metadata['targetPrefix']}.{operation}"})
    return check_answer(op, status, headers, raw, f"{operation} {body[:300]!r}")


# -- the fuzz tests --------------------------------------------------------------------------------
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@pytest.mark.parametrize("operation", SAGEMAKER_OPS)
def test_sagemaker_operations(server, operation):
    shape = service_model("sagemaker").operation_model(operation).input_shape

    @FUZZ
    @given(document=requests(shape, operation))
    def fuzz(document):
        call_json(server, "sagemaker", operation, document)

    fuzz()


@pytest.mark.parametrize("operation", LOGS_OPS)
def test_logs_operations(server, operation):
    shape = service_model("logs").operation_model(operation).input_shape

    @FUZZ
    @given(document=requests(shape))
    def fuzz(document):
        call_json(server, "logs", operation, document)

    fuzz()


RUNTIME_HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Target-Model",
                     "X-Amzn-SageMaker-Target-Variant", "X-Amzn-SageMaker-Target-Container-Hostname",
                     "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Enable-Explanations",
                     "X-Amzn-SageMaker-Session-Id", "X-Amzn-SageMaker-InputLocation",
                     "X-Amzn-SageMaker-RequestTTLSeconds", "X-Amzn-SageMaker-InvocationTimeoutSeconds"]),
    st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
              st.integers(1026, 1100).map(lambda n: "x" * n)), max_size=4)


@FUZZ
@given(name=st.one_of(st.sampled_from(NAMES + ["..", "%2e%2e", "a%00b", "a%2Fb", "x" * 70]), st.text(max_size=20)),
       action=st.sampled_from(["invocations", "invocations-response-stream", "async-invocations"]),
       headers=RUNTIME_HEADERS, body=st.binary(max_size=200))
def test_runtime_operations(server, name, action, headers, body):
    path = f"/endpoints/{urllib.request.quote(name, safe='%')}/{action}"
    model = service_model("sagemaker-runtime")
    op = next(model.operation_model(o) for o in model.operation_names
              if model.operation_model(o).http["requestUri"].endswith("/" + action))
    status, answer, raw = post(server.endpoint_url, body, headers, path)
    if status >= 300 or action != "invocations-response-stream":
        check_answer(op, status, answer, raw, f"{path} {headers}")


# (Not "SageMaker.ListModels ": whitespace around a header value is not part of it, RFC 9110 §5.5.)
MISCASED = ["sagemaker.ListModels", "SAGEMAKER.ListModels", "SageMaker.listModels", "SageMaker.", "SageMaker",
            "SageMakerX.ListModels", "logs_20140328.DescribeLogGroups",
            "Logs_20140328.describeLogGroups", "Logs_20140328", "SageMaker.ListModels\x7f"]


@FUZZ
@given(target=st.one_of(st.sampled_from(MISCASED + ["SageMaker.ListModels", "SageMaker.ListModels ",
                                                    "SageMaker.DescribeModel", "Logs_20140328.DescribeLogGroups"]),
                        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30).map(
                            lambda t: "SageMaker." + t)),
       body=st.one_of(st.binary(max_size=100), st.just(b"[" * 5000 + b"]" * 5000), st.just(b'{"a":' * 3000),
                      st.just(b"\xef\xbb\xbf{}"), st.just(b'{"ModelName": "\\ud800"}'), st.just(b"1e99999"),
                      st.just(b'{"MaxResults": 1' + b"0" * 5000 + b"}"), st.just(b"{}" * 3)),
       content_type=st.sampled_from(["application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json",
                                     "text/plain", "", "multipart/form-data; boundary=x"]))
def test_malformed_requests(server, target, body, content_type):
    headers = {"X-Amz-Target": target}
    if content_type:
        headers["Content-Type"] = content_type
    status, answer, raw = post(server.endpoint_url, body, headers)
    assert status < 500, f"{target!r} {body[:80]!r}: {status} {raw[:300]!r}"
    service = "logs" if target.lower().startswith("logs") else "sagemaker"
    model = service_model(service)
    operation = target.split(".", 1)[-1]
    op = model.operation_model(operation if operation in model.operation_names else
                               ("ListModels" if service == "sagemaker" else "DescribeLogGroups"))
    code = check_answer(op, status, answer, raw, f"{target!r} {body[:80]!r}")
    if target in MISCASED:
        assert code == "UnknownOperationException", raw


def test_huge_strings_are_refused_cleanly(server):
    for operation, member in (("DescribeModel", "ModelName"), ("CreateModel", "ModelName"),
                              ("ListTrainingJobs", "NameContains"), ("AddTags", "ResourceArn")):
        assert call_json(server, "sagemaker", operation, {member: "x" * (4 << 20)}) == "ValidationException"
    huge_events = {"logGroupName": "g" * (4 << 20), "logStreamName": "s",
                   "logEvents": [{"timestamp": 1, "message": "m" * (2 << 20)}]}
    assert call_json(server, "logs", "PutLogEvents", huge_events) == "ValidationException"


# -- body limits, refused before the body is read ----------------------------------------------------
def raw_exchange(server: EmulatorServer, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request head and some body, leaving the rest unsent; the answer must come anyway."""
    host, port = server.endpoint_url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed early: fine
                break
        sock.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _content_length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_control_plane_body_over_limit_refused_unread(server):
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: SageMaker.ListModels\r\nContent-Length: 1000000000\r\n\r\n")
    answer = raw_exchange(server, head, [b"{"])  # a gigabyte announced, one byte sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_chunked_control_plane_body_stops_at_limit(server):
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: SageMaker.ListModels\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * (1 << 20)
    parts = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 17  # 17 MiB, and the body never ends
    answer = raw_exchange(server, head, parts)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_invoke_endpoint_body_over_6_mib_refused_unread(server):
    head = (b"POST /endpoints/fuzz-a/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (6 * 1024 * 1024 + 1))
    answer = raw_exchange(server, head, [b"{}"])
    assert answer.startswith(b"HTTP/1.1 400") and b"x-amzn-ErrorType: ValidationError" in answer, answer[:200]
    chunk = b"x" * (1 << 20)
    head = (b"POST /endpoints/fuzz-a/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    answer = raw_exchange(server, head, [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 7)
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413")) and b"ValidationError" in answer, answer[:200]


# -- hostile archives and paths, end to end --------------------------------------------------------------
def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


HOSTILE_MODELS = {
    "dotdot": ([(member("ok.json"), b"{}"), (member("../../../evil.txt"), b"evil")], "../../../evil.txt"),
    "absolute": ([(member("/tmp/sm-fuzz-evil-abs.txt"), b"evil")], "/tmp/sm-fuzz-evil-abs.txt"),
    "symlink-out": ([(member("link", tarfile.SYMTYPE, "../../../../outside"), None)], "link"),
    "symlink-then-write": ([(member("s", tarfile.SYMTYPE, "/tmp"), None), (member("s/sm-fuzz-evil.txt"), b"x")], "s"),
    "hardlink-out": ([(member("hl", tarfile.LNKTYPE, "/etc/passwd"), None)], "hl"),
    "device": ([(member("dev", tarfile.CHRTYPE), None)], "dev"),
    # a header declaring 10 TB (the data is never there): refused from the declared sizes, before writing
    "bomb": ([(member("small.json"), b"{}"), (member("huge.bin", size=10 * 1024 ** 4), None)], "huge.bin"),
}


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize("case", sorted(HOSTILE_MODELS))
def test_hostile_model_archive_fails_the_endpoint(server, serving_image, case):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    bucket = unique("hostile")
    s3.create_bucket(Bucket=bucket)
    members, culprit = HOSTILE_MODELS[case]
    s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=tar_bytes(members))
    before = tree(server.data_dir)
    name = unique("hostile")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": serving_image, "ModelDataUrl": f"s3://{bucket}/model.tar.gz"})  # a real image: the archive fails
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.time() + 60
    while (ep := sm.describe_endpoint(EndpointName=name))["EndpointStatus"] == "Creating":
        assert time.time() < deadline
        time.sleep(0.2)
    assert ep["EndpointStatus"] == "Failed"
    assert repr(culprit) in ep["FailureReason"], ep["FailureReason"]  # the member is named, not the image
    sm.delete_endpoint(EndpointName=name)
    after = tree(server.data_dir)
    assert {p for p in after - before if not p.startswith(("jobs", "endpoints", "emulator.db"))} == set()
    assert not Path("/tmp/sm-fuzz-evil-abs.txt").exists() and not Path("/tmp/sm-fuzz-evil.txt").exists()
    assert not (server.data_dir / "evil.txt").exists() and not (server.data_dir.parent / "evil.txt").exists()
    assert tree(server.data_dir / "endpoints" / "us-east-1" / name) == set()


def test_channel_keys_and_names_cannot_escape(server, training_image, tmp_path):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    bucket = unique("escape")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/ok.csv", Body=b"1\n")
    s3.put_object(Bucket=bucket, Key="data/../../../../evil.txt", Body=b"evil")
    s3.put_object(Bucket=bucket, Key="ckpt/../../../evil-ckpt.txt", Body=b"evil")

    def channel(uri: str, name: str = "train") -> list[dict]:
        return [{"ChannelName": name, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}]

    cases = {
        "s3-key": ({"InputDataConfig": channel(f"s3://{bucket}/data/")}, "evil.txt"),
        "checkpoint-key": ({"CheckpointConfig": {"S3Uri": f"s3://{bucket}/ckpt/"}}, "evil-ckpt.txt"),
        # file://<host>/... would name a host we are not: only file:///absolute/path is a local path
        "file-relative": ({"InputDataConfig": channel("file://../../etc/")}, "file:///absolute/path"),
    }
    for case, (overrides, fragment) in cases.items():
        name = unique(case)
        try:
            sm.create_training_job(**training_request(name, bucket, training_image, **overrides))
        except ClientError as exc:  # refused at the door is as good
            assert error_of(exc)[0] == "ValidationException", (case, exc)
            continue
        job = wait_training(sm, name, timeout=60)
        assert job["TrainingJobStatus"] == "Failed", (case, job.get("FailureReason"))
        assert fragment in job["FailureReason"] and "ClientError" in job["FailureReason"], job["FailureReason"]
    for bad in ("..", "."):
        with pytest.raises(ClientError) as exc:
            sm.create_training_job(**training_request(unique("dots"), bucket, training_image,
                                                      InputDataConfig=channel(f"s3://{bucket}/data/", bad)))
        assert error_of(exc)[0] == "ValidationException" and "/opt/ml/input/data" in error_of(exc)[1]
    for root in (server.data_dir, server.data_dir.parent, tmp_path):
        assert not (root / "evil.txt").exists() and not (root / "evil-ckpt.txt").exists()
    assert not list(server.data_dir.rglob("evil*"))
    assert tree(server.data_dir / "jobs" / "training") <= {"us-east-1"}
    assert subprocess.run(["docker", "ps", "-aq", "--filter", f"label=sagemaker-emulator.owner={server.owner}",
                           "--filter", "label=sagemaker-emulator.kind=training"],
                          capture_output=True, text=True).stdout.split() == []


def test_malformed_http_framing(server):
    json_head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
                 b"X-Amz-Target: SageMaker.ListModels\r\n")
    answer = raw_exchange(server, json_head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", [])
    assert answer.startswith(b"HTTP/1.1 400") and b"SerializationException" in answer, answer[:300]
    for length in (b"abc", b"-5", b"1e3"):
        answer = raw_exchange(server, json_head + b"Content-Length: " + length + b"\r\n\r\n{}", [])
        assert answer.startswith(b"HTTP/1.1 400"), (length, answer[:200])
    answer = raw_exchange(server, b"POST /endpoints/fuzz-a/invocations HTTP/1.1\r\nHost: x\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", [])
    assert answer.startswith(b"HTTP/1.1 400") and b"SerializationException" in answer, answer[:300]
    # and the server is still fine
    assert call_json(server, "sagemaker", "ListModels", {}) == ""
