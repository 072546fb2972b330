"""The SQLite database: one file in the data dir, opened with settings safe for many threads.

WAL lets readers proceed while a job thread writes; the busy timeout turns lock contention into
waiting instead of `database is locked`; foreign keys make tag rows die with their resource.
A schema version row lets a newer emulator open (and migrate) a database an older one wrote.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from peewee import DatabaseProxy, SqliteDatabase

log = logging.getLogger(__name__)

database_proxy = DatabaseProxy()

SCHEMA_VERSION = 1

# Migrations from version N to N+1, in order; each receives the open database.
MIGRATIONS: dict[int, Callable[[SqliteDatabase], None]] = {}


def open_database(data_dir: str | os.PathLike) -> SqliteDatabase:
    """Open (creating or migrating as needed) `<data_dir>/emulator.db` and bind the models to it."""
    from . import models  # noqa: F401  (registers every model on the proxy)

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
    from .models import ALL_MODELS, SchemaInfo

    with db.atomic("IMMEDIATE"):
        db.create_tables([SchemaInfo])
        row = SchemaInfo.get_or_none(SchemaInfo.key == "version")
        current = int(row.value) if row else 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database was written by a newer sagemaker-emulator (schema {current}, "
                f"this one knows {SCHEMA_VERSION}); upgrade the emulator or use another --data-dir")
        if current == 0:
            db.create_tables(ALL_MODELS)
        else:
            for version in range(current, SCHEMA_VERSION):
                log.info("migrating database schema %d -> %d", version, version + 1)
                MIGRATIONS[version](db)
            db.create_tables(ALL_MODELS)  # tables added since, if any
        SchemaInfo.replace(key="version", value=str(SCHEMA_VERSION)).execute()
