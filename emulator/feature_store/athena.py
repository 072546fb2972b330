"""Athena over feature groups' offline stores, answered locally with DuckDB.

The SDK's `FeatureGroup.athena_query()` calls Athena's StartQueryExecution, polls
GetQueryExecution and reads `<OutputLocation>/<id>.csv` from S3. moto's Athena runs no SQL (it
answers SUCCEEDED and writes canned rows, if any, into its own S3, not the emulator's). So a query
that names a feature group's Glue table is run here: the group's pending records are flushed, its
Parquet files are read from S3 into an in-memory DuckDB table `<database>.<table>` (the user's SQL
then runs with DuckDB's external access off: it reads no host file), and the result is written
as Athena's CSV (every value quoted, NULL empty, a header row) to the output location. SQL DuckDB
cannot run ends FAILED with DuckDB's message as StateChangeReason. `CREATE EXTERNAL TABLE` and
queries naming other Glue tables over S3 files (CSV or Parquet) are answered here too
(athena_tables.py: what the SDK's DatasetBuilder writes); queries naming no such table, and
executions of other ids, go to moto (docs/decisions.md).
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.staging.uris import parse_uri
from sagemaker_emulator.storage import resources

from . import athena_tables
from .offline import s3_form
from .service import KIND

START, GET, RESULTS = ("AmazonAthena.StartQueryExecution", "AmazonAthena.GetQueryExecution",
                       "AmazonAthena.GetQueryResults")
TARGETS = (START, GET, RESULTS)
_DUCK_TYPES = {"Integral": "BIGINT", "Fractional": "DOUBLE", "String": "VARCHAR"}
_MAX_RESULT_ROWS = 1000  # GetQueryResults' page (Athena's MaxResults limit)
# the Presto/Trino functions the SDK's DatasetBuilder writes (event-time conditions, point-in-time joins)
_PRESTO_MACROS = ("CREATE TEMP MACRO from_unixtime(x) AS to_timestamp(x)",
                  "CREATE TEMP MACRO from_iso8601_timestamp(x) AS CAST(x AS TIMESTAMPTZ)",
                  "CREATE TEMP MACRO to_unixtime(x) AS epoch(x)")


def _invalid(message: str) -> AwsError:
    return AwsError(message, code="InvalidRequestException")


def _text(value: Any) -> str:
    """A value as Athena writes it in its CSV and in GetQueryResults' VarCharValue."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _ident(name: str) -> str:
    """A quoted SQL identifier (a DataCatalogConfig name may hold any character, `"` included)."""
    return '"' + name.replace('"', '""') + '"'


def _csv(columns: list[str], rows: list[tuple]) -> bytes:
    def line(values: list[Any]) -> str:
        return ",".join("" if v is None else '"' + _text(v).replace('"', '""') + '"' for v in values)

    return ("\n".join([line(list(columns)), *(line(list(row)) for row in rows)]) + "\n").encode()


class LocalAthena:
    """Executions answered here, kept in memory (as moto keeps its own)."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._runs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def owns(self, target: str, params: dict[str, Any], region: str | None = None) -> bool:
        if target == START:
            query = str(params.get("QueryString") or "")
            return bool(self._groups(params)) or athena_tables.is_create(query) or bool(
                self._glue_tables(query, region or self.services.config.region, []))
        with self._lock:
            return params.get("QueryExecutionId") in self._runs

    def _glue(self, region: str) -> Any:
        from moto.glue.models import glue_backends

        return glue_backends[self.services.config.account_id][region]

    def _glue_tables(self, query: str, region: str, groups: list[Any]) -> list[athena_tables.GlueTable]:
        """The Glue tables over S3 (not a feature group's) that the query names."""
        skip = {(c["Database"], c["TableName"]) for c in
                (((g.document.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or {}) for g in groups) if c}
        return athena_tables.named_in(self._glue(region), query, skip) if query else []

    def _groups(self, params: dict[str, Any]) -> list[Any]:
        """The feature groups (rows) whose Glue table the query names."""
        query = str(params.get("QueryString") or "").lower()
        found = []
        for row in resources.all_with_status(KIND, ("Created", "Creating")) if query else []:
            table = ((row.document.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or {}).get("TableName")
            if table and any(re.search(rf"(?<![\w]){re.escape(form.lower())}(?![\w])", query)
                             for form in {table, table.replace('"', '""')}):  # as written, or quoted
                found.append(row)
        return found

    def call(self, target: str, params: dict[str, Any], region: str | None = None) -> dict[str, Any]:
        if target == START:
            return self._start(params, region or self.services.config.region)
        with self._lock:
            run = self._runs[params["QueryExecutionId"]]
        if target == GET:
            return {"QueryExecution": run["execution"]}
        if run["execution"]["Status"]["State"] != "SUCCEEDED":
            raise _invalid(f"Query has not yet finished. Current state: {run['execution']['Status']['State']}")
        columns, rows = run["columns"], run["rows"]
        data = [[c for c, _ in columns]] + [[None if v is None else _text(v) for v in row]
                                           for row in rows[:_MAX_RESULT_ROWS - 1]] if columns else []  # DDL: none
        return {"ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in data],
            "ResultSetMetadata": {"ColumnInfo": [{"CatalogName": "hive", "SchemaName": "", "TableName": "",
                                                  "Name": c, "Label": c, "Type": t, "Precision": 0, "Scale": 0,
                                                  "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar"}
                                                 for c, t in columns]}},
                "UpdateCount": 0}

    def _start(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        if not output:
            raise _invalid("No output location provided. An output location is required either through the "
                           "Workgroup result configuration setting or as an API input.")
        query = params["QueryString"]
        ddl = athena_tables.is_create(query)
        groups = [] if ddl else self._groups(params)
        region = groups[0].region if groups else region
        tables = [] if ddl else self._glue_tables(query, region, groups)
        run_id = str(uuid.uuid4())
        location = f"{output.rstrip('/')}/{run_id}.{'txt' if ddl else 'csv'}"
        submitted = time.time()
        context = params.get("QueryExecutionContext") or {}
        columns: list[tuple[str, str]] = []
        rows: list[tuple] = []
        try:
            if ddl:  # Athena creates the Glue table; its result file is empty
                from sagemaker_emulator.aws import moto_state

                moto_state.changed("glue")
                athena_tables.create(self._glue(region), query, context.get("Database"))
                body = b""
            else:
                columns, rows = self._run(query, context.get("Database"), groups, tables, region)
                body = _csv([c for c, _ in columns], rows)
            where = parse_uri(s3_form(location))
            self._s3(region).put_object(Bucket=where.bucket, Key=where.key, Body=body)
            status: dict[str, Any] = {"State": "SUCCEEDED"}
        except Exception as exc:  # DuckDB's error (or S3's) is the query's failure reason
            status = {"State": "FAILED", "StateChangeReason": f"{type(exc).__name__}: {exc}"[:2048],
                      "AthenaError": {"ErrorCategory": 2, "ErrorType": 1100, "Retryable": False,
                                      "ErrorMessage": str(exc)[:2048]}}
        done = time.time()
        status.update(SubmissionDateTime=submitted, CompletionDateTime=done)
        execution = {"QueryExecutionId": run_id, "Query": query, "StatementType": "DDL" if ddl else "DML",
                     "ResultConfiguration": {"OutputLocation": location}, "QueryExecutionContext": context,
                     "Status": status, "WorkGroup": params.get("WorkGroup") or "primary",
                     "Statistics": {"EngineExecutionTimeInMillis": int((done - submitted) * 1000),
                                    "TotalExecutionTimeInMillis": int((done - submitted) * 1000),
                                    "DataScannedInBytes": 0},
                     "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "DuckDB (local)"}}
        with self._lock:
            self._runs[run_id] = {"execution": execution, "columns": columns, "rows": rows}
        return {"QueryExecutionId": run_id}

    def _run(self, query: str, database: str | None, groups: list[Any], tables: list[athena_tables.GlueTable],
             region: str) -> tuple[list[tuple[str, str]], list[tuple]]:
        import duckdb

        with tempfile.TemporaryDirectory(prefix="athena-") as scratch, duckdb.connect() as db:
            schemas = set()
            for index, glue_table in enumerate(tables):
                files = self._download_location(region, glue_table.location, Path(scratch) / f"glue-{index}")
                db.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(glue_table.database)}")
                schemas.add(glue_table.database)
                glue_table.load(db, files, f"{_ident(glue_table.database)}.{_ident(glue_table.table['Name'])}")
            for row in groups:
                self.services.feature_store.flush(row.arn)  # what was put is queryable now (AWS: within 15 min)
                doc = (resources.get_by_arn(row.arn) or row).document
                catalog = doc["OfflineStoreConfig"]["DataCatalogConfig"]
                schema, table = catalog["Database"], catalog["TableName"]
                files = self._download(row.region, doc, Path(scratch) / row.name)
                name = f"{_ident(schema)}.{_ident(table)}"
                db.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
                schemas.add(schema)
                if files:
                    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
                    db.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
                else:  # no record yet: the table's columns, no rows (as Athena answers)
                    definitions = ", ".join(
                        f'{_ident(d["FeatureName"])} {_DUCK_TYPES[d["FeatureType"]]}'
                        + ("[]" if d.get("CollectionType") else "") for d in doc["FeatureDefinitions"])
                    db.execute(f"CREATE TABLE {name} ({definitions}, write_time TIMESTAMPTZ, "
                               "api_invocation_time TIMESTAMPTZ, is_deleted BOOLEAN)")
            for macro in _PRESTO_MACROS:  # Athena's (Presto/Trino) names for what DuckDB spells otherwise
                db.execute(macro)
            if database in schemas:
                db.execute("SET schema = ?", [database])
            # the user's SQL sees only the tables loaded above: no host file, extension or setting
            db.execute("SET enable_external_access = false")
            db.execute("SET lock_configuration = true")
            result = db.execute(query)
            description = result.description or []
            rows = result.fetchall() if description else []
        return [(d[0], str(d[1]).lower().replace("timestamp with time zone", "timestamp")) for d in description], rows

    def _download(self, region: str, doc: dict[str, Any], into: Path) -> list[Path]:
        """The table's Parquet files: every one under the data folder, or an Iceberg table's current ones."""
        where = parse_uri(s3_form(doc["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]))
        s3 = self._s3(region)
        current = None
        if doc["OfflineStoreConfig"].get("TableFormat") == "Iceberg":
            current = self.services.feature_store.iceberg_tables().data_files(s3, doc)
        files: list[Path] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=where.key + "/"):
            for item in page.get("Contents", []):
                if current is not None and f"s3://{where.bucket}/{item['Key']}" not in current:
                    continue
                if item["Key"].endswith(".parquet"):
                    path = into / f"{len(files):06d}.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(where.bucket, item["Key"], str(path))
                    files.append(path)
        return files

    def _download_location(self, region: str, location: str, into: Path) -> list[Path]:
        """Every data file under a table's LOCATION (Athena skips names starting with `_` or `.`)."""
        where = parse_uri(s3_form(location))
        prefix = where.key.rstrip("/") + "/" if where.key else ""
        s3 = self._s3(region)
        files: list[Path] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/") or item["Key"].rsplit("/", 1)[-1].startswith(("_", ".")):
                    continue
                path = into / f"{len(files):06d}"
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(where.bucket, item["Key"], str(path))
                files.append(path)
        return files

    def _s3(self, region: str) -> Any:
        return self.services.feature_store.s3_client(region)
