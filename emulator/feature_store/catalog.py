"""The offline store's Glue table, in the embedded moto's Glue (its in-process backend, the same state
moto answers `glue:GetTable` from).

What AWS does (docs/decisions.md): with DisableGlueTableCreation false (the default) Feature Store
creates the table, under the DataCatalogConfig given or else under names of its own (catalog
AwsDataCatalog, database sagemaker_featurestore, table `<group>_<creation epoch>`, lower case, `-`
as `_`); with it true, a given DataCatalogConfig is only recorded. The table is external Parquet at
ResolvedOutputS3Uri: the features (Integral bigint, Fractional double, String string, collections
array<...>) and the offline store's write_time, api_invocation_time and is_deleted. moto keeps its
state in memory, so the tables the emulator created are registered again at start-up.
"""

from __future__ import annotations

from typing import Any

from .offline import table_location

AUTO_CATALOG = "AwsDataCatalog"
AUTO_DATABASE = "sagemaker_featurestore"
_HIVE = {"Integral": "bigint", "Fractional": "double", "String": "string"}


class CatalogError(Exception):
    """The table cannot be created (it exists already, say): the feature group's FailureReason."""


def auto_table_name(group_name: str, created: float) -> str:
    return f"{group_name}_{int(created)}".lower().replace("-", "_")


def columns(definitions: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for definition in definitions:
        kind = _HIVE[definition["FeatureType"]]
        out.append({"Name": definition["FeatureName"].lower(),
                    "Type": f"array<{kind}>" if definition.get("CollectionType") else kind})
    out += [{"Name": "write_time", "Type": "timestamp"}, {"Name": "api_invocation_time", "Type": "timestamp"},
            {"Name": "is_deleted", "Type": "boolean"}]
    return out


def _table_input(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """An Iceberg group's table is at the group's folder and points at its current metadata file
    (`metadata_location`, once the first records are written: feature_store/iceberg.py)."""
    offline = document["OfflineStoreConfig"]
    location = offline["S3StorageConfig"]["ResolvedOutputS3Uri"]
    parameters = {"EXTERNAL": "TRUE", "classification": "parquet", "table_type": "HIVE"}
    if offline.get("TableFormat") == "Iceberg":
        location = table_location(location)
        parameters["table_type"] = "ICEBERG"
        if document.get("_IcebergMetadata"):
            parameters["metadata_location"] = document["_IcebergMetadata"]
    return {
        "Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": parameters,
        "StorageDescriptor": {
            "Columns": columns(document["FeatureDefinitions"]),
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                          "Parameters": {"serialization.format": "1"}},
        },
        "PartitionKeys": [],
    }


def _backend(account: str, region: str) -> Any:
    """moto's Glue backend; whoever asks for it writes to it, so its next snapshot includes Glue."""
    from moto.glue.models import glue_backends

    from sagemaker_emulator.aws import moto_state

    moto_state.changed("glue")
    return glue_backends[account][region]


def create_table(account: str, region: str, document: dict[str, Any]) -> None:
    """Create the database (if missing) and the table DataCatalogConfig names; CatalogError if taken."""
    from moto.glue.exceptions import DatabaseAlreadyExistsException, TableAlreadyExistsException

    catalog = document["OfflineStoreConfig"]["DataCatalogConfig"]
    glue = _backend(account, region)
    try:
        glue.create_database(catalog["Database"], {"Name": catalog["Database"]})
    except DatabaseAlreadyExistsException:
        pass
    try:
        glue.create_table(catalog["Database"], catalog["TableName"], _table_input(catalog["TableName"], document))
    except TableAlreadyExistsException:
        raise CatalogError(f"The Glue table {catalog['Database']}.{catalog['TableName']} already exists.") from None


def ensure_table(account: str, region: str, document: dict[str, Any]) -> None:
    """At start-up: the table again if moto (in memory) lost it; its columns follow the definitions."""
    try:
        create_table(account, region, document)
    except CatalogError:
        update_columns(account, region, document)


def update_columns(account: str, region: str, document: dict[str, Any]) -> None:
    """UpdateFeatureGroup's FeatureAdditions reach the table's columns."""
    from moto.glue.exceptions import EntityNotFoundException

    catalog = document["OfflineStoreConfig"]["DataCatalogConfig"]
    try:
        _backend(account, region).update_table(catalog["Database"], catalog["TableName"],
                                               _table_input(catalog["TableName"], document))
    except EntityNotFoundException:  # the user dropped it: AWS does not bring it back either
        pass
