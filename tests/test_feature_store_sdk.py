"""The SageMaker Python SDK v2's FeatureGroup, unchanged, against the emulator: load_feature_definitions,
create, ingest (threads), get_record, the offline store's Parquet read back with pandas, and
athena_query answered locally (and a query that cannot run FAILED with its reason); a TableFormat Iceberg
group the same way."""

from __future__ import annotations

import io
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import ROLE, sdk_environment, unique, wait_until

BUCKET = "feature-store-sdk"


@pytest.fixture(scope="module")
def session(sagemaker_emulator):
    import sagemaker

    sent: list = []
    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, sent)
        session = sagemaker.Session(default_bucket=BUCKET, sagemaker_config={
            "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
        try:
            session.boto_session.client("s3").create_bucket(Bucket=BUCKET)
        except ClientError:
            pass
        yield session


def test_sdk_ingest_get_record_and_offline_parquet(session):
    import pandas as pd
    from sagemaker.feature_store.feature_group import FeatureGroup

    now = round(time.time(), 3)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(20)], "age": list(range(20)),
                          "score": [i / 4 for i in range(20)], "event_time": [now] * 20})
    frame["customer_id"] = frame["customer_id"].astype("string")
    group = FeatureGroup(name=unique("sdk-fg"), sagemaker_session=session)
    definitions = group.load_feature_definitions(frame)
    assert [(d.feature_name, d.feature_type.value) for d in definitions] == [
        ("customer_id", "String"), ("age", "Integral"), ("score", "Fractional"), ("event_time", "Fractional")]
    group.create(s3_uri=f"s3://{BUCKET}/offline", record_identifier_name="customer_id",
                 event_time_feature_name="event_time", role_arn=ROLE, enable_online_store=True)
    wait_until(lambda: group.describe()["FeatureGroupStatus"] == "Created", timeout=10, what="Created")

    manager = group.ingest(frame, max_workers=4, wait=True)
    assert manager.failed_rows == []
    record = group.get_record("c7")
    assert {v["FeatureName"]: v["ValueAsString"] for v in record} == {
        "customer_id": "c7", "age": "7", "score": "1.75", "event_time": str(now)}
    assert group.get_record("c7", feature_names=["age"]) == [{"FeatureName": "age", "ValueAsString": "7"}]

    s3 = session.boto_session.client("s3")
    resolved = group.describe()["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    prefix = resolved.split(f"s3://{BUCKET}/", 1)[1]

    def offline_rows():
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        frames = [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())) for key in keys]
        return [pd.concat(frames)] if frames and sum(len(f) for f in frames) == 20 else None

    stored = wait_until(offline_rows, timeout=60, interval=1, what="20 records in the offline store")[0]
    stored = stored.sort_values("age").reset_index(drop=True)
    assert list(stored["customer_id"]) == list(frame["customer_id"])
    assert list(stored["score"]) == list(frame["score"]) and not stored["is_deleted"].any()
    assert str(stored["age"].dtype) == "int64"

    query = group.athena_query()  # answered locally (DuckDB over the offline store's Parquet files)
    assert query.database == "sagemaker_featurestore"
    query.run(f'SELECT customer_id, age, is_deleted FROM "{query.table_name}" WHERE age >= 15 ORDER BY age',
              output_location=f"s3://{BUCKET}/athena")
    query.wait()
    answer = query.as_dataframe()
    assert list(answer["customer_id"]) == [f"c{i}" for i in range(15, 20)] and list(answer["age"]) == [15, 16, 17,
                                                                                                      18, 19]
    assert not answer["is_deleted"].any()
    query.run(f'SELECT no_such_column FROM "{query.table_name}"', output_location=f"s3://{BUCKET}/athena")
    query.wait()
    execution = query.get_query_execution()["QueryExecution"]
    assert execution["Status"]["State"] == "FAILED" and "no_such_column" in execution["Status"]["StateChangeReason"]
    with pytest.raises(RuntimeError, match="Failed to execute query"):
        query.as_dataframe()


def test_sdk_iceberg_group_ingest_and_athena(session, sagemaker_emulator):
    """table_format=ICEBERG through the SDK: a String event time, the records in the Iceberg table
    (daily partitions), the Glue table pointing at its metadata, and athena_query reading it."""
    import pandas as pd
    from sagemaker.feature_store.feature_group import FeatureGroup
    from sagemaker.feature_store.inputs import TableFormatEnum

    frame = pd.DataFrame({"customer_id": [f"i{i}" for i in range(6)], "age": list(range(6)),
                          "event_time": [f"2024-05-0{1 + i % 2}T12:00:00Z" for i in range(6)]})
    frame = frame.astype({"customer_id": "string", "event_time": "string"})
    group = FeatureGroup(name=unique("sdk-ice"), sagemaker_session=session)
    group.load_feature_definitions(frame)
    group.create(s3_uri=f"s3://{BUCKET}/iceberg", record_identifier_name="customer_id",
                 event_time_feature_name="event_time", role_arn=ROLE, enable_online_store=True,
                 table_format=TableFormatEnum.ICEBERG)
    wait_until(lambda: group.describe()["FeatureGroupStatus"] == "Created", timeout=10, what="Created")
    assert group.ingest(frame, max_workers=2, wait=True).failed_rows == []
    query = group.athena_query()
    query.run(f'SELECT customer_id, age FROM "{query.table_name}" ORDER BY age', output_location=f"s3://{BUCKET}/ice")
    query.wait()
    assert list(query.as_dataframe()["customer_id"]) == [f"i{i}" for i in range(6)]
    catalog = group.describe()["OfflineStoreConfig"]["DataCatalogConfig"]
    table = sagemaker_emulator.client("glue").get_table(DatabaseName=catalog["Database"],
                                                        Name=catalog["TableName"])["Table"]
    assert table["Parameters"]["table_type"] == "ICEBERG" and table["Parameters"]["metadata_location"].startswith(
        table["StorageDescriptor"]["Location"] + "/metadata/")
    resolved = group.describe()["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    keys = [o["Key"] for o in session.boto_session.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=resolved.split(f"s3://{BUCKET}/", 1)[1])["Contents"]]
    assert {key.split("/")[-2] for key in keys} == {"event_time_trunc=2024-05-01", "event_time_trunc=2024-05-02"}
