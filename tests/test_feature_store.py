"""Feature Store through plain boto3: feature groups (validation, lifecycle, listing, updates, metadata),
the featurestore-runtime (put/get/delete/batch, event-time ordering, TTL) and the offline store's
Parquet files and Glue table."""

from __future__ import annotations

import io
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import ROLE, error_of, unique, wait_until

BUCKET = "feature-store-tests"
DEFINITIONS = [{"FeatureName": "customer_id", "FeatureType": "String"},
               {"FeatureName": "event_time", "FeatureType": "Fractional"},
               {"FeatureName": "age", "FeatureType": "Integral"},
               {"FeatureName": "score", "FeatureType": "Fractional"}]


def _request(name: str, **overrides) -> dict:
    request = {"FeatureGroupName": name, "RecordIdentifierFeatureName": "customer_id",
               "EventTimeFeatureName": "event_time", "FeatureDefinitions": DEFINITIONS,
               "OnlineStoreConfig": {"EnableOnlineStore": True}, "RoleArn": ROLE}
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


def _created(sm, name: str, **overrides) -> dict:
    sm.create_feature_group(**_request(name, **overrides))
    return wait_until(lambda: (d := sm.describe_feature_group(FeatureGroupName=name))["FeatureGroupStatus"]
                      == "Created" and d, timeout=10, what=f"feature group {name} Created")


def _record(customer: str, event: float, **values) -> list[dict]:
    record = [{"FeatureName": "customer_id", "ValueAsString": customer},
              {"FeatureName": "event_time", "ValueAsString": repr(event)}]
    return record + [{"FeatureName": k, "ValueAsString": str(v)} for k, v in values.items()]


def _values(record: list[dict]) -> dict:
    return {v["FeatureName"]: v.get("ValueAsString", v.get("ValueAsStringList")) for v in record}


@pytest.fixture(scope="module")
def bucket(s3_client):
    try:
        s3_client.create_bucket(Bucket=BUCKET)
    except ClientError:
        pass
    return BUCKET


@pytest.mark.parametrize("change, wording", [
    ({"RecordIdentifierFeatureName": "nope"}, "must be one of the FeatureDefinitions"),
    ({"EventTimeFeatureName": "age"}, "must be of FeatureType String or Fractional"),
    ({"FeatureDefinitions": DEFINITIONS + [{"FeatureName": "is_deleted", "FeatureType": "String"}]}, "reserved"),
    ({"FeatureDefinitions": DEFINITIONS + [{"FeatureName": "Age", "FeatureType": "String"}]}, "more than once"),
    ({"FeatureDefinitions": DEFINITIONS + [{"FeatureName": "tags", "FeatureType": "String",
                                            "CollectionType": "List"}]}, "StorageType InMemory"),
    ({"OnlineStoreConfig": None}, "needs an online store"),
    ({"OnlineStoreConfig": {"EnableOnlineStore": True, "StorageType": "InMemory"},
      "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/fs"}}}, "cannot have an offline store"),
])
def test_create_validation(sagemaker_client, change, wording):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_feature_group(**_request(unique("fg"), **change))
    code, message, _ = error_of(exc)
    assert code == "ValidationException" and wording in message


def test_botocore_limits_are_enforced(sagemaker_client):
    too_many = [{"FeatureName": f"f{i}", "FeatureType": "String"} for i in range(2501)]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_feature_group(**_request(unique("fg"), FeatureDefinitions=too_many))
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_feature_group(**_request("bad name!"))
    assert error_of(exc)[0] == "ValidationException"


def test_lifecycle_describe_list_delete(sagemaker_client, bucket):
    sm = sagemaker_client
    name = unique("fg-life")
    arn = sm.create_feature_group(**_request(name, OfflineStoreConfig={
        "S3StorageConfig": {"S3Uri": f"s3://{bucket}/life"}}, Tags=[{"Key": "team", "Value": "ml"}]))["FeatureGroupArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:feature-group/{name.lower()}"
    # Creating for CREATE_SECONDS (1 s) after the request: a slow machine may already see Created
    assert sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupStatus"] in ("Creating", "Created")
    with pytest.raises(ClientError) as exc:
        sm.create_feature_group(**_request(name))
    assert error_of(exc)[0] == "ResourceInUse"
    described = wait_until(lambda: (d := sm.describe_feature_group(FeatureGroupName=arn))["FeatureGroupStatus"]
                           == "Created" and d, timeout=10)
    created = int(described["CreationTime"].timestamp())
    s3 = described["OfflineStoreConfig"]["S3StorageConfig"]
    assert s3["ResolvedOutputS3Uri"] == (f"s3://{bucket}/life/123456789012/sagemaker/us-east-1/offline-store/"
                                         f"{name}-{created}/data")
    assert described["OfflineStoreConfig"]["DataCatalogConfig"] == {
        "TableName": f"{name}_{created}".lower().replace("-", "_"), "Catalog": "AwsDataCatalog",
        "Database": "sagemaker_featurestore"}
    assert described["OfflineStoreStatus"] == {"Status": "Active"}
    assert described["OnlineStoreConfig"] == {"EnableOnlineStore": True, "StorageType": "Standard"}
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    names = [s["FeatureGroupName"] for s in sm.list_feature_groups(NameContains=name)["FeatureGroupSummaries"]]
    assert names == [name]
    sm.delete_feature_group(FeatureGroupName=name)
    assert sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupStatus"] == "Deleting"
    with pytest.raises(ClientError) as exc:
        wait_until(lambda: sm.describe_feature_group(FeatureGroupName=name) and False, timeout=5)
    code, message, _ = error_of(exc)
    assert code == "ResourceNotFound" and name in message
    with pytest.raises(ClientError) as exc:
        sm.delete_feature_group(FeatureGroupName=name)
    assert error_of(exc)[0] == "ResourceNotFound"


def test_list_filters_sorting_and_pages(sagemaker_client, bucket):
    sm = sagemaker_client
    prefix = unique("fg-list")
    names = [f"{prefix}-{i}" for i in range(3)]
    for i, name in enumerate(names):
        extra = {"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": f"s3://{bucket}/l"},
                                        "DisableGlueTableCreation": True}} if i == 1 else {}
        _created(sm, name, **extra)
    listed = sm.list_feature_groups(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    assert [s["FeatureGroupName"] for s in listed["FeatureGroupSummaries"]] == names
    pages, token = [], None
    while True:
        page = sm.list_feature_groups(NameContains=prefix, MaxResults=2, **({"NextToken": token} if token else {}))
        pages.append([s["FeatureGroupName"] for s in page["FeatureGroupSummaries"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [names[::-1][:2], names[::-1][2:]]  # newest first by default
    active = sm.list_feature_groups(NameContains=prefix, OfflineStoreStatusEquals="Active")["FeatureGroupSummaries"]
    assert [s["FeatureGroupName"] for s in active] == [names[1]]
    assert sm.list_feature_groups(NameContains=prefix, FeatureGroupStatusEquals="Creating")[
        "FeatureGroupSummaries"] == []


def test_update_features_ttl_and_metadata(sagemaker_client, sagemaker_featurestore_runtime_client):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-upd")
    _created(sm, name)
    with pytest.raises(ClientError) as exc:
        sm.update_feature_group(FeatureGroupName=name, FeatureAdditions=[{"FeatureName": "AGE",
                                                                          "FeatureType": "String"}])
    assert "already exists" in error_of(exc)[1]
    sm.update_feature_group(FeatureGroupName=name, FeatureAdditions=[{"FeatureName": "city", "FeatureType": "String"}],
                            OnlineStoreConfig={"TtlDuration": {"Unit": "Seconds", "Value": 1}})
    described = sm.describe_feature_group(FeatureGroupName=name)
    assert described["FeatureDefinitions"][-1] == {"FeatureName": "city", "FeatureType": "String"}
    assert described["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Seconds", "Value": 1}
    assert described["LastUpdateStatus"] == {"Status": "Successful"}
    now = time.time()
    fs.put_record(FeatureGroupName=name, Record=_record("c1", now, city="Oslo"))
    got = fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c1", ExpirationTimeResponse="Enabled")
    assert _values(got["Record"])["city"] == "Oslo" and got["ExpiresAt"].endswith("Z")
    wait_until(lambda: "Record" not in fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c1"),
               timeout=5, what="the record to expire")
    fs.put_record(FeatureGroupName=name, Record=_record("c2", time.time()), TtlDuration={"Unit": "Hours", "Value": 1})
    assert "Record" in fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c2")
    sm.update_feature_metadata(FeatureGroupName=name, FeatureName="age", Description="years",
                               ParameterAdditions=[{"Key": "unit", "Value": "y"}, {"Key": "pii", "Value": "no"}])
    sm.update_feature_metadata(FeatureGroupName=name, FeatureName="age", ParameterRemovals=["pii"])
    meta = sm.describe_feature_metadata(FeatureGroupName=name, FeatureName="age")
    assert (meta["Description"], meta["Parameters"], meta["FeatureType"]) == ("years", [{"Key": "unit",
                                                                                         "Value": "y"}], "Integral")
    with pytest.raises(ClientError) as exc:
        sm.describe_feature_metadata(FeatureGroupName=name, FeatureName="missing")
    assert error_of(exc)[0] == "ResourceNotFound"


def test_put_get_delete_semantics(sagemaker_client, sagemaker_featurestore_runtime_client):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-rt")
    _created(sm, name)
    fs.put_record(FeatureGroupName=name, Record=_record("a", 100.0, age=30, score=0.5))
    fs.put_record(FeatureGroupName=name, Record=_record("a", 50.0, age=99))  # older: historic, offline only
    got = fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")
    assert _values(got["Record"]) == {"customer_id": "a", "event_time": "100.0", "age": "30", "score": "0.5"}
    only = fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", FeatureNames=["age", "score"])
    assert _values(only["Record"]) == {"age": "30", "score": "0.5"}
    arn = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"]  # by ARN (its "/" is %2F-encoded)
    assert fs.get_record(FeatureGroupName=arn, RecordIdentifierValueAsString="a")["Record"] == got["Record"]
    assert "Record" not in fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="nobody")
    for bad, wording in ((_record("a", 1.0, age="x"), "not a valid Integral"),
                         (_record("a", 1.0, nope=1), "not defined"),
                         ([{"FeatureName": "customer_id", "ValueAsString": "a"}], "event time"),
                         ([{"FeatureName": "event_time", "ValueAsString": "1.0"}], "record identifier")):
        with pytest.raises(ClientError) as exc:
            fs.put_record(FeatureGroupName=name, Record=bad)
        code, message, status = error_of(exc)
        assert (code, status) == ("ValidationError", 400) and wording in message
    with pytest.raises(ClientError) as exc:
        fs.get_record(FeatureGroupName=unique("missing"), RecordIdentifierValueAsString="a")
    assert error_of(exc)[0] == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        fs.put_record(FeatureGroupName=name, Record=_record("a", 1.0), TargetStores=["OfflineStore"])
    assert "not enabled" in error_of(exc)[1]
    # soft delete: hidden until a newer put; a hard delete older than the record is refused
    fs.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", EventTime="200")
    assert "Record" not in fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")
    fs.put_record(FeatureGroupName=name, Record=_record("a", 150.0, age=1))
    assert "Record" not in fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")
    fs.put_record(FeatureGroupName=name, Record=_record("a", 300.0, age=2))
    assert _values(fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")["Record"])["age"] == "2"
    with pytest.raises(ClientError) as exc:
        fs.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", EventTime="250",
                         DeletionMode="HardDelete")
    assert error_of(exc)[0] == "ValidationError"
    fs.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", EventTime="301",
                     DeletionMode="HardDelete")
    fs.put_record(FeatureGroupName=name, Record=_record("a", 10.0, age=3))  # after a hard delete any put lands
    assert _values(fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")["Record"])["age"] == "3"


def test_string_event_time_and_batch_get(sagemaker_client, sagemaker_featurestore_runtime_client):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-batch")
    definitions = [{"FeatureName": "id", "FeatureType": "Integral"}, {"FeatureName": "ts", "FeatureType": "String"},
                   {"FeatureName": "v", "FeatureType": "Fractional"}]
    _created(sm, name, FeatureDefinitions=definitions, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts")
    with pytest.raises(ClientError) as exc:
        fs.put_record(FeatureGroupName=name, Record=[{"FeatureName": "id", "ValueAsString": "1"},
                                                     {"FeatureName": "ts", "ValueAsString": "2024-01-01 00:00:00"}])
    assert "supported format" in error_of(exc)[1]
    for i in range(3):
        fs.put_record(FeatureGroupName=name, Record=[{"FeatureName": "id", "ValueAsString": str(i)},
                                                     {"FeatureName": "ts", "ValueAsString": "2024-01-01T00:00:00.123Z"},
                                                     {"FeatureName": "v", "ValueAsString": str(i / 2)}])
    missing = unique("missing")
    answer = fs.batch_get_record(Identifiers=[
        {"FeatureGroupName": name, "RecordIdentifiersValueAsString": ["0", "2", "9"], "FeatureNames": ["v"]},
        {"FeatureGroupName": missing, "RecordIdentifiersValueAsString": ["1"]}])
    assert [(r["RecordIdentifierValueAsString"], r["Record"]) for r in answer["Records"]] == [
        ("0", [{"FeatureName": "v", "ValueAsString": "0.0"}]), ("2", [{"FeatureName": "v", "ValueAsString": "1.0"}])]
    assert [(e["FeatureGroupName"], e["ErrorCode"]) for e in answer["Errors"]] == [(missing, "ResourceNotFound")]
    assert answer["UnprocessedIdentifiers"] == []


def test_offline_store_parquet_and_glue(sagemaker_client, sagemaker_featurestore_runtime_client, s3_client,
                                        sagemaker_emulator, bucket):
    import pandas as pd

    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-off")
    described = _created(sm, name, OfflineStoreConfig={
        "S3StorageConfig": {"S3Uri": f"s3://{bucket}/offline"},
        "DataCatalogConfig": {"TableName": f"t_{name}".replace("-", "_"), "Catalog": "AwsDataCatalog",
                              "Database": "my_features"}})
    event = 1704074400.0  # 2024-01-01T02:00:00Z
    fs.put_record(FeatureGroupName=name, Record=_record("x", event, age=7, score=1.5))
    fs.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="x", EventTime=repr(event + 60))
    prefix = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].split(f"{bucket}/", 1)[1]

    def files():
        return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]

    keys = wait_until(files, timeout=60, what="the offline store's Parquet files")
    assert all(key.startswith(f"{prefix}/year=2024/month=01/day=01/hour=02/") and key.endswith(".parquet")
               for key in keys)
    frame = pd.concat(pd.read_parquet(io.BytesIO(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()))
                      for key in keys).sort_values("event_time")
    assert list(frame["customer_id"]) == ["x", "x"] and list(frame["is_deleted"]) == [False, True]
    assert frame["age"].iloc[0] == 7 and pd.isna(frame["age"].iloc[1])
    assert {"write_time", "api_invocation_time"} <= set(frame.columns)
    glue = sagemaker_emulator.client("glue")
    table = glue.get_table(DatabaseName="my_features", Name=f"t_{name}".replace("-", "_"))["Table"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns["age"] == "bigint" and columns["is_deleted"] == "boolean"
    assert table["StorageDescriptor"]["Location"] == described["OfflineStoreConfig"]["S3StorageConfig"][
        "ResolvedOutputS3Uri"]


def test_records_outbox_and_glue_table_survive_kill(tmp_path):
    """The online store is durable in the data dir; a put whose Parquet file was not yet written when the
    server was killed is written after the restart; the Glue table (moto keeps it in memory) comes back."""
    from sagemaker_emulator.testing import EmulatorServer

    with EmulatorServer(data_dir=tmp_path) as server:
        sm, fs, s3 = (server.client(s) for s in ("sagemaker", "sagemaker-featurestore-runtime", "s3"))
        s3.create_bucket(Bucket="durable")
        name = unique("fg-durable")
        described = _created(sm, name, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://durable/fs"}})
        fs.put_record(FeatureGroupName=name, Record=_record("k", time.time(), age=5))
        server.stop(kill=True)  # before the flusher's next round (every 3 s)
        server.start()
        sm, fs, s3 = (server.client(s) for s in ("sagemaker", "sagemaker-featurestore-runtime", "s3"))
        got = fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="k")
        assert _values(got["Record"])["age"] == "5"
        prefix = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].split("durable/", 1)[1]
        wait_until(lambda: s3.list_objects_v2(Bucket="durable", Prefix=prefix).get("KeyCount"), timeout=60,
                   what="the pending record's Parquet file after the restart")
        catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
        table = server.client("glue").get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]][:2] == ["customer_id", "event_time"]


def test_athena_on_other_tables_still_reaches_moto(sagemaker_emulator):
    athena = sagemaker_emulator.client("athena")
    started = athena.start_query_execution(QueryString="SELECT 1 FROM unrelated_table",
                                           ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena/"})
    assert athena.get_query_execution(QueryExecutionId=started["QueryExecutionId"])["QueryExecution"]["Status"][
        "State"] in ("QUEUED", "RUNNING", "SUCCEEDED")


def test_in_memory_collections(sagemaker_client, sagemaker_featurestore_runtime_client):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name = unique("fg-mem")
    _created(sm, name, OnlineStoreConfig={"EnableOnlineStore": True, "StorageType": "InMemory"},
             FeatureDefinitions=DEFINITIONS[:2] + [
                 {"FeatureName": "tags", "FeatureType": "String", "CollectionType": "Set"},
                 {"FeatureName": "embedding", "FeatureType": "Fractional", "CollectionType": "Vector",
                  "CollectionConfig": {"VectorConfig": {"Dimension": 3}}}])
    base = _record("m", 1.0)
    fs.put_record(FeatureGroupName=name, Record=base + [
        {"FeatureName": "tags", "ValueAsStringList": ["a", "b"]},
        {"FeatureName": "embedding", "ValueAsStringList": ["0.1", "0.2", "0.3"]}])
    got = _values(fs.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="m")["Record"])
    assert got["tags"] == ["a", "b"] and got["embedding"] == ["0.1", "0.2", "0.3"]
    for bad, wording in (({"FeatureName": "embedding", "ValueAsStringList": ["0.1"]}, "dimension 3"),
                         ({"FeatureName": "tags", "ValueAsStringList": ["a", "a"]}, "unique"),
                         ({"FeatureName": "tags", "ValueAsString": "a"}, "ValueAsStringList")):
        with pytest.raises(ClientError) as exc:
            fs.put_record(FeatureGroupName=name, Record=base + [bad])
        assert wording in error_of(exc)[1]


def test_offline_store_blocked_until_the_bucket_exists(sagemaker_client, sagemaker_featurestore_runtime_client,
                                                        s3_client):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    name, missing = unique("fg-blocked"), unique("no-bucket")
    _created(sm, name, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{missing}/x"},
                                           "DisableGlueTableCreation": True})
    fs.put_record(FeatureGroupName=name, Record=_record("b", time.time()))
    blocked = wait_until(lambda: (s := sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreStatus"])[
        "Status"] == "Blocked" and s, timeout=30, what="OfflineStoreStatus Blocked")
    assert "NoSuchBucket" in blocked["BlockedReason"]
    s3_client.create_bucket(Bucket=missing)
    wait_until(lambda: s3_client.list_objects_v2(Bucket=missing).get("KeyCount"), timeout=30,
               what="the record written once the bucket exists")
    assert sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreStatus"] == {"Status": "Active"}


def test_athena_over_the_offline_store(sagemaker_client, sagemaker_featurestore_runtime_client,
                                       sagemaker_emulator, s3_client, bucket):
    sm, fs = sagemaker_client, sagemaker_featurestore_runtime_client
    athena = sagemaker_emulator.client("athena")
    name = unique("fg-athena")
    catalog = _created(sm, name, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/athena-fs"}})[
        "OfflineStoreConfig"]["DataCatalogConfig"]
    sql = f'SELECT customer_id, score FROM "{catalog["Database"]}"."{catalog["TableName"]}" ORDER BY score'

    def query(text: str, **extra) -> dict:
        run = athena.start_query_execution(QueryString=text, **extra)["QueryExecutionId"]
        return athena.get_query_execution(QueryExecutionId=run)["QueryExecution"]

    output = {"ResultConfiguration": {"OutputLocation": f"s3://{bucket}/athena-out/"}}
    empty = query(sql, **output)  # no record yet: the table's columns, no rows
    assert empty["Status"]["State"] == "SUCCEEDED"
    key = empty["ResultConfiguration"]["OutputLocation"].split(f"{bucket}/", 1)[1]
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == b'"customer_id","score"\n'
    fs.put_record(FeatureGroupName=name, Record=_record("p", time.time(), score=2.5))
    fs.put_record(FeatureGroupName=name, Record=_record("q", time.time()))  # score null
    done = query(sql, **output)  # pending records are flushed first: no wait for the flusher
    rows = athena.get_query_results(QueryExecutionId=done["QueryExecutionId"])["ResultSet"]["Rows"]
    assert [[d.get("VarCharValue") for d in r["Data"]] for r in rows] == [["customer_id", "score"], ["p", "2.5"],
                                                                           ["q", None]]
    key = done["ResultConfiguration"]["OutputLocation"].split(f"{bucket}/", 1)[1]
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == b'"customer_id","score"\n"p","2.5"\n"q",\n'
    with pytest.raises(ClientError) as exc:
        athena.start_query_execution(QueryString=sql)
    assert error_of(exc)[0] == "InvalidRequestException" and "output location" in error_of(exc)[1]
    # the SQL reaches no host file, even through a table name built to break out of its quotes
    escape = query(f"SELECT * FROM read_csv('/etc/passwd') JOIN {catalog['TableName']} ON true", **output)
    assert escape["Status"]["State"] == "FAILED" and "PermissionException" in escape["Status"]["StateChangeReason"]
    sneaky = unique("fg-sneaky")
    table = "t\" AS SELECT * FROM read_csv('/etc/passwd') --"
    _created(sm, sneaky, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/sneaky"},
                                             "DataCatalogConfig": {"TableName": table, "Catalog": "AwsDataCatalog",
                                                                   "Database": "sneaky"}})
    quoted = table.replace('"', '""')
    run = query(f'SELECT * FROM sneaky."{quoted}"', **output)
    rows = athena.get_query_results(QueryExecutionId=run["QueryExecutionId"])["ResultSet"]["Rows"]
    assert "root" not in str(rows) and [d["VarCharValue"] for d in rows[0]["Data"]][:2] == ["customer_id",
                                                                                               "event_time"]
