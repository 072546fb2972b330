"""Feature definitions and records as AWS checks them (CreateFeatureGroup, UpdateFeatureGroup, PutRecord).

botocore's shapes already enforce the name patterns, the enums and the counts (1-2,500 definitions,
1-100 additions); this module adds what the documentation states and the shapes cannot say: the
reserved names, unique names, the record identifier and event time features (which must exist,
are never collections, event time String or Fractional), collection types only on the InMemory
tier, Vector only Fractional with a dimension, and a record's values against their types.
"""

from __future__ import annotations

import math
import re
from calendar import timegm
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError

RESERVED = ("is_deleted", "write_time", "api_invocation_time")  # the offline store's own columns
INT64 = (-(2**63), 2**63 - 1)
TTL_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}
# EventTime as a String: yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ (the API reference)
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?Z$")


def _check_one(definition: dict[str, Any], storage_type: str | None) -> None:
    name, kind, collection = definition["FeatureName"], definition["FeatureType"], definition.get("CollectionType")
    if name.lower() in RESERVED:
        raise ValidationError(f"The feature name {name} is reserved: feature names cannot be any of "
                              f"{', '.join(RESERVED)}.")
    config = definition.get("CollectionConfig")
    if collection and storage_type != "InMemory":
        raise ValidationError(f"Feature {name} has CollectionType {collection}: collection types are only "
                              "supported by an online store with StorageType InMemory.")
    if collection == "Vector":
        if kind != "Fractional":
            raise ValidationError(f"Feature {name} is a Vector: its FeatureType must be Fractional.")
        if not (config or {}).get("VectorConfig"):
            raise ValidationError(f"Feature {name} is a Vector: CollectionConfig.VectorConfig.Dimension is required.")
    elif config:
        raise ValidationError(f"Feature {name} has a CollectionConfig: it is only valid with CollectionType Vector.")


def check_definitions(params: dict[str, Any]) -> None:
    """CreateFeatureGroup's rules on FeatureDefinitions, RecordIdentifierFeatureName and EventTimeFeatureName."""
    storage_type = _storage_type(params.get("OnlineStoreConfig"))
    definitions = params["FeatureDefinitions"]
    seen: set[str] = set()
    for definition in definitions:
        _check_one(definition, storage_type)
        key = definition["FeatureName"].lower()  # offline columns are case-insensitive (Glue, Athena)
        if key in seen:
            raise ValidationError(f"The feature name {definition['FeatureName']} is defined more than once "
                                  "(feature names are compared case-insensitively).")
        seen.add(key)
    by_name = {d["FeatureName"]: d for d in definitions}
    for member, noun in (("RecordIdentifierFeatureName", "record identifier"), ("EventTimeFeatureName", "event time")):
        name = params[member]
        if name not in by_name:
            raise ValidationError(f"The {noun} feature name {name} ({member}) must be one of the FeatureDefinitions.")
        if by_name[name].get("CollectionType"):
            raise ValidationError(f"The {noun} feature {name} cannot have a CollectionType.")
    event = by_name[params["EventTimeFeatureName"]]
    if event["FeatureType"] not in ("String", "Fractional"):
        raise ValidationError(f"The event time feature {event['FeatureName']} must be of FeatureType String or "
                              f"Fractional, not {event['FeatureType']}.")


def check_additions(document: dict[str, Any], additions: list[dict[str, Any]]) -> None:
    """UpdateFeatureGroup's FeatureAdditions: new, unique, not reserved, within 2,500 in all."""
    storage_type = _storage_type(document.get("OnlineStoreConfig"))
    seen = {d["FeatureName"].lower() for d in document["FeatureDefinitions"]}
    for definition in additions:
        _check_one(definition, storage_type)
        key = definition["FeatureName"].lower()
        if key in seen:
            raise ValidationError(f"The feature {definition['FeatureName']} already exists in feature group "
                                  f"{document['FeatureGroupName']} (or is added twice).")
        seen.add(key)
    if len(seen) > 2500:
        raise ValidationError(f"A feature group can have at most 2500 features; this update would make {len(seen)}.")


def _storage_type(online: dict[str, Any] | None) -> str | None:
    if not online or not online.get("EnableOnlineStore"):
        return None
    return online.get("StorageType") or "Standard"


def event_seconds(value: str, feature_type: str, name: str) -> float:
    """An EventTime value as Unix seconds: a Fractional is seconds already, a String is ISO-8601."""
    if feature_type == "Fractional":
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            raise ValidationError(f"The event time feature {name} is Fractional: its value {value!r} must be a "
                                  "Unix timestamp in seconds.")
        return seconds
    match = _ISO.match(value)
    if match is None:
        raise ValidationError(f"The event time feature {name} value {value!r} is not in a supported format: "
                              "yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ.")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise ValidationError(f"The event time feature {name} value {value!r} is not a valid date and time.") from None
    return timegm((year, month, day, hour, minute, second)) + int(match.group(7) or 0) / 1000


def _scalar_ok(value: str, feature_type: str) -> bool:
    if feature_type == "String":
        return True
    if feature_type == "Integral":
        try:
            number = int(value.strip())
        except ValueError:
            return False
        return INT64[0] <= number <= INT64[1]
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def check_record(definitions: dict[str, dict[str, Any]], record: list[dict[str, Any]], group: str) -> None:
    """Every value names a defined feature once, is a list exactly for collection features, and parses as its type."""
    seen: set[str] = set()
    for value in record:
        name = value["FeatureName"]
        definition = definitions.get(name)
        if definition is None:
            raise ValidationError(f"The feature {name} is not defined in feature group {group}.")
        if name in seen:
            raise ValidationError(f"The feature {name} appears more than once in the record.")
        seen.add(name)
        collection = definition.get("CollectionType")
        scalar, items = value.get("ValueAsString"), value.get("ValueAsStringList")
        if (scalar is None) == (items is None):
            raise ValidationError(f"The feature {name} needs exactly one of ValueAsString and ValueAsStringList.")
        if collection and items is None:
            raise ValidationError(f"The feature {name} is a {collection}: its value must be a ValueAsStringList.")
        if not collection and scalar is None:
            raise ValidationError(f"The feature {name} is not a collection: its value must be a ValueAsString.")
        kind = definition["FeatureType"]
        given: list[str] = items if items is not None else [str(scalar)]
        for item in given:
            if not _scalar_ok(item, kind):
                raise ValidationError(f"The value {item!r} of feature {name} is not a valid {kind}.")
        if collection == "Set" and len(set(given)) != len(given):
            raise ValidationError(f"The feature {name} is a Set: its values must be unique.")
        if collection == "Vector":
            dimension = definition["CollectionConfig"]["VectorConfig"]["Dimension"]
            if len(given) != dimension:
                raise ValidationError(f"The feature {name} is a Vector of dimension {dimension}: "
                                      f"{len(given)} values were given.")


def ttl_seconds(ttl: dict[str, Any] | None) -> float | None:
    """A TtlDuration as seconds (None when unset, or set with neither Unit nor Value: no expiry)."""
    if not ttl or ttl.get("Unit") is None or ttl.get("Value") is None:
        return None
    return float(TTL_SECONDS[ttl["Unit"]] * ttl["Value"])


def iso_time(seconds: float) -> str:
    """What ExpiresAt looks like: ISO-8601 UTC with milliseconds (2024-05-01T12:00:00.000Z)."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
