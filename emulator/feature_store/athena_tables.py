"""Athena's own tables for the local Athena: `CREATE EXTERNAL TABLE` DDL that registers a Glue table over
S3 files, and Glue tables over CSV or Parquet files in the emulator's S3 loaded into DuckDB when a
query names them.

Why: the SDK's DatasetBuilder (`FeatureStore.create_dataset(base=<DataFrame>)`) uploads the DataFrame
as CSV, creates a table over it with `CREATE EXTERNAL TABLE ... ROW FORMAT SERDE
'org.apache.hadoop.hive.serde2.OpenCSVSerde' ... LOCATION 's3://...'`, and joins it with feature
groups' tables; moto's Athena runs no DDL and creates no Glue table. Here the DDL creates the table in
the embedded Glue (as Athena does), and any Glue table whose files are in S3 is readable by a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CREATE = re.compile(r"^\s*CREATE\s+EXTERNAL\s+TABLE\s+(?P<exists>IF\s+NOT\s+EXISTS\s+)?(?P<name>[`\"\w.]+)\s*\(",
                     re.I | re.S)
_DUCK = {"string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "int": "INTEGER", "integer": "INTEGER",
         "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT",
         "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE"}
_PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
_OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
_LAZY_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"


class DdlError(Exception):
    """The statement cannot be carried out (Athena's FAILED reason)."""


def is_create(query: str) -> bool:
    return bool(re.match(r"^\s*CREATE\s+EXTERNAL\s+TABLE\b", query, re.I))


def _unquote(name: str) -> str:
    return name.strip().strip('`"')


def _unquoted(text: str, start: int = 0, depth: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth before it) of every character outside quotes, from `start`."""
    quote = ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
            continue
        if char in "'\"`":
            quote = char
            continue
        yield index, char, depth
        depth += {"(": 1, ")": -1}.get(char, 0)


def _closing(text: str, start: int) -> int:
    """The index of the `)` that closes the `(` just before `start`, or -1."""
    return next((index for index, char, depth in _unquoted(text, start, 1) if char == ")" and depth == 1), -1)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes (`decimal(10,2)`, `'a,b'`)."""
    cuts = [index for index, char, depth in _unquoted(text) if char == "," and depth == 0]
    bounds = zip([-1, *cuts], [*cuts, len(text)], strict=True)
    return [part for part in (text[a + 1:b].strip() for a, b in bounds) if part]


def _properties(text: str | None) -> dict[str, str]:
    """`'key' = 'value'` pairs, the values unescaped as Hive reads a string literal (`"\\\\"` is one backslash)."""
    pairs = re.findall(r"['\"]([^'\"]+)['\"]\s*=\s*['\"]((?:[^'\"\\]|\\.)*)['\"]", text or "")
    return {key: re.sub(r"\\(.)", r"\1", value) for key, value in pairs}


def table_input(query: str) -> tuple[str | None, str, dict[str, Any], bool]:
    """(database or None, table, Glue TableInput, IF NOT EXISTS) of a CREATE EXTERNAL TABLE statement."""
    match = _CREATE.match(query)
    end = _closing(query, match.end()) if match else -1
    if match is None or end < 0:
        raise DdlError("line 1:1: mismatched input: CREATE EXTERNAL TABLE needs (columns) and LOCATION 's3://...'")
    name = [_unquote(part) for part in match["name"].split(".")]
    database, table = (name[0], name[1]) if len(name) == 2 else (None, name[-1])
    columns = []
    for column in _split_top(query[match.end():end]):
        pieces = column.split(None, 1)
        if len(pieces) != 2:
            raise DdlError(f"line 1:1: column '{column}' needs a name and a type")
        columns.append({"Name": _unquote(pieces[0]).lower(), "Type": pieces[1].strip().lower()})
    rest = query[end + 1:]
    location = re.search(r"LOCATION\s+'([^']+)'", rest, re.I)
    if location is None or not location.group(1).startswith("s3://"):
        raise DdlError("LOCATION 's3://bucket/prefix/' is required for an external table.")
    serde = re.search(r"SERDE\s+'([^']+)'", rest, re.I)
    stored = re.search(r"STORED\s+AS\s+(\w+)", rest, re.I)
    serde_name = serde.group(1) if serde else (_PARQUET_SERDE if stored and stored.group(1).lower() == "parquet"
                                               else _LAZY_SERDE)
    serde_params = _properties((re.search(r"SERDEPROPERTIES\s*\(([^)]*)\)", rest, re.I) or [None, None])[1])
    delimiter = re.search(r"FIELDS\s+TERMINATED\s+BY\s+'([^']+)'", rest, re.I)
    if delimiter:
        serde_params["field.delim"] = delimiter.group(1).encode().decode("unicode_escape")
    parameters = {"EXTERNAL": "TRUE", "classification": "parquet" if serde_name == _PARQUET_SERDE else "csv",
                  **_properties((re.search(r"TBLPROPERTIES\s*\(([^)]*)\)", rest, re.I) or [None, None])[1])}
    return database, table, {
        "Name": table, "TableType": "EXTERNAL_TABLE", "Parameters": parameters, "PartitionKeys": [],
        "StorageDescriptor": {"Columns": columns, "Location": location.group(1),
                              "SerdeInfo": {"SerializationLibrary": serde_name, "Parameters": serde_params}},
    }, bool(match["exists"])


def create(glue: Any, query: str, default_database: str | None) -> None:
    """Carry out a CREATE EXTERNAL TABLE in moto's Glue backend `glue`."""
    from moto.glue.exceptions import EntityNotFoundException, TableAlreadyExistsException

    database, table, spec, if_not_exists = table_input(query)
    database = database or default_database or "default"
    try:
        glue.get_database(database)
    except EntityNotFoundException:
        raise DdlError(f"SemanticException [Error 10072]: Database does not exist: {database}") from None
    try:
        glue.create_table(database, table, spec)
    except TableAlreadyExistsException:
        if not if_not_exists:
            raise DdlError(f"AlreadyExistsException: Table {database}.{table} already exists") from None


@dataclass
class GlueTable:
    """A Glue table a query names whose files are in S3: loaded into DuckDB as `<database>.<table>`."""

    database: str
    table: dict[str, Any]

    @property
    def location(self) -> str:
        return str(self.table["StorageDescriptor"]["Location"])

    def load(self, db: Any, files: list[Path], name: str) -> None:
        descriptor = self.table["StorageDescriptor"]
        serde = descriptor.get("SerdeInfo") or {}
        columns = {c["Name"]: _duck_type(c["Type"]) for c in descriptor.get("Columns", [])}
        listing = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        if serde.get("SerializationLibrary") == _PARQUET_SERDE or "parquet" in str(
                descriptor.get("InputFormat", "")).lower():
            source = f"read_parquet({listing}, union_by_name = true)" if files else None
        else:
            params = serde.get("Parameters") or {}
            open_csv = serde.get("SerializationLibrary") == _OPEN_CSV_SERDE
            delimiter = params.get("separatorChar" if open_csv else "field.delim", ",")
            skip = int((self.table.get("Parameters") or {}).get("skip.header.line.count", "0"))
            options = [f"delim = {_literal(delimiter)}", f"header = {'true' if skip else 'false'}",
                       "auto_detect = false", "columns = {" + ", ".join(
                           f"{_literal(k)}: {_literal(v)}" for k, v in columns.items()) + "}"]
            if open_csv:  # OpenCSVSerde's defaults: quoteChar ", escapeChar \\
                quote, escape = params.get("quoteChar", '"'), params.get("escapeChar", "\\")
                options += [f"quote = {_literal(quote)}", f"escape = {_literal(escape)}"]
            source = f"read_csv({listing}, {', '.join(options)})" if files else None
        if source is None:  # no file yet: the columns, no rows
            definitions = ", ".join(f'"{k}" {v}' for k, v in columns.items())
            db.execute(f"CREATE TABLE {name} ({definitions})")
        else:
            db.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}")


def _duck_type(hive: str) -> str:
    hive = hive.strip().lower()
    if hive.startswith("decimal"):
        return hive.upper()
    return _DUCK.get(re.sub(r"\(.*", "", hive), "VARCHAR")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def named_in(glue: Any, query: str, skip: set[tuple[str, str]]) -> list[GlueTable]:
    """The Glue tables over S3 that `query` names (as written or quoted), feature groups' (`skip`) aside."""
    lowered = query.lower()
    found = []
    for database_name, database in list(glue.databases.items()):
        for table_name, table in list(database.tables.items()):
            if (database_name, table_name) in skip:
                continue
            spec = table.as_dict()
            location = (spec.get("StorageDescriptor") or {}).get("Location", "")
            if location.startswith("s3://") and re.search(
                    rf"(?<![\w]){re.escape(table_name.lower())}(?![\w])", lowered):
                found.append(GlueTable(database_name, {**spec, "Name": table_name}))
    return found
