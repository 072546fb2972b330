"""The offline store as an Apache Iceberg table (TableFormat Iceberg): the data and metadata files under
AWS's layout, a table pyiceberg itself reads back, the Glue table pointing at the current metadata, and
Athena over it; and the Glue format's table (external Parquet, no partition keys)."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from . import test_feature_store
from .helpers import error_of, unique, wait_until
from .test_feature_store import DEFINITIONS, _created

bucket = test_feature_store.bucket  # its module-scoped fixture: the shared bucket

STRING_TIME = [{"FeatureName": "customer_id", "FeatureType": "String"},
               {"FeatureName": "event_time", "FeatureType": "String"},
               {"FeatureName": "age", "FeatureType": "Integral"}]


def _put(fs, name: str, customer: str, event: str, age: int) -> None:
    fs.put_record(FeatureGroupName=name, Record=[{"FeatureName": "customer_id", "ValueAsString": customer},
                                                 {"FeatureName": "event_time", "ValueAsString": event},
                                                 {"FeatureName": "age", "ValueAsString": str(age)}])


def test_iceberg_offline_store(sagemaker_client, sagemaker_featurestore_runtime_client, sagemaker_emulator,
                               s3_client, bucket):
    from pyiceberg.table import StaticTable

    from sagemaker_emulator.feature_store import iceberg

    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-ice")
    described = _created(sm, name, FeatureDefinitions=STRING_TIME, OfflineStoreConfig={
        "S3StorageConfig": {"S3Uri": f"s3://{bucket}/iceberg"}, "TableFormat": "Iceberg"})
    resolved = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    assert resolved.endswith(f"/offline-store/{described['FeatureGroupName']}-"
                             f"{int(described['CreationTime'].timestamp())}/data")
    folder = resolved.removesuffix("/data")
    catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
    glue = sagemaker_emulator.client("glue")

    def metadata_location(other_than=None):
        table = glue.get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]
        return table["Parameters"].get("metadata_location") not in (None, other_than) and table

    empty = metadata_location()["Parameters"]["metadata_location"]  # the table exists from the create on
    _put(fs, name, "a", "2024-03-01T10:00:00Z", 30)
    _put(fs, name, "b", "2024-03-02T11:30:00Z", 40)
    table = wait_until(lambda: metadata_location(empty), timeout=60, what="the Glue table's next metadata_location")
    assert table["Parameters"]["table_type"] == "ICEBERG" and table["StorageDescriptor"]["Location"] == folder
    location = table["Parameters"]["metadata_location"]
    assert location.startswith(f"{folder}/metadata/") and location.endswith(".metadata.json")
    prefix = folder.split(f"{bucket}/", 1)[1]
    keys = [o["Key"][len(prefix) + 1:] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    data = sorted(k for k in keys if k.startswith("data/"))
    assert len(data) == 2 and all(re.fullmatch(r"data/[A-Za-z0-9]{8}/event_time_trunc=2024-03-0[12]/"
                                               r"\d{8}T\d{6}Z_[A-Za-z0-9]{16}\.parquet", k) for k in data), data
    assert {k.split("/")[2] for k in data} == {"event_time_trunc=2024-03-01", "event_time_trunc=2024-03-02"}
    metadata = json.loads(s3_client.get_object(Bucket=bucket, Key=location.split(f"{bucket}/", 1)[1])["Body"].read())
    spec = next(s for s in metadata["partition-specs"] if s["spec-id"] == metadata["default-spec-id"])
    assert [(f["name"], f["transform"]) for f in spec["fields"]] == [("event_time_trunc", "truncate[10]")]
    assert metadata["location"] == folder
    # an independent reader: pyiceberg from the metadata file alone, through a client of the test's own
    iceberg._CLIENTS["test"] = s3_client
    try:
        static = StaticTable.from_metadata(location, properties={"py-io-impl": f"{iceberg.__name__}.S3ClientIO",
                                                                 "emulator.s3-client": "test"})
        rows = static.scan().to_arrow().sort_by("customer_id").to_pylist()
    finally:
        iceberg._CLIENTS.pop("test")
    assert [(r["customer_id"], r["event_time"], r["age"], r["is_deleted"]) for r in rows] == [
        ("a", "2024-03-01T10:00:00Z", 30, False), ("b", "2024-03-02T11:30:00Z", 40, False)]
    # a feature added later is a new column of the same table; Athena sees every snapshot's rows
    sm.update_feature_group(FeatureGroupName=name, FeatureAdditions=[{"FeatureName": "city", "FeatureType": "String"}])
    fs.put_record(FeatureGroupName=name, Record=[{"FeatureName": "customer_id", "ValueAsString": "c"},
                                                 {"FeatureName": "event_time", "ValueAsString": "2024-03-02T12:00:00Z"},
                                                 {"FeatureName": "city", "ValueAsString": "Oslo"}])
    # a Parquet file no snapshot names (what a failed commit would leave) is not part of the table
    s3_client.copy_object(Bucket=bucket, Key=f"{prefix}/data/orphaned/event_time_trunc=2024-03-01/x.parquet",
                          CopySource={"Bucket": bucket, "Key": f"{prefix}/{data[0]}"})
    athena = sagemaker_emulator.client("athena")
    run = athena.start_query_execution(
        QueryString=f'SELECT customer_id, city FROM "{catalog["Database"]}"."{catalog["TableName"]}" '
                    "ORDER BY customer_id",
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-ice/"})["QueryExecutionId"]
    assert athena.get_query_execution(QueryExecutionId=run)["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    result = athena.get_query_results(QueryExecutionId=run)["ResultSet"]["Rows"][1:]
    assert [[d.get("VarCharValue") for d in r["Data"]] for r in result] == [["a", None], ["b", None], ["c", "Oslo"]]
    newest = metadata_location()["Parameters"]["metadata_location"]
    assert newest != location
    current = json.loads(s3_client.get_object(Bucket=bucket, Key=newest.split(f"{bucket}/", 1)[1])["Body"].read())
    schema = next(s for s in current["schemas"] if s["schema-id"] == current["current-schema-id"])
    assert "city" in [f["name"] for f in schema["fields"]] and len(current["snapshots"]) == 2, current["snapshots"]


def test_iceberg_with_fractional_event_time_is_unpartitioned(sagemaker_client, sagemaker_featurestore_runtime_client,
                                                             s3_client, sagemaker_emulator, bucket):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-icef")
    described = _created(sm, name, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/icef"},
                                                       "TableFormat": "Iceberg"})
    fs.put_record(FeatureGroupName=name, Record=[{"FeatureName": "customer_id", "ValueAsString": "z"},
                                                 {"FeatureName": "event_time", "ValueAsString": repr(time.time())}])
    prefix = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].split(f"{bucket}/", 1)[1]
    keys = wait_until(lambda: [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
                               .get("Contents", [])], timeout=60, what="the Iceberg data file")
    assert all(re.fullmatch(rf"{re.escape(prefix)}/[A-Za-z0-9]{{8}}/\d{{8}}T\d{{6}}Z_[A-Za-z0-9]{{16}}\.parquet", k)
               for k in keys), keys


def test_iceberg_needs_the_glue_table(sagemaker_client, bucket):
    with pytest.raises(ClientError) as excinfo:
        sagemaker_client.create_feature_group(
            FeatureGroupName=unique("fg-icen"), RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="event_time", FeatureDefinitions=DEFINITIONS,
            RoleArn="arn:aws:iam::123456789012:role/R",
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/x"}, "TableFormat": "Iceberg",
                                "DisableGlueTableCreation": True})
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException" and "DisableGlueTableCreation" in message


def test_glue_format_table_is_unpartitioned_parquet(sagemaker_client, sagemaker_emulator, bucket):
    described = _created(sagemaker_client, unique("fg-hive"), OnlineStoreConfig=None,
                         OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/hive"}})
    catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
    table = sagemaker_emulator.client("glue").get_table(DatabaseName=catalog["Database"],
                                                        Name=catalog["TableName"])["Table"]
    assert table.get("PartitionKeys", []) == [] and table["Parameters"]["table_type"] == "HIVE"
    assert table["StorageDescriptor"]["Location"] == described["OfflineStoreConfig"]["S3StorageConfig"][
        "ResolvedOutputS3Uri"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")


def test_iceberg_table_exists_before_the_first_record(sagemaker_client, sagemaker_emulator, s3_client, bucket):
    """AWS creates an Iceberg group's table with the group: the Glue table points at a metadata file with
    the schema and the daily partition spec and no snapshot, and Athena answers an empty result."""
    name = unique("fg-ice0")
    described = _created(sagemaker_client, name, FeatureDefinitions=STRING_TIME, OfflineStoreConfig={
        "S3StorageConfig": {"S3Uri": f"s3://{bucket}/ice0"}, "TableFormat": "Iceberg"})
    catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
    table = sagemaker_emulator.client("glue").get_table(DatabaseName=catalog["Database"],
                                                        Name=catalog["TableName"])["Table"]
    location = table["Parameters"]["metadata_location"]
    metadata = json.loads(s3_client.get_object(Bucket=bucket, Key=location.split(f"{bucket}/", 1)[1])["Body"].read())
    assert metadata.get("snapshots", []) == [] and metadata.get("current-snapshot-id") in (None, -1)
    schema = next(s for s in metadata["schemas"] if s["schema-id"] == metadata["current-schema-id"])
    assert [f["name"] for f in schema["fields"]] == ["customer_id", "event_time", "age", "write_time",
                                                     "api_invocation_time", "is_deleted"]
    spec = next(s for s in metadata["partition-specs"] if s["spec-id"] == metadata["default-spec-id"])
    assert [(f["name"], f["transform"]) for f in spec["fields"]] == [("event_time_trunc", "truncate[10]")]
    athena = sagemaker_emulator.client("athena")
    run = athena.start_query_execution(
        QueryString=f'SELECT customer_id FROM "{catalog["Database"]}"."{catalog["TableName"]}"',
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-ice0/"})["QueryExecutionId"]
    status = athena.get_query_execution(QueryExecutionId=run)["QueryExecution"]["Status"]
    assert status["State"] == "SUCCEEDED", status
    assert athena.get_query_results(QueryExecutionId=run)["ResultSet"]["Rows"][1:] == []


def test_iceberg_group_on_a_missing_bucket_is_blocked(sagemaker_client):
    """The table cannot be written: the group is created and its offline store is Blocked with the reason."""
    name = unique("fg-ice-nob")
    described = _created(sagemaker_client, name, FeatureDefinitions=STRING_TIME, OfflineStoreConfig={
        "S3StorageConfig": {"S3Uri": f"s3://{unique('no-such-bucket')}/x"}, "TableFormat": "Iceberg"})
    assert described["OfflineStoreStatus"]["Status"] == "Blocked"
    assert "NoSuchBucket" in described["OfflineStoreStatus"]["BlockedReason"]
