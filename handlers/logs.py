"""CloudWatch Logs (`Logs_20140328.*`): groups, streams, PutLogEvents, GetLogEvents, FilterLogEvents.

GetLogEvents tokens are `f/<timestamp>/<id>` and `b/<timestamp>/<id>`: positions, not offsets, so a
tail that reached the end sees lines appended later on its next call, and at the end of a stream
a forward call returns no events and the very token it was given (the SDK's tailer relies on it).
"""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

from peewee import Tuple

from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import logs
from sagemaker_emulator.storage.log_models import LogEvent, LogGroup, LogStream


def _error(code: str, message: str) -> AwsError:
    return AwsError(message, code=code)


def _group(ctx: RequestContext, params: dict[str, Any]) -> LogGroup:
    name = params.get("logGroupName") or (params.get("logGroupIdentifier") or "").rsplit(":log-group:", 1)[-1]
    group = logs.get_group(ctx.region, name)
    if group is None:
        raise _error("ResourceNotFoundException", "The specified log group does not exist.")
    return group


def _stream(group: LogGroup, name: str) -> LogStream:
    stream = logs.get_stream(group, name)
    if stream is None:
        raise _error("ResourceNotFoundException", "The specified log stream does not exist.")
    return stream


def _arn(ctx: RequestContext, group: str) -> str:
    return f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{group}"


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError:
        raise _error("InvalidParameterException", "The specified nextToken is invalid.") from None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def create_log_group(ctx: RequestContext, params: dict[str, Any]) -> None:
    try:
        logs.create_group(ctx.region, params["logGroupName"])
    except logs.AlreadyExists:
        raise _error("ResourceAlreadyExistsException", "The specified log group already exists") from None


def delete_log_group(ctx: RequestContext, params: dict[str, Any]) -> None:
    _group(ctx, params).delete_instance()


def describe_log_groups(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    query = LogGroup.select().where(LogGroup.region == ctx.region)
    if params.get("logGroupNamePrefix"):
        query = query.where(LogGroup.name.startswith(params["logGroupNamePrefix"]))
    if params.get("logGroupNamePattern"):
        query = query.where(LogGroup.name.contains(params["logGroupNamePattern"]))
    limit, start = params.get("limit") or 50, _offset(params.get("nextToken"))
    rows = list(query.order_by(LogGroup.name).offset(start).limit(limit + 1))
    out: dict[str, Any] = {"logGroups": [{
        "logGroupName": g.name, "creationTime": g.creation_time, "retentionInDays": g.retention_days,
        "arn": _arn(ctx, g.name) + ":*", "logGroupArn": _arn(ctx, g.name), "storedBytes": 0,
        "metricFilterCount": 0} for g in rows[:limit]]}
    if len(rows) > limit:
        out["nextToken"] = _token(start + limit)
    return out


def create_log_stream(ctx: RequestContext, params: dict[str, Any]) -> None:
    try:
        logs.create_stream(_group(ctx, params), params["logStreamName"])
    except logs.AlreadyExists:
        raise _error("ResourceAlreadyExistsException", "The specified log stream already exists") from None


def delete_log_stream(ctx: RequestContext, params: dict[str, Any]) -> None:
    _stream(_group(ctx, params), params["logStreamName"]).delete_instance()


def describe_log_streams(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(ctx, params)
    order_by = params.get("orderBy") or "LogStreamName"
    prefix = params.get("logStreamNamePrefix")
    if prefix and order_by == "LastEventTime":
        raise _error("InvalidParameterException",
                     "Cannot order by LastEventTime with a logStreamNamePrefix.")
    query = LogStream.select().where(LogStream.group == group)
    if prefix:
        query = query.where(LogStream.name.startswith(prefix))
    column = LogStream.name if order_by == "LogStreamName" else LogStream.last_event_timestamp
    order = (column.desc(), LogStream.id.desc()) if params.get("descending") else (column.asc(), LogStream.id.asc())
    limit, start = params.get("limit") or 50, _offset(params.get("nextToken"))
    rows = list(query.order_by(*order).offset(start).limit(limit + 1))
    out: dict[str, Any] = {"logStreams": [{
        "logStreamName": s.name, "creationTime": s.creation_time, "firstEventTimestamp": s.first_event_timestamp,
        "lastEventTimestamp": s.last_event_timestamp, "lastIngestionTime": s.last_ingestion_time,
        "uploadSequenceToken": "1", "arn": f"{_arn(ctx, group.name)}:log-stream:{s.name}",
        "storedBytes": s.stored_bytes} for s in rows[:limit]]}
    if len(rows) > limit:
        out["nextToken"] = _token(start + limit)
    return out


MAX_BATCH_BYTES = 1_048_576  # messages in UTF-8 plus EVENT_OVERHEAD each (PutLogEvents quotas)
EVENT_OVERHEAD = 26
MAX_FUTURE_MS = 2 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_SPAN_MS = 24 * 3600 * 1000


def put_log_events(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """AWS's batch rules: in time order, at most 1 MiB, spanning at most 24 h; events over 14 days
    old or more than 2 h ahead are left out and reported in rejectedLogEventsInfo."""
    group = _group(ctx, params)
    _stream(group, params["logStreamName"])
    events = [(e["timestamp"], e["message"]) for e in params["logEvents"]]
    if any(later < earlier for (earlier, _), (later, _) in zip(events, events[1:], strict=False)):
        raise _error("InvalidParameterException",
                     "Log events in a single PutLogEvents request must be in chronological order.")
    size = sum(len(message.encode()) + EVENT_OVERHEAD for _, message in events)
    if size > MAX_BATCH_BYTES:
        raise _error("InvalidParameterException", f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
    now = logs.now_ms()
    first = next((i for i, (ts, _) in enumerate(events) if ts >= now - MAX_AGE_MS), len(events))
    end = next((i for i, (ts, _) in enumerate(events) if ts > now + MAX_FUTURE_MS), len(events))
    accepted = events[first:end]
    if accepted and accepted[-1][0] - accepted[0][0] > MAX_SPAN_MS:
        raise _error("InvalidParameterException",
                     "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
    logs.append(ctx.region, group.name, params["logStreamName"], accepted)
    out: dict[str, Any] = {"nextSequenceToken": str(now)}
    rejected = {}
    if first > 0:
        rejected["tooOldLogEventEndIndex"] = first - 1
    if end < len(events):
        rejected["tooNewLogEventStartIndex"] = end
    if rejected:
        out["rejectedLogEventsInfo"] = rejected
    return out


def _position(token: str) -> tuple[str, int, int]:
    try:
        direction, ts, event_id = token.split("/")
        if direction not in ("f", "b"):
            raise ValueError(direction)
        return direction, int(ts), int(event_id)
    except ValueError:
        raise _error("InvalidParameterException", "The specified nextToken is invalid.") from None


def get_log_events(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    stream = _stream(_group(ctx, params), params["logStreamName"])
    limit = min(params.get("limit") or 10000, 10000)
    query = LogEvent.select().where(LogEvent.stream == stream)
    if params.get("startTime") is not None:
        query = query.where(LogEvent.timestamp >= params["startTime"])
    if params.get("endTime") is not None:
        query = query.where(LogEvent.timestamp < params["endTime"])
    key = Tuple(LogEvent.timestamp, LogEvent.id)
    token = params.get("nextToken")
    forward = bool(params.get("startFromHead"))
    if token:
        direction, ts, event_id = _position(token)
        forward = direction == "f"
        query = query.where(key > Tuple(ts, event_id)) if forward else query.where(key < Tuple(ts, event_id))
    if forward:
        rows = list(query.order_by(LogEvent.timestamp, LogEvent.id).limit(limit))
    else:
        rows = list(query.order_by(LogEvent.timestamp.desc(), LogEvent.id.desc()).limit(limit))[::-1]
    if rows:
        first, last = rows[0], rows[-1]
        nxt_f, nxt_b = f"f/{last.timestamp}/{last.id}", f"b/{first.timestamp}/{first.id}"
    elif token:
        nxt_f = nxt_b = token
    else:
        start = params.get("startTime") or 0
        nxt_f, nxt_b = f"f/{start}/0", f"b/{start}/0"
    return {"events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
                       for e in rows], "nextForwardToken": nxt_f, "nextBackwardToken": nxt_b}


def _matcher(pattern: str | None):
    """Plain terms (all must appear), quoted phrases, and `?term` alternatives (any must appear)."""
    if not pattern or not pattern.strip():
        return lambda message: True
    try:
        terms = shlex.split(pattern)
    except ValueError:
        terms = pattern.split()
    required = [t for t in terms if not t.startswith("?")]
    optional = [t[1:] for t in terms if t.startswith("?") and len(t) > 1]

    def match(message: str) -> bool:
        return all(t in message for t in required) and (not optional or any(t in message for t in optional))

    return match


def filter_log_events(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(ctx, params)
    streams = LogStream.select().where(LogStream.group == group)
    if params.get("logStreamNames"):
        streams = streams.where(LogStream.name.in_(params["logStreamNames"]))
    if params.get("logStreamNamePrefix"):
        streams = streams.where(LogStream.name.startswith(params["logStreamNamePrefix"]))
    names = {s.id: s.name for s in streams}
    query = LogEvent.select().where(LogEvent.stream.in_(list(names)))
    if params.get("startTime") is not None:
        query = query.where(LogEvent.timestamp >= params["startTime"])
    if params.get("endTime") is not None:
        query = query.where(LogEvent.timestamp <= params["endTime"])
    if params.get("nextToken"):
        try:
            ts, event_id = json.loads(base64.urlsafe_b64decode(params["nextToken"].encode()))
        except ValueError:
            raise _error("InvalidParameterException", "The specified nextToken is invalid.") from None
        query = query.where(Tuple(LogEvent.timestamp, LogEvent.id) > Tuple(ts, event_id))
    limit = min(params.get("limit") or 10000, 10000)
    match = _matcher(params.get("filterPattern"))
    found: list[LogEvent] = []
    more = False
    for event in query.order_by(LogEvent.timestamp, LogEvent.id).iterator():
        if match(event.message):
            if len(found) == limit:
                more = True
                break
            found.append(event)
    out: dict[str, Any] = {"events": [{
        "logStreamName": names[e.stream_id], "timestamp": e.timestamp, "message": e.message,
        "ingestionTime": e.ingestion_time, "eventId": str(e.id)} for e in found]}
    if more:
        last = found[-1]
        out["nextToken"] = base64.urlsafe_b64encode(json.dumps([last.timestamp, last.id]).encode()).decode()
    return out
