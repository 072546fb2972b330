"""The offline store in Apache Iceberg format (OfflineStoreConfig.TableFormat Iceberg), written with pyiceberg.

AWS's layout (its developer guide, "offline store data format"): the table's metadata under
`<group folder>/metadata/`, its Parquet files under ResolvedOutputS3Uri (`<group folder>/data`) as
`<8 random alphanumerics>/<event time feature>_trunc=YYYY-MM-DD/<latest event time>_<16 random
alphanumerics>.parquet`: daily partitions of the event time. Here that is the Iceberg partition field
`truncate(10)` over a String event time (ISO 8601: its first ten characters are the day); Iceberg has
no truncation of a double, so a group with a Fractional event time gets an unpartitioned table (AWS
does not document its spec for that case). Columns are the Glue format's (offline.parquet_bytes).

The catalog that holds each table's current metadata pointer is pyiceberg's SQL catalog in
`<data_dir>/featurestore-iceberg.db` (durable across restarts), and after every commit the Glue
table's `metadata_location` follows it, as the Glue Data Catalog does for AWS's Iceberg tables.
Files go through the emulator's own S3 client (a small FileIO over boto3), never to AWS.
"""

from __future__ import annotations

import io
import logging
import secrets
import string
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream
from pyiceberg.table.locations import LocationProvider

from sagemaker_emulator.staging.uris import parse_uri

from .offline import table_location

_ALNUM = string.ascii_letters + string.digits
# the latest event time of the batch being written, by the table's data path (for the file names; pyiceberg
# writes the files in threads of its own, and the flusher writes one group at a time)
_LATEST: dict[str, float] = {}
logging.getLogger("pyiceberg").setLevel(logging.WARNING)  # it logs each FileIO and location provider it loads


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


class FeatureStoreLocations(LocationProvider):
    """Data files where AWS puts them (see the module's docstring); named by table property."""

    def new_data_location(self, data_file_name: str, partition_key: Any = None) -> str:
        latest = datetime.fromtimestamp(_LATEST.get(self.data_path, 0.0), tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        partition = f"{partition_key.to_path()}/" if partition_key is not None else ""
        return f"{self.data_path}/{_random(8)}/{partition}{latest}_{_random(16)}.parquet"


class _Upload(io.BytesIO):
    """An object written in memory and stored in S3 when closed (not when its writer failed)."""

    def __init__(self, target: S3Output) -> None:
        super().__init__()
        self.target = target
        self.failed = False

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.failed = kind is not None
        super().__exit__(kind, value, traceback)

    def close(self) -> None:
        if not self.closed and not self.failed:
            data = self.getvalue()
            self.target.io.s3.put_object(Bucket=self.target.bucket, Key=self.target.key, Body=data)
            self.target.size = len(data)
        super().close()


class S3Output(OutputFile):
    def __init__(self, location: str, file_io: S3ClientIO) -> None:
        super().__init__(location)
        where = parse_uri(location)
        self.io, self.bucket, self.key, self.size = file_io, where.bucket, where.key, -1

    def __len__(self) -> int:
        if self.size < 0:
            self.size = self.io.s3.head_object(Bucket=self.bucket, Key=self.key)["ContentLength"]
        return self.size

    def exists(self) -> bool:
        return self.io.exists(self.location)

    def to_input_file(self) -> InputFile:
        return self.io.new_input(self.location)

    def create(self, overwrite: bool = False) -> OutputStream:
        if not overwrite and self.exists():
            raise FileExistsError(self.location)
        return _Upload(self)


class S3Input(InputFile):
    def __init__(self, location: str, file_io: S3ClientIO) -> None:
        super().__init__(location)
        self.io = file_io

    def __len__(self) -> int:
        where = parse_uri(self.location)
        return int(self.io.s3.head_object(Bucket=where.bucket, Key=where.key)["ContentLength"])

    def exists(self) -> bool:
        return self.io.exists(self.location)

    def open(self, seekable: bool = True) -> InputStream:
        where = parse_uri(self.location)
        try:
            body = self.io.s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
        except self.io.s3.exceptions.NoSuchKey:
            raise FileNotFoundError(self.location) from None
        return io.BytesIO(body)


_CLIENTS: dict[str, Any] = {}  # S3 clients by the catalog property naming them (pyiceberg builds FileIOs itself)


class S3ClientIO(FileIO):
    """pyiceberg's FileIO over the emulator's boto3 S3 client (metadata files are small: read whole).
    pyiceberg makes one from the catalog's properties (`py-io-impl`), wherever it reads or writes, so
    the client is named by the property `emulator.s3-client`; without it there is no FileIO at all
    (never pyiceberg's default one, which would reach AWS itself)."""

    def __init__(self, properties: Any = None) -> None:
        super().__init__(dict(properties or {}))
        key = self.properties.get("emulator.s3-client")
        if key not in _CLIENTS:
            raise RuntimeError("no emulator S3 client for this Iceberg FileIO")
        self.s3 = _CLIENTS[key]

    def exists(self, location: str) -> bool:
        where = parse_uri(location)
        try:
            self.s3.head_object(Bucket=where.bucket, Key=where.key)
        except Exception:
            return False
        return True

    def new_input(self, location: str) -> InputFile:
        return S3Input(location, self)

    def new_output(self, location: str) -> OutputFile:
        return S3Output(location, self)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        path = location if isinstance(location, str) else location.location
        where = parse_uri(path)
        self.s3.delete_object(Bucket=where.bucket, Key=where.key)


class IcebergTables:
    """Appends to the Iceberg tables of one emulator process's feature groups."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "featurestore-iceberg.db"
        self._catalogs: dict[int, SqlCatalog] = {}
        self._lock = threading.Lock()

    def _catalog(self, s3: Any) -> SqlCatalog:
        with self._lock:
            catalog = self._catalogs.get(id(s3))
            if catalog is None:
                _CLIENTS[str(id(s3))] = s3
                catalog = SqlCatalog("featurestore", uri=f"sqlite:///{self.path}", warehouse="s3://unused",
                                     **{"py-io-impl": f"{__name__}.S3ClientIO", "emulator.s3-client": str(id(s3))})
                self._catalogs[id(s3)] = catalog
            return catalog

    def _existing(self, catalog: SqlCatalog, document: dict[str, Any]) -> tuple[Any, tuple[str, str], str]:
        """The group's table if the catalog has it (a same-named table of another group is not it),
        with the table's identifier and location."""
        names = document["OfflineStoreConfig"]["DataCatalogConfig"]
        identifier = (names["Database"], names["TableName"])
        location = table_location(document["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"])
        if catalog.table_exists(identifier):
            table = catalog.load_table(identifier)
            if table.location().rstrip("/") == location:
                return table, identifier, location
        return None, identifier, location

    def data_files(self, s3: Any, document: dict[str, Any]) -> set[str]:
        """The data files (s3:// URIs) of the table's current snapshot: what a reader of the table sees;
        a file that a failed commit left behind is not one of them."""
        table = self._existing(self._catalog(s3), document)[0]
        return set() if table is None else {task.file.file_path for task in table.scan().plan_files()}

    def _table(self, catalog: SqlCatalog, document: dict[str, Any], schema: Any) -> Any:
        """The group's table, created on its first write (again if a same-named one is another group's)."""
        table, identifier, location = self._existing(catalog, document)
        if table is not None:
            return table
        catalog.create_namespace_if_not_exists(identifier[0])
        if catalog.table_exists(identifier):
            catalog.drop_table(identifier)  # a group of the same table name before a reset
        table = catalog.create_table(identifier, schema=schema, location=location, properties={
            "write.py-location-provider.impl": f"{__name__}.FeatureStoreLocations",
            "write.parquet.compression-codec": "snappy"})
        event = document["EventTimeFeatureName"]
        definitions = {d["FeatureName"]: d for d in document["FeatureDefinitions"]}
        if definitions[event]["FeatureType"] == "String":
            from pyiceberg.transforms import TruncateTransform

            with table.update_spec() as spec:
                spec.add_field(event, TruncateTransform(10), f"{event}_trunc")
        return table

    def create_empty(self, s3: Any, document: dict[str, Any], schema: Any) -> str:
        """The group's table with no snapshot yet (AWS creates it with the group, so the Glue table
        has a `metadata_location` before the first record); its metadata file."""
        table = self._table(self._catalog(s3), document, schema)
        table.refresh()
        return str(table.metadata_location)

    def append(self, s3: Any, document: dict[str, Any], arrow_table: Any, latest_event: float) -> str:
        """Commit `arrow_table` (the offline store's columns) to the group's table; its new metadata file."""
        catalog = self._catalog(s3)
        table = self._table(catalog, document, arrow_table.schema)
        if set(arrow_table.schema.names) - {field.name for field in table.schema().fields}:
            with table.update_schema() as update:  # UpdateFeatureGroup's FeatureAdditions
                update.union_by_name(arrow_table.schema)
        _LATEST[table.location_provider().data_path] = latest_event
        table.append(arrow_table)
        return str(table.metadata_location)
