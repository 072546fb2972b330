"""CloudWatch Logs rows: groups, streams and events (timestamps in epoch milliseconds)."""

from __future__ import annotations

from peewee import AutoField, BigIntegerField, CharField, ForeignKeyField, IntegerField, TextField

from .models import BaseModel


class LogGroup(BaseModel):
    id = AutoField()
    region = CharField()
    name = CharField()
    creation_time = BigIntegerField()
    retention_days = IntegerField(null=True)

    class Meta:
        table_name = "log_group"
        indexes = ((("region", "name"), True),)


class LogStream(BaseModel):
    id = AutoField()
    group = ForeignKeyField(LogGroup, backref="streams", on_delete="CASCADE")
    name = CharField()
    creation_time = BigIntegerField()
    first_event_timestamp = BigIntegerField(null=True)
    last_event_timestamp = BigIntegerField(null=True)
    last_ingestion_time = BigIntegerField(null=True)
    stored_bytes = BigIntegerField(default=0)

    class Meta:
        table_name = "log_stream"
        indexes = ((("group", "name"), True),)


class LogEvent(BaseModel):
    id = AutoField()
    stream = ForeignKeyField(LogStream, backref="events", on_delete="CASCADE")
    stream_id: int  # the raw foreign key peewee sets beside `stream` (read without a join)
    timestamp = BigIntegerField()
    ingestion_time = BigIntegerField()
    message = TextField()

    class Meta:
        table_name = "log_event"
        indexes = ((("stream", "timestamp", "id"), False),)


LOG_MODELS = [LogGroup, LogStream, LogEvent]
