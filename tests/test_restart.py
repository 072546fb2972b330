"""State lives in SQLite: a restarted server (even after kill -9) still has every resource."""

from __future__ import annotations

import sqlite3

import pytest

from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_resources_survive_restart(tmp_path, kill):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm = server.client("sagemaker")
        arn = sm.create_model(ModelName="keep-me", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"},
                              Tags=[{"Key": "k", "Value": "v"}])["ModelArn"]
        sm.create_endpoint_config(EndpointConfigName="keep-cfg", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "keep-me", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}])
        before = sm.describe_model(ModelName="keep-me")
        server.stop(kill=kill)
        server.start()
        sm = server.client("sagemaker")
        after = sm.describe_model(ModelName="keep-me")
        assert after["CreationTime"] == before["CreationTime"] and after["ModelArn"] == arn
        assert sm.describe_endpoint_config(EndpointConfigName="keep-cfg")["ProductionVariants"][0][
            "ModelName"] == "keep-me"
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    with sqlite3.connect(tmp_path / "emulator.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_newer_schema_is_refused(tmp_path):
    with EmulatorServer(data_dir=tmp_path):
        pass
    with sqlite3.connect(tmp_path / "emulator.db") as db:
        db.execute("UPDATE schema_info SET value = '999' WHERE key = 'version'")
    server = EmulatorServer(data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="newer sagemaker-emulator"):
        server.start(timeout=30)
    server.close()
