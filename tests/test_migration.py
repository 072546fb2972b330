"""Schema migration v1 -> v2 on a data dir the previous code really wrote (tests/data/README.md)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from sagemaker_emulator.storage import database, logs, resources
from sagemaker_emulator.storage.database import SCHEMA_VERSION, open_database

V1_DB = Path(__file__).resolve().parent / "data" / "v1-datadir" / "emulator.db"
RELATION = "tuning-job/training-job"


@pytest.fixture
def v1_dir(tmp_path: Path) -> Path:
    shutil.copyfile(V1_DB, tmp_path / "emulator.db")
    return tmp_path


def snapshot(path: Path) -> dict:
    """Every row of the v1 tables, read with plain sqlite3 (no model code involved)."""
    with sqlite3.connect(path) as db:
        return {table: sorted(db.execute(f'SELECT * FROM "{table}"').fetchall())
                for table in ("resource", "tag", "log_group", "log_stream", "log_event")}


def schema(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return {name: sql for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != 'schema_info'")}


def version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()[0])


def test_fixture_is_version_1():
    assert version(V1_DB) == 1
    assert "relation" not in schema(V1_DB)


def test_v1_data_dir_opens_migrated(v1_dir: Path, tmp_path_factory):
    before = snapshot(v1_dir / "emulator.db")
    assert len(before["resource"]) == 3 and len(before["tag"]) == 4 and len(before["log_event"]) == 3
    db = open_database(v1_dir)
    try:
        assert version(v1_dir / "emulator.db") == SCHEMA_VERSION == 2
        assert snapshot(v1_dir / "emulator.db") == before  # every row survives, unchanged

        # the old rows read through today's code
        model = resources.get("model", "us-east-1", "v1-model")
        assert model.document["PrimaryContainer"] == {"Image": "my-serve:latest", "Environment": {"A": "1"}}
        assert resources.tags_of(model) == [{"Key": "team", "Value": "ml"}, {"Key": "stage", "Value": "v1"}]
        config = resources.get("endpoint-config", "us-east-1", "v1-config")
        assert config.document["ProductionVariants"][0]["ModelName"] == "v1-model"
        job = resources.get("training-job", "us-east-1", "v1-training-job")
        assert (job.status, job.document["TrainingJobStatus"]) == ("Completed", "Completed")
        assert resources.tags_of(job) == [{"Key": "owner", "Value": "fixture"}]
        group = logs.get_group("us-east-1", "/aws/sagemaker/TrainingJobs")
        stream = logs.get_stream(group, "v1-training-job/algo-1-1767225600")
        assert [e.message for e in stream.events.order_by(logs.LogEvent.id)] == ["epoch 0", "epoch 1", "epoch 2"]

        # the new index exists and the children query uses it
        assert "relation_parent_id_kind_child_id" in schema(v1_dir / "emulator.db")
        tuning = resources.create("hyper-parameter-tuning-job", "us-east-1", "v2-tuning",
                                  "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/v2-tuning",
                                  {"HyperParameterTuningJobName": "v2-tuning"}, status="InProgress")
        sql, params = resources.children_query(tuning, RELATION).sql()
        plan = " ".join(row[-1] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        assert "USING COVERING INDEX relation_parent_id_kind_child_id" in plan, plan
        assert "SCAN" not in plan, plan

        # writes work: relations, new resources, tags, log events; cascades reach the new table
        resources.relate(tuning, job, RELATION)
        resources.relate(tuning, job, RELATION)  # idempotent
        assert [r.name for r in resources.children(tuning, RELATION)] == ["v1-training-job"]
        assert resources.parent_of(job, RELATION).name == "v2-tuning"
        resources.put_tags(model, [{"Key": "team", "Value": "platform"}])
        assert resources.tags_of(model)[0] == {"Key": "team", "Value": "platform"}
        assert logs.append("us-east-1", "/aws/sagemaker/TrainingJobs", "v1-training-job/algo-1-1767225600",
                           [(logs.now_ms(), "after the migration")]) == 1
        resources.delete(job)
        assert resources.children(tuning, RELATION) == []
        assert resources.statuses([tuning.arn.upper(), job.arn]) == {tuning.arn.upper(): "InProgress"}
    finally:
        db.close()

    # a migrated database has exactly the schema a fresh one gets
    fresh = tmp_path_factory.mktemp("fresh")
    open_database(fresh).close()
    assert schema(v1_dir / "emulator.db") == schema(fresh / "emulator.db")
    # and opening it again is a no-op
    open_database(v1_dir).close()
    assert version(v1_dir / "emulator.db") == 2


def test_failed_migration_changes_nothing(v1_dir: Path, monkeypatch):
    before = schema(v1_dir / "emulator.db")

    def half_done(db) -> None:
        database._v1_to_v2(db)
        raise RuntimeError("disk full, say")

    monkeypatch.setitem(database.MIGRATIONS, 1, half_done)
    with pytest.raises(RuntimeError, match="disk full"):
        open_database(v1_dir).close()
    database.database_proxy.obj.close()
    assert version(v1_dir / "emulator.db") == 1
    assert schema(v1_dir / "emulator.db") == before


def test_newer_schema_is_refused(tmp_path: Path):
    open_database(tmp_path).close()
    with sqlite3.connect(tmp_path / "emulator.db") as db:
        db.execute("UPDATE schema_info SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(RuntimeError, match=f"newer sagemaker-emulator \\(schema {SCHEMA_VERSION + 1}"):
        open_database(tmp_path)
    database.database_proxy.obj.close()
    assert json.dumps(schema(tmp_path / "emulator.db"))  # still readable, untouched by the refusal
