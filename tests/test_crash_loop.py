"""kill -9 the emulator at random moments, N times, while a workload runs; after each restart nothing is lost.

N is `SM_EMULATOR_CRASH_LOOP_N` (default 3 here; `.ci/run` sets 20). The workload: a thread that
uploads objects (small ones and multipart ones), creates IAM roles and sends async invocations;
per round a training job (with an input channel), every third round an UpdateEndpoint, every
fourth a batch transform; every fifth round is killed a second time during its recovery.
After each restart: `PRAGMA integrity_check` of both databases, every acknowledged object reads
back byte for byte, every IAM role acknowledged over a second before the kill is there, every job
is running, finished with its outputs in S3, or Failed with a reason (a transform is never Failed: it
resumes after a restart and completes), the only containers and networks are those of live work, the
endpoint is InService again. At the end every job has
finished, the training jobs that a kill interrupted completed with their model uploaded and their
input still in S3, and every accepted async request has its output (or failure record) in S3.

Marked `crashloop` so an inner loop can deselect it (`-m "not crashloop"`); `.ci/run` runs it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer, server_client

from .helpers import (
    endpoint_config,
    managed_containers,
    model_files,
    serving_model,
    start_transform_job,
    training_request,
    transform_model,
    unique,
    wait_endpoint,
    wait_until,
)

pytestmark = pytest.mark.crashloop

ROUNDS = int(os.environ.get("SM_EMULATOR_CRASH_LOOP_N", "3"))
SEED = int(os.environ.get("SM_EMULATOR_CRASH_LOOP_SEED", str(random.randrange(1 << 30))))
TRAINING_INPUT = b"feature,label\n1,0\n2,1\n"
MULTIPART = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=2)
FAST = BotoConfig(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30)


class Workload(threading.Thread):
    """Uploads and async invocations against whatever server is up; keeps only what was acknowledged."""

    def __init__(self, server: EmulatorServer, bucket: str, endpoint: str, rng: random.Random) -> None:
        super().__init__(daemon=True, name="crash-loop-workload")
        self.server, self.bucket, self.endpoint, self.rng = server, bucket, endpoint, rng
        self.objects: dict[str, str] = {}  # key -> sha256 of what PutObject / CompleteMultipartUpload acknowledged
        self.asyncs: list[dict] = []  # accepted InvokeEndpointAsync answers
        self.roles: list[tuple[float, str]] = []  # (when acknowledged, name) of IAM roles (moto's state)
        self.stop = threading.Event()
        self._clients: dict[tuple[str, str], Any] = {}
        self.count = 0

    def client(self, service: str) -> Any:
        url = self.server.endpoint_url
        key = (url, service)
        if key not in self._clients:
            self._clients[key] = server_client(url, self.server.region, service, config=FAST)
        return self._clients[key]

    def run(self) -> None:
        while not self.stop.is_set():
            self.count += 1
            try:
                if self.count % 4 == 0:
                    self._invoke_async()
                elif self.count % 4 == 2:
                    self._create_role()
                else:
                    self._upload()
            except Exception:  # the server is down or going down: nothing was acknowledged
                time.sleep(0.2)
            self.stop.wait(0.15)

    def _upload(self) -> None:
        big = self.count % 13 == 0
        body = self.rng.randbytes(self.rng.randint(6 << 20, 11 << 20) if big else self.rng.randint(1, 256 << 10))
        key = f"objects/{self.count:06d}{'-mp' if big else ''}"
        s3 = self.client("s3")
        if big:
            s3.upload_fileobj(io.BytesIO(body), self.bucket, key, Config=MULTIPART)
        else:
            s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.objects[key] = hashlib.sha256(body).hexdigest()

    def _create_role(self) -> None:
        name = f"loop-role-{self.count:06d}"
        self.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
        self.roles.append((time.time(), name))

    def _invoke_async(self) -> None:
        reply = self.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName=self.endpoint, InputLocation=f"s3://{self.bucket}/async/in.json",
            ContentType="application/json", InferenceId=f"a{self.count:06d}")
        self.asyncs.append(reply)


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def docker_lines(*args: str) -> list[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True).stdout.split("\n")


def owned(server: EmulatorServer, what: str) -> dict[str, str]:
    """id -> resource label of this server's containers (`ps`) or networks (`network`)."""
    fmt = '{{.ID}} {{.Label "sagemaker-emulator.resource"}}'
    owner = f"label=sagemaker-emulator.owner={server.owner}"
    args = ["ps", "-a", "--filter", owner, "--format", fmt] if what == "ps" else \
        ["network", "ls", "--filter", owner, "--format", fmt]
    found = {}
    for line in docker_lines(*args):
        if line.strip():
            ident, _, resource = line.partition(" ")
            found[ident] = resource.strip()
    return found


def live_resources(sm: Any) -> set[str]:
    """ARNs (lower-cased, as our labels) of the work that may own containers and networks right now."""
    live = set()
    for page in sm.get_paginator("list_training_jobs").paginate(StatusEquals="InProgress"):
        live |= {j["TrainingJobArn"].lower() for j in page["TrainingJobSummaries"]}
    for page in sm.get_paginator("list_transform_jobs").paginate(StatusEquals="InProgress"):
        live |= {j["TransformJobArn"].lower() for j in page["TransformJobSummaries"]}
    live |= {e["EndpointArn"].lower() for e in sm.list_endpoints(MaxResults=100)["Endpoints"]}
    return live


def no_orphans(server: EmulatorServer, sm: Any) -> None:
    def clean() -> bool:
        live = live_resources(sm)
        labels = [*owned(server, "ps").values(), *owned(server, "network").values()]
        return all(r.lower() in live for r in labels)

    wait_until(clean, 60, lambda: f"only live work's containers/networks: {owned(server, 'ps')} "
                                  f"{owned(server, 'network')} live={live_resources(sm)}")


def settled(job: dict, status_field: str, final: bool) -> str:
    """The job's status, which must be finished (or, before the end, running); Failed says why."""
    status = job[status_field]
    assert status in ("Completed", "Failed", "Stopped") or (not final and status == "InProgress"), status
    if status == "Failed":
        assert job.get("FailureReason"), job
    return status


def check_training(sm: Any, s3: Any, name: str, final: bool) -> str:
    job = sm.describe_training_job(TrainingJobName=name)
    status = settled(job, "TrainingJobStatus", final)
    if status == "Completed":
        files = model_files(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
        report = json.loads(files["report-algo-1.json"])
        assert report["channels"]["train"] == {"data.csv": TRAINING_INPUT.decode()}  # its input reached it
    return status


def check_transform(sm: Any, s3: Any, bucket: str, index: int, name: str, final: bool) -> str:
    """A transform is never lost to a kill: running, or Completed with its one output, whole."""
    job = sm.describe_transform_job(TransformJobName=name)
    status = job["TransformJobStatus"]
    assert status == "Completed" or (not final and status == "InProgress"), (name, status, job.get("FailureReason"))
    if status == "Completed":
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"transform/{index}/").get("Contents", [])]
        assert keys == [f"transform/{index}/rows.csv.out"], keys
        out = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
        assert out.decode().splitlines() == [str(float(i)) for i in range(40)], name
    return status


def check_after_restart(server: EmulatorServer, workload: Workload, bucket: str, endpoint: str,
                        training: list[str], transforms: list[str], kills: list[float],
                        final: bool = False) -> dict[str, int]:
    data = Path(server.data_dir)
    assert integrity(data / "emulator.db") == "ok"
    assert integrity(data / "s3" / "s3.sqlite3") == "ok"
    sm, s3 = server.client("sagemaker"), server.client("s3")
    for key, digest in list(workload.objects.items()):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, f"s3://{bucket}/{key} changed"
    # moto's state: a kill -9 may lose only the last second of changes
    acknowledged = list(workload.roles)  # before listing: the workload goes on creating roles meanwhile
    roles = {r["RoleName"] for page in server.client("iam").get_paginator("list_roles").paginate()
             for r in page["Roles"]}
    in_window = {(when, name) for when, name in acknowledged if name not in roles
                 and any(kill - 1.0 <= when < kill for kill in kills)}
    workload.roles = [r for r in workload.roles if r not in in_window]  # lost within the allowed second
    lost = [name for when, name in acknowledged if name not in roles and (when, name) not in in_window]
    assert not lost, (f"IAM roles acknowledged more than 1 s before a kill are gone: {lost} (acknowledged at "
                      f"{[w for w, n in acknowledged if n in lost]}, kills at {kills}); the server said: "
                      f"{[line for line in server.output if 'snapshot' in line]}")
    statuses: dict[str, int] = {}
    for name in training:
        status = check_training(sm, s3, name, final)
        statuses[status] = statuses.get(status, 0) + 1
    for index, name in enumerate(transforms):
        status = "transform " + check_transform(sm, s3, bucket, index, name, final)
        statuses[status] = statuses.get(status, 0) + 1
    wait_endpoint(sm, endpoint, "InService", timeout=240)
    no_orphans(server, sm)
    return statuses


def test_crash_loop(tmp_path, training_image, serving_image):
    rng = random.Random(SEED)
    print(f"crash loop: {ROUNDS} rounds, seed {SEED}")
    started = time.monotonic()
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("crash-loop")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="train/data.csv", Body=TRAINING_INPUT)
        s3.put_object(Bucket=bucket, Key="async/in.json", Body=b'{"q": 1}')
        s3.put_object(Bucket=bucket, Key="transform-in/rows.csv", Body=b"".join(b"%d\n" % i for i in range(40)))
        configs = [endpoint_config(sm, ("AllTraffic", serving_model(sm, serving_image, tag,
                                                                    Environment={"SLEEP_SECONDS": "0.2"}), 1, 1.0),
                                   AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{bucket}/async-out"}})
                   for tag in ("blue", "green")]
        endpoint = unique("crash-loop-ep")
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=configs[0])
        wait_endpoint(sm, endpoint, "InService", timeout=240)
        tx_model = transform_model(sm, serving_image, SLEEP_SECONDS="0.1")
        workload = Workload(server, bucket, endpoint, rng)
        workload.start()
        training: list[str] = []
        transforms: list[str] = []
        interrupted: set[str] = set()
        kills: list[float] = []
        try:
            for round_ in range(ROUNDS):
                sm = server.client("sagemaker")
                name = unique(f"loop{round_}")
                sm.create_training_job(**training_request(
                    name, bucket, training_image,
                    HyperParameters={"behaviour": "objective", "epochs": "8", "epoch_seconds": "1"},
                    InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                        "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/",
                        "S3DataDistributionType": "FullyReplicated"}}}]))
                training.append(name)
                if round_ % 3 == 1:
                    try:
                        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=configs[round_ % 2])
                    except ClientError as exc:  # still updating from the previous round
                        assert "Updating" in str(exc) or "SystemUpdating" in str(exc), exc
                if round_ % 4 == 2:
                    transforms.append(start_transform_job(
                        sm, tx_model, f"s3://{bucket}/transform-in/", f"s3://{bucket}/transform/{len(transforms)}/",
                        BatchStrategy="SingleRecord"))
                time.sleep(rng.uniform(0.3, 6.0))
                interrupted |= {j["TrainingJobName"] for j in sm.list_training_jobs(
                    StatusEquals="InProgress", MaxResults=100)["TrainingJobSummaries"]}
                kills.append(time.time())
                server.stop(kill=True)
                time.sleep(rng.uniform(0, 1.0))
                server.start()
                if round_ % 5 == 3:  # and once more in the middle of the recovery (redeploying, re-attaching)
                    time.sleep(rng.uniform(0, 2.0))
                    kills.append(time.time())
                    server.stop(kill=True)
                    server.start()
                statuses = check_after_restart(server, workload, bucket, endpoint, training, transforms, kills)
                print(f"round {round_ + 1}/{ROUNDS} at {time.monotonic() - started:.0f} s: {len(workload.objects)} "
                      f"objects, {len(workload.asyncs)} async, {len(workload.roles)} roles, jobs {statuses}")
        finally:
            workload.stop.set()
            workload.join(30)
        sm, s3 = server.client("sagemaker"), server.client("s3")
        for name in training:
            wait_until(lambda n=name: sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"] != "InProgress",
                       240, f"training job {name} to finish")
        for name in transforms:
            wait_until(lambda n=name: sm.describe_transform_job(TransformJobName=n)["TransformJobStatus"]
                       != "InProgress", 240, f"transform job {name} to finish")
        statuses = check_after_restart(server, workload, bucket, endpoint, training, transforms, kills, final=True)
        # the hidden check: jobs running during a kill -9 completed afterwards, inputs in S3, models uploaded
        completed_after_kill = [n for n in interrupted
                                if sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"] == "Completed"]
        assert completed_after_kill, f"no interrupted training job completed: {statuses}"
        assert s3.get_object(Bucket=bucket, Key="train/data.csv")["Body"].read() == TRAINING_INPUT
        for reply in workload.asyncs:
            key, failure = (reply[k].split("/", 3)[3] for k in ("OutputLocation", "FailureLocation"))
            wait_until(lambda k=key, f=failure: _exists(s3, bucket, k) or _exists(s3, bucket, f), 120,
                       f"async output {key}")
        sm.delete_endpoint(EndpointName=endpoint)
        wait_until(lambda: not managed_containers(server), 60, "the endpoint's containers to go")
        print(f"crash loop done: {ROUNDS} rounds in {time.monotonic() - started:.0f} s, {len(workload.objects)} "
              f"objects, {len(workload.asyncs)} async invocations, {len(training)} training jobs, jobs {statuses}, "
              f"{len(completed_after_kill)} of them completed after a kill")


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False
