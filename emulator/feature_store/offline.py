"""The offline store: pending records -> Parquet files in S3, under AWS's key layout.

`<S3Uri>/<account>/sagemaker/<region>/offline-store/<group>-<creation epoch>/data/year=YYYY/month=MM/
day=DD/hour=HH/<latest event time in the file, YYYYMMDDTHHMMSSZ>_<16 random alphanumerics>.parquet`,
partitioned by the records' event time (UTC), each row the record's features plus write_time,
api_invocation_time and is_deleted. AWS buffers for up to 15 minutes; the flusher here writes every
few seconds. Files go through the emulator's own S3 (jobs.data.s3_client: the embedded S3, or the
configured S3 endpoint), and a pending row is removed only after its file is stored.
"""

from __future__ import annotations

import io
import logging
import secrets
import string
import time
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator.staging.uris import parse_uri

log = logging.getLogger(__name__)

_ALNUM = string.ascii_letters + string.digits


def resolved_uri(s3_uri: str, account: str, region: str, group: str, created: float) -> str:
    """ResolvedOutputS3Uri: where AWS writes a group's files (S3Uri `https://` forms are kept as given)."""
    return f"{s3_uri.rstrip('/')}/{account}/sagemaker/{region}/offline-store/{group}-{int(created)}/data"


def table_location(resolved_uri: str) -> str:
    """A TableFormat Iceberg table's location: the group's folder, whose `data` is ResolvedOutputS3Uri
    (the table's metadata goes in its `metadata`, beside the data)."""
    return s3_form(resolved_uri).rstrip("/").removesuffix("/data")


def s3_form(uri: str) -> str:
    """`https://bucket/key` (allowed by the S3Uri pattern) as `s3://bucket/key`."""
    return "s3://" + uri[len("https://"):] if uri.startswith("https://") else uri


def _arrow_type(definition: dict[str, Any]) -> Any:
    import pyarrow as pa

    kind = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}[definition["FeatureType"]]
    return pa.list_(kind) if definition.get("CollectionType") else kind


def _convert(value: Any, definition: dict[str, Any]) -> Any:
    if value is None:
        return None
    cast: Any = {"Integral": lambda v: int(v.strip()), "Fractional": float, "String": str}[definition["FeatureType"]]
    return [cast(v) for v in value] if isinstance(value, list) else cast(value)


def parquet_bytes(definitions: list[dict[str, Any]], rows: list[dict[str, Any]], written: float) -> bytes:
    """One Parquet file of `rows` (pending rows: values, api_invocation_time, is_deleted)."""
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(arrow_table(definitions, rows, written), out)
    return out.getvalue()


def arrow_table(definitions: list[dict[str, Any]], rows: list[dict[str, Any]], written: float) -> Any:
    """The offline store's columns for `rows`: the features, write_time, api_invocation_time, is_deleted."""
    import pyarrow as pa

    millis = pa.timestamp("ms", tz="UTC")
    fields = [pa.field(d["FeatureName"], _arrow_type(d)) for d in definitions]
    fields += [pa.field("write_time", millis), pa.field("api_invocation_time", millis),
               pa.field("is_deleted", pa.bool_())]
    data: dict[str, list[Any]] = {d["FeatureName"]: [_convert(r["values"].get(d["FeatureName"]), d) for r in rows]
                                  for d in definitions}
    data["write_time"] = [int(written * 1000)] * len(rows)
    data["api_invocation_time"] = [int(r["api_invocation_time"] * 1000) for r in rows]
    data["is_deleted"] = [bool(r["is_deleted"]) for r in rows]
    return pa.table(data, schema=pa.schema(fields))


def partitions(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows by their event time's hour: `year=YYYY/month=MM/day=DD/hour=HH`."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        moment = datetime.fromtimestamp(row["event_time"], tz=timezone.utc)
        out.setdefault(moment.strftime("year=%Y/month=%m/day=%d/hour=%H"), []).append(row)
    return out


def file_name(rows: list[dict[str, Any]]) -> str:
    latest = datetime.fromtimestamp(max(r["event_time"] for r in rows), tz=timezone.utc)
    return f"{latest.strftime('%Y%m%dT%H%M%SZ')}_{''.join(secrets.choice(_ALNUM) for _ in range(16))}.parquet"


def write(s3: Any, document: dict[str, Any], rows: list[dict[str, Any]], iceberg: Any = None) -> list[str]:
    """Upload `rows` of the group `document` as one file per hour partition; returns the keys written.
    A TableFormat Iceberg group's rows are appended to its Iceberg table instead (`iceberg`: the
    process's feature_store.iceberg.IcebergTables); the return is then the new metadata file."""
    base = document["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    written = time.time()
    if document["OfflineStoreConfig"].get("TableFormat") == "Iceberg" and iceberg is not None:
        table = arrow_table(document["FeatureDefinitions"], rows, written)
        return [iceberg.append(s3, document, table, max(r["event_time"] for r in rows))]
    where = parse_uri(s3_form(base))
    bucket, prefix = where.bucket, where.key
    keys = []
    for partition, members in sorted(partitions(rows).items()):
        key = f"{prefix.rstrip('/')}/{partition}/{file_name(members)}"
        s3.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(document["FeatureDefinitions"], members, written))
        keys.append(key)
        log.debug("offline store: %d records to s3://%s/%s", len(members), bucket, key)
    return keys
