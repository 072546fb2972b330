"""Athena over a feature group's offline store: refused, with the reason and the way round it.

The SDK's `FeatureGroup.athena_query().run()` calls Athena's StartQueryExecution and later reads the
result CSV from S3. moto's Athena runs no SQL: it answers SUCCEEDED and writes nothing (or canned rows
into its own S3, not the emulator's), so the SDK would fail later with a bare NoSuchKey. A query that
names a feature group's Glue table is therefore refused at once with InvalidRequestException saying
why and where the data is; other Athena calls still go to moto (docs/decisions.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

from .service import KIND

TARGET = "AmazonAthena.StartQueryExecution"


def refusal(region: str, body: bytes) -> AwsError | None:
    """InvalidRequestException if this StartQueryExecution reads a feature group's table, else None."""
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return None  # moto words the malformed request
    query = str(params.get("QueryString") or "").lower() if isinstance(params, dict) else ""
    if not query:
        return None
    for row in resources.all_with_status(KIND, ("Created", "Creating")):
        if row.region != region:
            continue
        offline: dict[str, Any] = row.document.get("OfflineStoreConfig") or {}
        table = (offline.get("DataCatalogConfig") or {}).get("TableName")
        if table and re.search(rf"(?<![\w]){re.escape(table.lower())}(?![\w])", query):
            location = offline["S3StorageConfig"]["ResolvedOutputS3Uri"]
            return AwsError(
                f"sagemaker-emulator runs no Athena engine, so the query on table {table} (the offline store of "
                f"feature group {row.name}) cannot be answered locally. The offline store's Parquet files are "
                f"under {location}: read them with pandas.read_parquet (through boto3 S3) instead.",
                code="InvalidRequestException")
    return None
