"""Feature Store's records: the online store and the offline store's outbox, in their own SQLite file.

`<data_dir>/featurestore.db` rather than emulator.db: PutRecord is a hot write path, and its own
file gives it its own write lock (a job thread updating a resource row never delays a put) and its
own schema, so Feature Store needs no migration of the resource database.

* `online_record`: one row per (feature group ARN, record identifier): the latest record by event
  time, as the FeatureValue list GetRecord answers, its event time as seconds (for the "is this one
  newer" comparison), its expiry (TtlDuration) and a soft-delete marker.
* `offline_pending`: what the offline store still has to write to S3 (one row per put or delete,
  with AWS's extra columns); the flusher (feature_store/offline.py) turns them into Parquet files and
  removes them only once the upload succeeded, so a crash loses nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    FloatField,
    Model,
    SqliteDatabase,
    TextField,
)

feature_db = DatabaseProxy()


class _Base(Model):
    class Meta:
        database = feature_db


class OnlineRecord(_Base):
    group = CharField()  # the feature group's ARN
    record_id = TextField()
    event_time = FloatField()
    expires_at = FloatField(null=True)
    deleted = BooleanField(default=False)  # SoftDelete: kept (with the delete's event time), never served
    data = TextField()  # JSON: the record's FeatureValue list, in the order it was put

    class Meta:
        table_name = "online_record"
        primary_key = CompositeKey("group", "record_id")
        without_rowid = True


class OfflinePending(_Base):
    id = AutoField()
    group = CharField()
    data = TextField()  # JSON: {feature: value, ..., "api_invocation_time": s, "is_deleted": bool}

    class Meta:
        table_name = "offline_pending"
        indexes = ((("group", "id"), False),)


def open_feature_database(data_dir: str | os.PathLike) -> SqliteDatabase:
    """Open (creating if needed) `<data_dir>/featurestore.db` and bind the record models to it."""
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(str(path / "featurestore.db"), timeout=30, check_same_thread=False,
                        pragmas={"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 30000})
    feature_db.initialize(db)
    db.connect(reuse_if_open=True)
    db.create_tables([OnlineRecord, OfflinePending])
    return db


class Stored(NamedTuple):
    """An online record as read on the hot path (a plain row, not a model instance)."""

    record_id: str
    event_time: float
    expires_at: float | None
    deleted: bool
    data: str


# The hot path's statements are written out: peewee's query building costs several times the
# SQLite lookup itself, and the sqlite3 module caches a prepared statement per SQL text.
_GET = 'SELECT record_id, event_time, expires_at, deleted, data FROM online_record WHERE "group" = ? AND record_id = ?'
_UPSERT = ('INSERT INTO online_record ("group", record_id, event_time, expires_at, deleted, data) '
           "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (\"group\", record_id) DO UPDATE SET "
           "event_time = excluded.event_time, expires_at = excluded.expires_at, deleted = 0, data = excluded.data "
           "WHERE excluded.event_time >= online_record.event_time")
_ENQUEUE = 'INSERT INTO offline_pending ("group", data) VALUES (?, ?)'


def get(group: str, record_id: str) -> Stored | None:
    row = feature_db.execute_sql(_GET, (group, record_id)).fetchone()
    return Stored(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None


def get_many(group: str, record_ids: Iterable[str]) -> dict[str, Stored]:
    out: dict[str, Stored] = {}
    for record_id in dict.fromkeys(record_ids):
        row = get(group, record_id)
        if row is not None:
            out[record_id] = row
    return out


def put(group: str, record_id: str, event_time: float, values: list[dict[str, Any]], expires_at: float | None,
        *, online: bool, offline: dict[str, Any] | None) -> None:
    """Write one record: to the online store when `online` and it is not older than the stored one
    (an older record is historic: offline only, as AWS does; the upsert's WHERE decides), and
    `offline` (a row) to the outbox. One transaction: both or neither."""
    with feature_db.atomic():
        if online:
            feature_db.execute_sql(_UPSERT, (group, record_id, event_time, expires_at, json.dumps(values)))
        if offline is not None:
            feature_db.execute_sql(_ENQUEUE, (group, json.dumps(offline)))


def soft_delete(group: str, record_id: str, event_time: float) -> None:
    """Mark the record deleted as of `event_time` if that is not older than the stored record."""
    (OnlineRecord.update(deleted=True, event_time=event_time, data="[]", expires_at=None)
     .where((OnlineRecord.group == group) & (OnlineRecord.record_id == record_id)
            & (OnlineRecord.event_time <= event_time)).execute())


def hard_delete(group: str, record_id: str) -> None:
    OnlineRecord.delete().where((OnlineRecord.group == group) & (OnlineRecord.record_id == record_id)).execute()


def enqueue_offline(group: str, row: dict[str, Any]) -> None:
    feature_db.execute_sql(_ENQUEUE, (group, json.dumps(row)))


def drop_group(group: str) -> None:
    """DeleteFeatureGroup: the online store's records go (the offline store's outbox stays: AWS keeps
    what was written to the offline store, and what was accepted before the delete is still written)."""
    OnlineRecord.delete().where(OnlineRecord.group == group).execute()


def clear_all() -> None:
    """`POST /_emulator/reset`: every group's online records and offline outbox go (their groups do)."""
    with feature_db.atomic():
        OnlineRecord.delete().execute()
        OfflinePending.delete().execute()


def pending_groups() -> list[str]:
    return [row.group for row in OfflinePending.select(OfflinePending.group).distinct()]


def pending(group: str, limit: int) -> list[tuple[int, dict[str, Any]]]:
    rows = (OfflinePending.select().where(OfflinePending.group == group).order_by(OfflinePending.id).limit(limit))
    return [(row.id, json.loads(row.data)) for row in rows]


def remove_pending(ids: list[int]) -> None:
    for start in range(0, len(ids), 500):
        OfflinePending.delete().where(OfflinePending.id.in_(ids[start:start + 500])).execute()


def remove_expired(now: float) -> int:
    """TtlDuration: records past their ExpiresAt are hard deleted."""
    return OnlineRecord.delete().where(OnlineRecord.expires_at <= now).execute()
