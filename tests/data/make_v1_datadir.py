"""Write tests/data/v1-datadir/emulator.db with the code of commit 4322266 (schema version 1).

The migration test (tests/test_migration.py) opens this file with today's code. It must be what
the old code really wrote, so this runs the old code itself, through its own wire-level dispatch
(validation, handlers, storage), with the current virtualenv's libraries:

    git worktree add /tmp/v1code 4322266
    python tests/data/make_v1_datadir.py /tmp/v1code
    git worktree remove /tmp/v1code
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "v1-datadir"

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"

WRITER = r'''
import json, sys
import sagemaker_emulator
assert sagemaker_emulator.__file__.startswith(sys.argv[2]), sagemaker_emulator.__file__
from sagemaker_emulator.config import Config
from sagemaker_emulator.jobs.records import JobRecord
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.services import Services
from sagemaker_emulator.storage.database import SCHEMA_VERSION

assert SCHEMA_VERSION == 1
services = Services(Config(data_dir=sys.argv[1]))
services.training.submit = lambda region, name: None  # the record only: no container
calls = json.loads(sys.argv[3])
for service, target, body in calls:
    ctx = RequestContext(region="us-east-1", account_id="123456789012", request_id="fixture", services=services)
    status, _, reply = getattr(services, service).dispatch(target, json.dumps(body).encode(), ctx)
    assert status == 200, (target, reply)
    assert b"rejected" not in reply, (target, reply)
JobRecord("training-job", "us-east-1", "v1-training-job", "TrainingJobStatus").edit(
    lambda d: d.update(TrainingJobStatus="Completed", SecondaryStatus="Completed",
                       TrainingStartTime=1767225600.0, TrainingEndTime=1767225660.0))
services.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
services.db.close()
'''

CALLS = [
    ("sagemaker", "SageMaker.CreateModel", {
        "ModelName": "v1-model", "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": "my-serve:latest", "Environment": {"A": "1"}},
        "Tags": [{"Key": "team", "Value": "ml"}, {"Key": "stage", "Value": "v1"}]}),
    ("sagemaker", "SageMaker.CreateEndpointConfig", {
        "EndpointConfigName": "v1-config", "Tags": [{"Key": "team", "Value": "ml"}],
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "v1-model",
                                "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]}),
    ("sagemaker", "SageMaker.CreateTrainingJob", {
        "TrainingJobName": "v1-training-job", "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "my-train:latest", "TrainingInputMode": "File"},
        "HyperParameters": {"epochs": "3"},
        "OutputDataConfig": {"S3OutputPath": "s3://v1-bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Tags": [{"Key": "owner", "Value": "fixture"}]}),
    ("logs", "Logs_20140328.CreateLogGroup", {"logGroupName": "/aws/sagemaker/TrainingJobs"}),
    ("logs", "Logs_20140328.CreateLogStream", {"logGroupName": "/aws/sagemaker/TrainingJobs",
                                               "logStreamName": "v1-training-job/algo-1-1767225600"}),
    ("logs", "Logs_20140328.PutLogEvents", {
        "logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "v1-training-job/algo-1-1767225600",
        # PutLogEvents refuses events older than 14 days: stamped when the fixture is made
        "logEvents": [{"timestamp": int(time.time() * 1000) - 1000 + i, "message": f"epoch {i}"} for i in range(3)]}),
]


def shim(code: Path, into: Path) -> Path:
    """A `sagemaker_emulator` package laid out as the old distribution installed it."""
    package = into / "sagemaker_emulator"
    package.mkdir(parents=True)
    for entry in (code / "emulator").iterdir():
        (package / entry.name).symlink_to(entry)
    (package / "handlers").symlink_to(code / "handlers")
    (package / "storage").symlink_to(code / "storage")
    return package


def main() -> None:
    code = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="v1-fixture-") as tmp:
        shim(code, Path(tmp) / "path")
        data_dir = Path(tmp) / "data"
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "path"), "SAGEMAKER_EMULATOR_REGION": "us-east-1"}
        subprocess.run([sys.executable, "-c", WRITER, str(data_dir), str(Path(tmp) / "path"), json.dumps(CALLS)],
                       check=True, env=env, cwd=tmp)
        OUT.mkdir(exist_ok=True)
        shutil.copyfile(data_dir / "emulator.db", OUT / "emulator.db")
    print(f"wrote {OUT / 'emulator.db'}")


if __name__ == "__main__":
    main()
