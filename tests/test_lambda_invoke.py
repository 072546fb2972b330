"""Lambda Invoke with real containers: moto keeps the functions, their Python handlers run on the base image.

The server runs in-process on a Docker runtime of its own owner, so the tests can also call the
interface the pipelines' Lambda step uses (`lambda_runtime.invoke(services, ...)`) and check that no
container, network, volume or code directory is left behind.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from sagemaker_emulator.aws import lambda_runtime
from sagemaker_emulator.runtime.docker_engine import DockerRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import unique, wait_until

ROLE = "lambda-test-role"

HANDLERS = '''
import logging, os, socket, sys, time

def handler(event, context):
    print("handling", event.get("n"), "in", context.function_name)
    logging.getLogger("app").warning("a warning for %s", event.get("n"))
    return {"event": event, "env": os.environ.get("GREETING"), "host": socket.gethostname(),
            "name": context.function_name, "request_id": context.aws_request_id,
            "arn": context.invoked_function_arn, "memory": context.memory_limit_in_mb,
            "remaining": context.get_remaining_time_in_millis(),
            "custom": context.client_context.custom if context.client_context else None}

def fail(event, context):
    raise KeyError("no such thing")

def slow(event, context):
    print("going to sleep")
    time.sleep(30)
    return "never"

def chatty(event, context):
    for i in range(400):
        print(f"line {i:04d} " + "x" * 40)
    return {"lines": 400}

def crash(event, context):
    sys.stdout.flush()
    os._exit(3)
'''


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buf.getvalue()


CODE = zipped({"app.py": HANDLERS})


def leftovers(runtime: DockerRuntime) -> list[str]:
    return [h.name for h in runtime.list_managed(runtime.owner)] + runtime.list_networks(runtime.owner) \
        + runtime.list_volumes(runtime.owner)


def code_dirs(server: InProcessServer) -> list[Path]:
    return [p for p in (Path(server.data_dir) / "jobs" / "lambda").glob("*/*")]


@pytest.fixture(scope="module")
def server(docker_ready, tmp_path_factory):
    runtime = DockerRuntime(owner="test-lambda-" + uuid.uuid4().hex[:8])
    srv = InProcessServer(runtime, data_dir=tmp_path_factory.mktemp("lambda") / "data").start()
    with contextlib.suppress(ClientError):
        srv.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
    yield srv
    srv.stop()
    left = leftovers(runtime)
    runtime.cleanup(runtime.owner)
    assert not left, f"Lambda left containers/networks/volumes behind: {left}"
    assert not code_dirs(srv), "Lambda left code directories behind"


@pytest.fixture(scope="module")
def lam(server):
    return server.client("lambda", config=BotoConfig(retries={"max_attempts": 1}))


def create(lam, handler: str = "app.handler", runtime: str = "python3.11", code: bytes = CODE, **extra) -> str:
    name = unique("fn")
    lam.create_function(FunctionName=name, Runtime=runtime, Role=f"arn:aws:iam::123456789012:role/{ROLE}",
                        Handler=handler, Code={"ZipFile": code}, **extra)
    return name


def containers_of(server: InProcessServer, name: str) -> list[str]:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    return list(server.runtime.find_containers({"sagemaker-emulator.resource": arn}))


def test_invoke_returns_the_handlers_result_with_env_and_context(server, lam):
    name = create(lam, Environment={"Variables": {"GREETING": "hello"}}, Timeout=30, MemorySize=256)
    reply = lam.invoke(FunctionName=name, Payload=json.dumps({"n": 1}).encode())
    assert reply["StatusCode"] == 200
    assert "FunctionError" not in reply
    assert reply["ExecutedVersion"] == "$LATEST"
    result = json.loads(reply["Payload"].read())
    assert result["event"] == {"n": 1}
    assert result["env"] == "hello"
    assert result["name"] == name
    assert result["arn"].endswith(f":function:{name}")
    assert result["memory"] == "256"
    assert 25_000 < result["remaining"] <= 30_000
    uuid.UUID(result["request_id"])
    # a second invocation reuses the warm container (same host name), with a new request id
    again = json.loads(lam.invoke(FunctionName=name, Payload=b'{"n": 2}')["Payload"].read())
    assert again["host"] == result["host"] and again["request_id"] != result["request_id"]
    assert again["event"] == {"n": 2}
    assert again["custom"] is None
    # an ARN names the function as well; no payload is the event {}; a client context reaches the handler
    by_arn = json.loads(lam.invoke(FunctionName=result["arn"], Qualifier="$LATEST", ClientContext=base64.b64encode(
        json.dumps({"custom": {"k": "v"}}).encode()).decode())["Payload"].read())
    assert by_arn["event"] == {} and by_arn["custom"] == {"k": "v"}


def test_the_log_goes_to_cloudwatch(server, lam):
    name = create(lam)
    lam.invoke(FunctionName=name, Payload=b'{"n": 7}')
    logs = server.client("logs")

    def messages() -> list[str]:
        streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
        return [e["message"] for s in streams for e in
                logs.get_log_events(logGroupName=f"/aws/lambda/{name}", logStreamName=s["logStreamName"])["events"]]

    lines = wait_until(lambda: [m for m in messages() if m.startswith("REPORT")] and messages(), timeout=20,
                       what="the invocation's log in CloudWatch")
    assert any(m.startswith("START RequestId:") for m in lines)
    assert f"handling 7 in {name}" in lines


def test_handler_exception_is_an_unhandled_function_error(lam):
    name = create(lam, handler="app.fail")
    reply = lam.invoke(FunctionName=name, Payload=b"{}")
    assert reply["StatusCode"] == 200
    assert reply["FunctionError"] == "Unhandled"
    error = json.loads(reply["Payload"].read())
    assert error["errorType"] == "KeyError"
    assert error["errorMessage"] == "'no such thing'"
    assert any("in fail" in frame for frame in error["stackTrace"])


def test_import_error_and_missing_handler(lam):
    broken = create(lam, handler="nosuchmodule.handler")
    error = json.loads(lam.invoke(FunctionName=broken)["Payload"].read())
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'nosuchmodule'" in error["errorMessage"]
    missing = create(lam, handler="app.nothere")
    reply = lam.invoke(FunctionName=missing)
    assert reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Payload"].read())["errorType"] == "Runtime.HandlerNotFound"


def test_timeout_kills_the_container_and_answers_awss_error(server, lam):
    name = create(lam, handler="app.slow", Timeout=2)
    started = time.monotonic()
    reply = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    took = time.monotonic() - started
    assert reply["FunctionError"] == "Unhandled"
    error = json.loads(reply["Payload"].read())
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in error["errorMessage"]
    assert took < 20, took  # the 30 s sleep was cut (the container's start counts too)
    tail = base64.b64decode(reply["LogResult"]).decode()
    assert "going to sleep" in tail and "Task timed out after 2.00 seconds" in tail
    assert containers_of(server, name) == []  # the timed-out environment is gone


def test_log_type_tail_is_the_last_4_kb(lam):
    name = create(lam)
    reply = lam.invoke(FunctionName=name, Payload=b'{"n": 3}', LogType="Tail")
    tail = base64.b64decode(reply["LogResult"]).decode()
    assert "START RequestId:" in tail and f"handling 3 in {name}" in tail and "REPORT RequestId:" in tail
    warning = next(line for line in tail.splitlines() if line.startswith("[WARNING]"))
    level, stamp, request_id, message = warning.split("\t")  # AWS's format for the root logger
    assert message == "a warning for 3" and stamp.endswith("Z")
    assert f"START RequestId: {request_id}" in tail
    assert "LogResult" not in lam.invoke(FunctionName=name, Payload=b"{}")  # only when asked
    chatty = create(lam, handler="app.chatty")
    reply = lam.invoke(FunctionName=chatty, LogType="Tail")
    tail = base64.b64decode(reply["LogResult"])
    assert len(tail) <= 4096 and b"line 0399" in tail and b"line 0000" not in tail
    assert tail.rstrip().split(b"\n")[-1].startswith(b"REPORT RequestId:")


def test_event_invocation_is_accepted_and_runs(server, lam):
    name = create(lam)
    reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 42}')
    assert reply["StatusCode"] == 202
    assert reply["Payload"].read() == b""
    logs = server.client("logs")
    wait_until(lambda: logs.filter_log_events(logGroupName=f"/aws/lambda/{name}",
                                              filterPattern='"handling 42"')["events"]
               if logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"] else None,
               timeout=30, what="the event invocation's log line")
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204


def test_non_python_runtime_is_refused_clearly(server, lam):
    name = create(lam, runtime="nodejs20.x", handler="index.handler")
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidRuntimeException"
    assert "nodejs20.x" in caught.value.response["Error"]["Message"]
    assert "python3.x" in caught.value.response["Error"]["Message"]
    result = lambda_runtime.invoke(server.services, name, b"{}", "us-east-1")
    assert result.status_code == 502 and result.function_error is None
    assert json.loads(result.payload)["errorType"] == "InvalidRuntimeException"


def test_service_errors(lam):
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    name = create(lam)
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=name, InvocationType="Sometimes")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_crash_mid_invocation_is_an_exit_error(server, lam):
    name = create(lam, handler="app.crash")
    reply = lam.invoke(FunctionName=name, Payload=b"{}")
    assert reply["FunctionError"] == "Unhandled"
    error = json.loads(reply["Payload"].read())
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]
    assert containers_of(server, name) == []


def test_updated_code_and_s3_code_are_what_runs(server, lam):
    name = create(lam, code=zipped({"app.py": "def handler(e, c):\n    return 'v1'\n"}))
    assert lam.invoke(FunctionName=name)["Payload"].read() == b'"v1"'
    lam.update_function_code(FunctionName=name, ZipFile=zipped({"app.py": "def handler(e, c):\n    return 'v2'\n"}))
    assert lam.invoke(FunctionName=name)["Payload"].read() == b'"v2"'
    s3 = server.client("s3")
    bucket = unique("lambda-code")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="pkg/code.zip",
                  Body=zipped({"pkg/mod.py": "def run(e, c):\n    return {'from': 's3', 'got': e}\n"}))
    from_s3 = unique("fn")
    lam.create_function(FunctionName=from_s3, Runtime="python3.12", Role=f"arn:aws:iam::123456789012:role/{ROLE}",
                        Handler="pkg/mod.run", Code={"S3Bucket": bucket, "S3Key": "pkg/code.zip"})
    assert json.loads(lam.invoke(FunctionName=from_s3, Payload=b'[1]')["Payload"].read()) == {"from": "s3", "got": [1]}


def test_the_in_process_interface(server, lam):
    """What a pipeline's Lambda step calls: the step's inputs as the event, the returned dict as outputs."""
    name = create(lam)
    result = lambda_runtime.invoke(server.services, name, json.dumps({"n": 5}).encode(), "us-east-1")
    assert isinstance(result, lambda_runtime.LambdaResult)
    assert result.status_code == 200 and result.function_error is None
    assert json.loads(result.payload)["event"] == {"n": 5}
    assert "handling 5" in result.log_tail
    failed = lambda_runtime.invoke(server.services, create(lam, handler="app.fail"), b"{}", "us-east-1")
    assert failed.function_error == "Unhandled" and json.loads(failed.payload)["errorType"] == "KeyError"
    missing = lambda_runtime.invoke(server.services, "nope", b"{}", "us-east-1")
    assert missing.status_code == 404 and json.loads(missing.payload)["errorType"] == "ResourceNotFoundException"
    nowhere = lambda_runtime.invoke(server.services, name, b"{}", "xx-nowhere-1")
    assert nowhere.status_code == 404 and json.loads(nowhere.payload)["errorType"] == "ResourceNotFoundException"
    bad = lambda_runtime.invoke(server.services, name, b"[1,", "us-east-1")
    assert bad.status_code == 400 and json.loads(bad.payload)["errorType"] == "InvalidRequestContentException"


def test_nothing_left_behind(runtime, tmp_path):
    """Warm containers and code directories go when the server stops; idle ones go on their own too."""
    with InProcessServer(runtime, data_dir=tmp_path / "data") as srv:
        with contextlib.suppress(ClientError):  # moto's IAM is per process: the module's server may have made it
            srv.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
        lam = srv.client("lambda")
        name = create(lam)
        other = create(lam)
        assert lam.invoke(FunctionName=name)["StatusCode"] == 200
        assert lam.invoke(FunctionName=other)["StatusCode"] == 200
        assert len(containers_of(srv, name)) == 1 and len(code_dirs(srv)) == 2
        srv.services.lambdas.reap(idle_seconds=0)  # what the reaper does after IDLE_SECONDS
        assert containers_of(srv, name) == [] and code_dirs(srv) == []
        assert lam.invoke(FunctionName=name)["StatusCode"] == 200  # cold again
        assert len(containers_of(srv, name)) == 1
    assert leftovers(runtime) == []
    assert code_dirs(srv) == []


def test_a_restart_removes_what_a_killed_emulator_left(runtime, tmp_path):
    first = InProcessServer(runtime, data_dir=tmp_path / "data").start()
    with contextlib.suppress(ClientError):
        first.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
    name = create(first.client("lambda"))
    assert first.client("lambda").invoke(FunctionName=name)["StatusCode"] == 200
    assert len(containers_of(first, name)) == 1
    first.abandon()  # a kill -9: the warm container and its code directory stay
    second = InProcessServer(runtime, data_dir=tmp_path / "data").start()
    try:
        assert containers_of(second, name) == [] and code_dirs(second) == []
    finally:
        second.stop()


def test_code_unzipping_refuses_what_could_escape(tmp_path):
    from sagemaker_emulator.staging import StagingError, safe_extract_zip

    for bad in ("../evil.py", "/abs.py", "a//b.py"):
        with pytest.raises(StagingError, match="Refusing"):
            safe_extract_zip(zipped({bad: "x"}), tmp_path / "out", max_total_bytes=1 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        link = zipfile.ZipInfo("link.py")
        link.external_attr = (0o120777 << 16)  # a symlink
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(StagingError, match="not a regular file"):
        safe_extract_zip(buf.getvalue(), tmp_path / "out", max_total_bytes=1 << 20)
    with pytest.raises(StagingError, match="over 100 bytes"):
        safe_extract_zip(zipped({"big.py": "x" * 1000}), tmp_path / "out", max_total_bytes=100)
    with pytest.raises(StagingError, match="Could not unzip"):
        safe_extract_zip(b"not a zip", tmp_path / "out", max_total_bytes=100)
    assert safe_extract_zip(zipped({"pkg/a.py": "1", "b.py": "2"}), tmp_path / "ok", max_total_bytes=100) \
        == ["pkg/a.py", "b.py"]
    assert (tmp_path / "ok" / "pkg" / "a.py").read_text() == "1"
    assert not (tmp_path / "evil.py").exists()
