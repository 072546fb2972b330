"""The SQLite database: one file in the data dir, opened with settings safe for many threads.

WAL lets readers proceed while a job thread writes; the busy timeout turns lock contention into
waiting instead of `database is locked`; foreign keys make tag rows die with their resource.
A schema version row lets a newer emulator open (and migrate) a database an older one wrote.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from peewee import DatabaseProxy, SqliteDatabase

log = logging.getLogger(__name__)

database_proxy = DatabaseProxy()

SCHEMA_VERSION = 2


def _v1_to_v2(db: SqliteDatabase) -> None:
    """Version 2: parent/child relations between resources (models.Relation), indexed both ways.

    The DDL is written out rather than taken from the model, so this step keeps producing exactly
    what version 2 was even after the model changes again (a later change is a later migration).
    """
    db.execute_sql(
        'CREATE TABLE "relation" ("id" INTEGER NOT NULL PRIMARY KEY, "parent_id" INTEGER NOT NULL, '
        '"child_id" INTEGER NOT NULL, "kind" VARCHAR(255) NOT NULL, '
        'FOREIGN KEY ("parent_id") REFERENCES "resource" ("id") ON DELETE CASCADE, '
        'FOREIGN KEY ("child_id") REFERENCES "resource" ("id") ON DELETE CASCADE)')
    db.execute_sql('CREATE UNIQUE INDEX "relation_parent_id_kind_child_id" ON "relation" '
                   '("parent_id", "kind", "child_id")')
    db.execute_sql('CREATE INDEX "relation_child_id_kind" ON "relation" ("child_id", "kind")')


# Migrations from version N to N+1, in order; each receives the open database (inside the
# transaction that also records the new version, so a failed step changes nothing).
MIGRATIONS: dict[int, Callable[[SqliteDatabase], None]] = {1: _v1_to_v2}


def open_database(data_dir: str | os.PathLike) -> SqliteDatabase:
    """Open (creating or migrating as needed) `<data_dir>/emulator.db` and bind the models to it."""
    from . import log_models, models  # noqa: F401  (registers every model on the proxy)

    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(
        str(path / "emulator.db"),
        timeout=30,
        check_same_thread=False,
        pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",
            "foreign_keys": 1,
            "busy_timeout": 30000,
        },
    )
    database_proxy.initialize(db)
    db.connect(reuse_if_open=True)
    _migrate(db)
    return db


def _migrate(db: SqliteDatabase) -> None:
    from .log_models import LOG_MODELS
    from .models import RESOURCE_MODELS, SchemaInfo

    all_models = [*RESOURCE_MODELS, *LOG_MODELS]

    with db.atomic("IMMEDIATE"):
        db.create_tables([SchemaInfo])
        row = SchemaInfo.get_or_none(SchemaInfo.key == "version")
        current = int(row.value) if row else 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database was written by a newer sagemaker-emulator (schema {current}, "
                f"this one knows {SCHEMA_VERSION}); upgrade the emulator or use another --data-dir")
        if current == 0:
            db.create_tables(all_models)
        else:
            for version in range(current, SCHEMA_VERSION):
                log.info("migrating database schema %d -> %d", version, version + 1)
                MIGRATIONS[version](db)
            db.create_tables(all_models)  # tables added since, if any
        SchemaInfo.replace(key="version", value=str(SCHEMA_VERSION)).execute()
        # when this data dir was first opened: the "account's" own resources (a default catalog) date from it
        SchemaInfo.get_or_create(key="created", defaults={"value": repr(time.time())})


def created_time() -> float:
    """When the data dir was first opened (older data dirs: the first start of a version that records it)."""
    from .models import SchemaInfo

    row = SchemaInfo.get_or_none(SchemaInfo.key == "created")
    return float(row.value) if row is not None else time.time()
