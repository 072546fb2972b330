"""sagemaker-featurestore-runtime (rest-json): PutRecord, GetRecord, DeleteRecord, BatchGetRecord.

The online store keeps the latest record per identifier by event time (an older put is historic:
offline only); a SoftDelete keeps a marker that hides the record until a newer put, a HardDelete
removes it (and is refused for an event time older than the stored record's); TtlDuration makes a
record expire at EventTime + TTL. Every put and delete that reaches the offline store becomes a
pending row the flusher writes as Parquet (emulator/feature_store/offline.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

from sagemaker_emulator.feature_store import GroupView
from sagemaker_emulator.feature_store import definitions as checks
from sagemaker_emulator.protocol.errors import AwsError, ResourceNotFound
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import feature_records

ONLINE, OFFLINE = "OnlineStore", "OfflineStore"


def _invalid(message: str) -> AwsError:
    return AwsError(message, code="ValidationError")


def _group(ctx: RequestContext, value: str) -> GroupView:
    view = ctx.services.feature_store.group(ctx.region, value)
    if view is None:
        name = value.rsplit("/", 1)[-1]
        raise ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}")
    status = view.current_status()
    if status != "Created":
        raise _invalid(f"Feature group {view.name} is in status {status}; records can be read and written once "
                       "it is Created.")
    return view


def _targets(view: GroupView, given: list[str] | None) -> set[str]:
    enabled = {store for store, on in ((ONLINE, view.online), (OFFLINE, view.offline)) if on}
    if not given:
        return enabled
    for store in given:
        if store not in enabled:
            raise _invalid(f"The {store} of feature group {view.name} is not enabled: it cannot be a target store.")
    return set(given)


def _checked(check: Any, *args: Any) -> Any:
    """definitions' ValidationException as the runtime's ValidationError."""
    try:
        return check(*args)
    except AwsError as err:
        raise _invalid(err.message) from None


def put_record(ctx: RequestContext, params: dict[str, Any]) -> None:
    view = _group(ctx, params["FeatureGroupName"])
    record = params["Record"]
    _checked(checks.check_record, view.definitions, record, view.name)
    values = {v["FeatureName"]: v.get("ValueAsString", v.get("ValueAsStringList")) for v in record}
    for name, noun in ((view.record_id, "record identifier"), (view.event_time, "event time")):
        if values.get(name) is None:
            raise _invalid(f"The record is missing its {noun} feature {name}.")
    event = _checked(checks.event_seconds, values[view.event_time], view.event_type, view.event_time)
    stores = _targets(view, params.get("TargetStores"))
    if params.get("TtlDuration") and ONLINE not in stores:
        raise _invalid("TtlDuration applies to the OnlineStore, which is not a target of this PutRecord.")
    ttl = checks.ttl_seconds(params.get("TtlDuration")) or view.ttl
    offline = ({"values": values, "event_time": event, "api_invocation_time": time.time(), "is_deleted": False}
               if OFFLINE in stores else None)
    feature_records.put(view.arn, str(values[view.record_id]), event, record, event + ttl if ttl else None,
                        online=ONLINE in stores, offline=offline)


def _online(view: GroupView) -> None:
    if not view.online:
        raise _invalid(f"The OnlineStore of feature group {view.name} is not enabled: records are read from "
                       "the online store only.")


def _check_names(view: GroupView, names: list[str] | None) -> None:
    for name in names or []:
        if name not in view.definitions:
            raise _invalid(f"The feature {name} is not defined in feature group {view.name}.")


def _served(row: feature_records.Stored | None, names: list[str] | None, now: float) -> list[dict] | None:
    """The stored record as GetRecord answers it, or None (absent, soft deleted or expired)."""
    if row is None or row.deleted or (row.expires_at is not None and row.expires_at <= now):
        return None
    record = json.loads(row.data)
    if names:
        wanted = set(names)
        record = [value for value in record if value["FeatureName"] in wanted]
    return record


def get_record(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    view = _group(ctx, params["FeatureGroupName"])
    _online(view)
    names = params.get("FeatureNames")
    _check_names(view, names)
    row = feature_records.get(view.arn, params["RecordIdentifierValueAsString"])
    record = _served(row, names, time.time())
    if record is None:
        return {}  # AWS: no record is an empty answer, not an error
    out: dict[str, Any] = {"Record": record}
    if params.get("ExpirationTimeResponse") == "Enabled" and row is not None and row.expires_at is not None:
        out["ExpiresAt"] = checks.iso_time(row.expires_at)
    return out


def delete_record(ctx: RequestContext, params: dict[str, Any]) -> None:
    view = _group(ctx, params["FeatureGroupName"])
    record_id, when = params["RecordIdentifierValueAsString"], params["EventTime"]
    event = _checked(checks.event_seconds, when, view.event_type, view.event_time)
    stores = _targets(view, params.get("TargetStores"))
    hard = params.get("DeletionMode") == "HardDelete"
    if ONLINE in stores:
        current = feature_records.get(view.arn, record_id)
        if hard:
            if current is not None and current.event_time > event:
                raise _invalid(f"EventTime {when} is older than the EventTime of the record {record_id} in the "
                               "OnlineStore: HardDelete needs a later EventTime.")
            feature_records.hard_delete(view.arn, record_id)
        else:
            feature_records.soft_delete(view.arn, record_id, event)
    if OFFLINE in stores:  # the deleted-record marker: identifier and event time, other features null
        feature_records.enqueue_offline(view.arn, {
            "values": {view.record_id: record_id, view.event_time: when}, "event_time": event,
            "api_invocation_time": time.time(), "is_deleted": True})


def batch_get_record(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    expiry = params.get("ExpirationTimeResponse") == "Enabled"
    now = time.time()
    for identifier in params["Identifiers"]:
        group_name, ids = identifier["FeatureGroupName"], identifier["RecordIdentifiersValueAsString"]
        names = identifier.get("FeatureNames")
        try:
            view = _group(ctx, group_name)
            _online(view)
            _check_names(view, names)
        except AwsError as err:
            errors += [{"FeatureGroupName": group_name, "RecordIdentifierValueAsString": record_id,
                        "ErrorCode": err.code, "ErrorMessage": err.message} for record_id in ids]
            continue
        rows = feature_records.get_many(view.arn, ids)
        for record_id in dict.fromkeys(ids):
            row = rows.get(record_id)
            record = _served(row, names, now)
            if record is None:
                continue
            detail: dict[str, Any] = {"FeatureGroupName": group_name, "RecordIdentifierValueAsString": record_id,
                                      "Record": record}
            if expiry and row is not None and row.expires_at is not None:
                detail["ExpiresAt"] = checks.iso_time(row.expires_at)
            records.append(detail)
    return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}
