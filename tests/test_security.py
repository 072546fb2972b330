"""Secure defaults: loopback bind, what containers get from the host, and the optional SigV4 mode."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from sagemaker_emulator.config import Config
from sagemaker_emulator.testing import EmulatorServer

from .helpers import (
    create_single_variant,
    error_of,
    managed_containers,
    training_request,
    unique,
    wait_secondary,
    wait_training,
)

MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def signed(url: str, body: bytes, headers: dict[str, str], secret: str = "testing", key: str = "testing",
           service: str = "sagemaker", when: dt.datetime | None = None) -> dict[str, str]:
    """Headers of `body` POSTed to `url`, signed by botocore (optionally at another time)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    auth = SigV4Auth(Credentials(key, secret), service, "us-east-1")
    if when is None:
        auth.add_auth(request)
    else:
        from unittest import mock

        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(request)
    return dict(request.headers.items())


# -- binding ------------------------------------------------------------------------------------------
def test_binds_loopback_by_default_and_warns_when_wider(monkeypatch, docker_ready):
    monkeypatch.delenv("SAGEMAKER_EMULATOR_HOST", raising=False)
    assert Config().host == "127.0.0.1"
    with EmulatorServer() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        assert not any("WARNING" in line for line in server.output)
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        listening = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
        ours = [line for line in listening.splitlines() if f"pid={server.process.pid}," in line]
        if ours:  # `ss` shows processes here: loopback, plus the Docker bridge gateway for job containers
            allowed = {f"127.0.0.1:{port}"} | {f"{g}:{port}" for g in _bridge_gateways()}
            addresses = {line.split()[3] for line in ours}
            assert f"127.0.0.1:{port}" in addresses and addresses <= allowed, listening
        other = _non_loopback_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
    with EmulatorServer(extra_args=["--host", "0.0.0.0"]) as wide:
        deadline = time.time() + 5
        while not any("anyone who can reach this address" in line for line in wide.output):
            assert time.time() < deadline, wide.output
            time.sleep(0.05)
        assert any("WARNING" in line and "0.0.0.0" in line for line in wide.output)


def _bridge_gateways() -> set[str]:
    """docker0's address(es): the gateway, or the subnet's first address when the engine omits it."""
    import ipaddress

    out = subprocess.run(["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
                         capture_output=True, text=True).stdout
    found = set()
    for entry in json.loads(out or "[]") or []:
        if entry.get("Gateway"):
            found.add(entry["Gateway"])
        elif entry.get("Subnet"):
            found.add(str(next(ipaddress.ip_network(entry["Subnet"], strict=False).hosts())))
    return found


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


# -- SigV4 -------------------------------------------------------------------------------------------
def client_as(server: EmulatorServer, service: str, key: str = "testing", secret: str = "testing"):
    return boto3.client(service, endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=BotoConfig(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def signing_server():
    with EmulatorServer(extra_args=["--require-signature", "testing:testing,AKIDSECOND:second-secret"]) as server:
        yield server


def test_signed_requests_pass(signing_server):
    server = signing_server
    assert "Models" in server.client("sagemaker").list_models()
    assert "logGroups" in server.client("logs").describe_log_groups()
    second = client_as(server, "sagemaker", "AKIDSECOND", "second-secret")
    assert "Models" in second.list_models()
    with pytest.raises(ClientError) as exc:  # past the signature check: the endpoint is what is missing
        server.client("sagemaker-runtime").invoke_endpoint(EndpointName="nope", Body=b"{}")
    assert error_of(exc)[0] == "ValidationError"
    s3 = server.client("s3")  # moto-served services are left as moto serves them
    s3.create_bucket(Bucket=unique("signed"))
    assert s3.list_buckets()["Buckets"]
    with urllib.request.urlopen(server.endpoint_url + "/_emulator/health", timeout=5) as health:
        assert health.status == 200


@pytest.mark.parametrize("service", ["sagemaker", "logs", "sagemaker-runtime"])
def test_wrong_secret_is_refused(signing_server, service):
    client = client_as(signing_server, service, secret="not-the-secret")
    call = {"sagemaker": lambda: client.list_models(), "logs": lambda: client.describe_log_groups(),
            "sagemaker-runtime": lambda: client.invoke_endpoint(EndpointName="nope", Body=b"{}")}[service]
    with pytest.raises(ClientError) as exc:
        call()
    code, message, status = error_of(exc)
    assert (code, status) == ("InvalidSignatureException", 403) and message.startswith(MISMATCH)
    assert "The String-to-Sign should have been" in message  # what AWS adds, to help find the difference


def test_unknown_access_key_is_refused(signing_server):
    client = client_as(signing_server, "sagemaker", key="AKIDUNKNOWN")
    with pytest.raises(ClientError) as exc:
        client.list_models()
    assert error_of(exc) == ("UnrecognizedClientException", "The security token included in the request is invalid.",
                             403)


def test_unsigned_tampered_and_expired_requests(signing_server):
    url = signing_server.endpoint_url + "/"
    base = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListModels"}
    status, _, body = post(url, b"{}", base)
    assert status == 403 and json.loads(body) == {"__type": "MissingAuthenticationTokenException",
                                                  "message": "Missing Authentication Token"}
    status, headers, body = post(signing_server.endpoint_url + "/endpoints/x/invocations", b"{}",
                                 {"Content-Type": "application/json"})
    assert status == 403 and headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

    good = signed(url, b"{}", base)
    assert post(url, b"{}", good)[0] == 200
    status, _, body = post(url, b'{"MaxResults": 1}', good)  # body changed after signing
    assert status == 403 and json.loads(body)["__type"] == "InvalidSignatureException"
    assert json.loads(body)["message"].startswith(MISMATCH + "\n\nThe Canonical String for this request")
    status, _, body = post(url, b"{}", {**good, "X-Amz-Target": "SageMaker.ListEndpoints"})  # signed header changed
    assert status == 403 and json.loads(body)["__type"] == "InvalidSignatureException"

    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    status, _, body = post(url, b"{}", signed(url, b"{}", base, when=old))
    assert status == 403 and json.loads(body)["__type"] == "InvalidSignatureException"
    assert json.loads(body)["message"].startswith("Signature expired: ")

    status, _, body = post(url, b"{}", {**base, "Authorization": "AWS4-HMAC-SHA256 garbage"})
    assert status == 400 and json.loads(body)["__type"] == "IncompleteSignatureException"

    invoke = signing_server.endpoint_url + "/endpoints/nope/invocations"
    runtime_headers = signed(invoke, b"{}", {"Content-Type": "application/json"})
    status, headers, _ = post(invoke, b"{}", runtime_headers)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationError")  # signature fine, no endpoint
    status, headers, _ = post(invoke, b"[]", runtime_headers)
    assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")


def test_signature_switch_from_the_environment():
    with EmulatorServer(env={"SAGEMAKER_EMULATOR_REQUIRE_SIGNATURE": "1"}) as server:
        assert "Models" in server.client("sagemaker").list_models()  # testing/testing
        with pytest.raises(ClientError) as exc:
            client_as(server, "sagemaker", secret="wrong").list_models()
        assert error_of(exc)[0] == "InvalidSignatureException"
        status, _, _ = post(server.endpoint_url + "/", b"{}", {"X-Amz-Target": "SageMaker.ListModels",
                                                               "Content-Type": "application/x-amz-json-1.1"})
        assert status == 403


def test_bad_credential_list_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sagemaker_emulator", "serve", "--port", "0",
                             "--data-dir", str(tmp_path), "--require-signature", "no-colon-here"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--require-signature" in result.stderr


def test_unsigned_requests_accepted_by_default(sagemaker_emulator):
    status, _, body = post(sagemaker_emulator.endpoint_url + "/", b"{}", {
        "X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 200 and "Models" in json.loads(body)


# -- what containers get ------------------------------------------------------------------------------
def inspect(container_ids: list[str]) -> list[dict]:
    out = subprocess.run(["docker", "inspect", *container_ids], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def own_directory(info: dict, data_dir: Path) -> str:
    """The one host directory a container may see: its job's or its endpoint's."""
    labels = info["Config"]["Labels"]
    name = labels["sagemaker-emulator.resource"].rsplit("/", 1)[1]
    sub = {"training": "jobs/training/us-east-1", "endpoint": "endpoints/us-east-1"}[labels["sagemaker-emulator.kind"]]
    return os.path.join(str(data_dir.resolve()), sub, name)


def assert_confined(info: dict, data_dir: Path) -> None:
    host = info["HostConfig"]
    assert host["Privileged"] is False
    assert not host.get("CapAdd")
    assert not host.get("Devices")
    assert host.get("PidMode", "") in ("", "private") and host.get("IpcMode") in ("private", "shareable", "")
    assert host.get("NetworkMode") != "host"
    root = own_directory(info, data_dir)
    assert info["Mounts"]
    for mount in info["Mounts"]:
        assert "docker.sock" not in mount.get("Source", "") and "docker.sock" not in mount["Destination"]
        if mount["Type"] == "bind":
            assert os.path.realpath(mount["Source"]).startswith(root + os.sep), mount
        else:
            assert mount["Type"] == "volume" and not mount.get("Name", "").startswith("/"), mount
    assert not host.get("Binds")  # only --mount binds, all checked above
    for bindings in (host.get("PortBindings") or {}).values():
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings), bindings


def test_containers_are_confined(tmp_path, training_image, serving_image):
    with EmulatorServer(data_dir=tmp_path / "data") as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("confined")
        s3.create_bucket(Bucket=bucket)
        isolated, clustered = unique("isolated"), unique("clustered")
        sm.create_training_job(**training_request(isolated, bucket, training_image,
                                                  HyperParameters={"behaviour": "sleep"}, EnableNetworkIsolation=True))
        sm.create_training_job(**training_request(
            clustered, bucket, training_image, HyperParameters={"behaviour": "sleep"}, EnableNetworkIsolation=True,
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1}))
        endpoint = unique("confined-ep")
        create_single_variant(sm, serving_image, endpoint)
        wait_secondary(sm, isolated, "Training")
        wait_secondary(sm, clustered, "Training")
        infos = inspect(managed_containers(server))
        kinds = sorted(i["Config"]["Labels"].get("sagemaker-emulator.kind", "") for i in infos)
        assert len(infos) == 4, kinds
        for info in infos:
            assert_confined(info, server.data_dir)
            assert info["State"]["Running"]
        by_job = {}
        for info in infos:
            by_job.setdefault(info["Config"]["Labels"].get("sagemaker-emulator.resource", ""), []).append(info)
        single = next(v for k, v in by_job.items() if k.endswith("/" + isolated))
        assert single[0]["HostConfig"]["NetworkMode"] == "none"  # isolation asked: no network at all
        cluster = next(v for k, v in by_job.items() if k.endswith("/" + clustered))
        for info in cluster:  # isolated cluster: only its own internal network, no way out
            (network,) = info["NetworkSettings"]["Networks"]
            net = json.loads(subprocess.run(["docker", "network", "inspect", network], capture_output=True,
                                            text=True, check=True).stdout)[0]
            assert net["Internal"] is True
        for job in (isolated, clustered):
            sm.stop_training_job(TrainingJobName=job)
        for job in (isolated, clustered):
            assert wait_training(sm, job, timeout=60)["TrainingJobStatus"] == "Stopped"
        sm.delete_endpoint(EndpointName=endpoint)
        deadline = time.time() + 30
        while managed_containers(server) and time.time() < deadline:
            time.sleep(0.2)
        assert managed_containers(server) == []
    assert managed_containers(server) == []
