"""The CloudWatch Logs store: what job runners append to and the Logs API reads.

`append` is called from container log threads; each call is one short transaction with a bulk
insert, so thousands of lines per second cost a few writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from peewee import IntegrityError, fn

from .database import database_proxy as db
from .log_models import LogEvent, LogGroup, LogStream


def now_ms() -> int:
    return int(time.time() * 1000)


class AlreadyExists(Exception):
    pass


def get_group(region: str, name: str) -> LogGroup | None:
    return LogGroup.get_or_none((LogGroup.region == region) & (LogGroup.name == name))


def get_stream(group: LogGroup, name: str) -> LogStream | None:
    return LogStream.get_or_none((LogStream.group == group) & (LogStream.name == name))


def create_group(region: str, name: str) -> LogGroup:
    try:
        return LogGroup.create(region=region, name=name, creation_time=now_ms())
    except IntegrityError as exc:
        raise AlreadyExists(name) from exc


def create_stream(group: LogGroup, name: str) -> LogStream:
    try:
        return LogStream.create(group=group, name=name, creation_time=now_ms())
    except IntegrityError as exc:
        raise AlreadyExists(name) from exc


def ensure_group(region: str, name: str) -> LogGroup:
    # IMMEDIATE: a deferred read-then-write transaction cannot wait for the lock when it upgrades
    # (SQLite answers "database is locked" at once), so take the write lock up front.
    with db.atomic("IMMEDIATE"):
        group = get_group(region, name)
        if group is None:
            LogGroup.insert(region=region, name=name, creation_time=now_ms()).on_conflict_ignore().execute()
            group = get_group(region, name)
        assert group is not None  # inserted above, or by a racing writer
        return group


def ensure_stream(region: str, group_name: str, name: str) -> LogStream:
    group = ensure_group(region, group_name)
    with db.atomic("IMMEDIATE"):
        stream = get_stream(group, name)
        if stream is None:
            LogStream.insert(group=group, name=name, creation_time=now_ms()).on_conflict_ignore().execute()
            stream = get_stream(group, name)
        assert stream is not None  # inserted above, or by a racing writer
        return stream


_INSERT_EVENTS = (f'INSERT INTO "{LogEvent._meta.table_name}" ("{LogEvent.stream.column_name}", "timestamp", '
                  '"ingestion_time", "message") VALUES (?, ?, ?, ?)')


def append(region: str, group_name: str, stream_name: str, events: Iterable[tuple[int, str]]) -> int:
    """Store events `(timestamp_ms, message)` in order; creates the group and stream if missing."""
    events = list(events)
    if not events:
        return 0
    stream = ensure_stream(region, group_name, stream_name)
    ingested = now_ms()
    rows = [(stream.id, ts, ingested, msg) for ts, msg in events]
    with db.atomic():
        # executemany, not peewee's insert_many: building the SQL per row cost more than SQLite's insert
        db.cursor().executemany(_INSERT_EVENTS, rows)
        stamps = [ts for ts, _ in events]
        size = sum(len(msg.encode()) for _, msg in events)
        LogStream.update(
            first_event_timestamp=fn.COALESCE(LogStream.first_event_timestamp, min(stamps)),
            last_event_timestamp=fn.MAX(fn.COALESCE(LogStream.last_event_timestamp, 0), max(stamps)),
            last_ingestion_time=ingested, stored_bytes=LogStream.stored_bytes + size,
        ).where(LogStream.id == stream.id).execute()
    return len(rows)


def last_event_times(region: str, group_name: str, prefix: str) -> dict[str, float]:
    """Last event time (epoch s) of each stream `<prefix><host>-<epoch>`, keyed by host (`algo-1`)."""
    group = get_group(region, group_name)
    if group is None:
        return {}
    out: dict[str, float] = {}
    for stream in LogStream.select().where((LogStream.group == group) & LogStream.name.startswith(prefix)):
        host = stream.name[len(prefix):].rsplit("-", 1)[0]
        if stream.last_event_timestamp is not None:
            out[host] = max(out.get(host, 0), stream.last_event_timestamp / 1000)
    return out
