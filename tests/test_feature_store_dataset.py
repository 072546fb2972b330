"""The SDK v2's DatasetBuilder (FeatureStore.create_dataset): the point-in-time SQL it writes for
Athena, answered locally over the offline store, from a feature group and from a DataFrame."""

from __future__ import annotations

import time

from .helpers import ROLE, unique, wait_until
from .test_feature_store_sdk import BUCKET, session  # noqa: F401  (the module's SDK session fixture)


def _group(session, frame, name):  # noqa: F811
    from sagemaker.feature_store.feature_group import FeatureGroup

    group = FeatureGroup(name=name, sagemaker_session=session)
    group.load_feature_definitions(frame)
    group.create(s3_uri=f"s3://{BUCKET}/dataset", record_identifier_name="customer_id",
                 event_time_feature_name="event_time", role_arn=ROLE, enable_online_store=False)
    wait_until(lambda: group.describe()["FeatureGroupStatus"] == "Created", timeout=10, what="Created")
    group.ingest(frame, max_workers=2, wait=True)
    return group


def test_dataset_builder_from_a_feature_group(session):  # noqa: F811
    import pandas as pd
    from sagemaker.feature_store.feature_store import FeatureStore

    now = round(time.time(), 3)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(6)], "age": list(range(6)),
                          "event_time": [now - 10] * 6})
    frame["customer_id"] = frame["customer_id"].astype("string")
    group = _group(session, frame, unique("ds-fg"))
    newer = frame.iloc[:2].copy()
    newer["age"] = [100, 101]
    newer["event_time"] = [now, now]
    group.ingest(newer, max_workers=1, wait=True)
    store = FeatureStore(sagemaker_session=session)
    out = f"s3://{BUCKET}/dataset-out"
    # every version with its own event time (the SDK deduplicates equal event times only)
    dataset, _query = store.create_dataset(base=group, output_path=out).to_dataframe()
    versions = sorted(zip(dataset["customer_id"], dataset["age"], strict=True))
    assert versions == [("c0", 0), ("c0", 100), ("c1", 1), ("c1", 101), ("c2", 2), ("c3", 3), ("c4", 4), ("c5", 5)]
    latest, _query = (store.create_dataset(base=group, output_path=out)
                      .with_number_of_recent_records_by_record_identifier(1).to_dataframe())
    assert dict(zip(latest["customer_id"], latest["age"], strict=True)) == {
        "c0": 100, "c1": 101, "c2": 2, "c3": 3, "c4": 4, "c5": 5}
    # a DataFrame of (customer, time) joined with the group as of each time
    base = pd.DataFrame({"customer_id": ["c0", "c1", "c2"], "event_time": [now - 5, now + 5, now + 5]})
    base["customer_id"] = base["customer_id"].astype(object)  # the SDK maps only "object" to STRING
    joined, _query = (store.create_dataset(base=base, record_identifier_feature_name="customer_id",
                                           event_time_identifier_feature_name="event_time", output_path=out)
                      .with_feature_group(group, "customer_id", included_feature_names=["age"])
                      .point_in_time_accurate_join().to_dataframe())
    # each base row with every version at or before its time ("age.1": the SDK's name for the joined column)
    assert sorted(zip(joined["customer_id"], joined["age.1"], strict=True)) == [
        ("c0", 0), ("c1", 1), ("c1", 101), ("c2", 2)]


def _query(athena, sql: str, database: str = "default") -> dict:
    run = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": database},
                                       ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-ddl/"})
    return athena.get_query_execution(QueryExecutionId=run["QueryExecutionId"])["QueryExecution"]


def test_create_external_table_and_query_it(sagemaker_emulator, session):  # noqa: F811
    """Athena DDL creates the Glue table over S3 files, a query reads them; AWS's failures for a table
    that exists and a database that does not."""
    s3, glue, athena = (sagemaker_emulator.client(name) for name in ("s3", "glue", "athena"))
    database, table = unique("ddl_db").replace("-", "_"), unique("t").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    s3.put_object(Bucket=BUCKET, Key=f"ddl/{table}/part-1.csv", Body=b"a|1|x\nb|2|y\n")
    s3.put_object(Bucket=BUCKET, Key=f"ddl/{table}/_SUCCESS", Body=b"")  # Athena skips names starting with _
    ddl = (f"CREATE EXTERNAL TABLE {table} (name STRING, n INT, tag STRING) ROW FORMAT DELIMITED FIELDS "
           f"TERMINATED BY '|' LOCATION 's3://{BUCKET}/ddl/{table}/'")
    created = _query(athena, ddl, database)
    assert created["Status"]["State"] == "SUCCEEDED" and created["StatementType"] == "DDL"
    assert athena.get_query_results(QueryExecutionId=created["QueryExecutionId"])["ResultSet"]["Rows"] == []
    described = glue.get_table(DatabaseName=database, Name=table)["Table"]
    assert [c["Name"] for c in described["StorageDescriptor"]["Columns"]] == ["name", "n", "tag"]
    assert described["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/ddl/{table}/"
    selected = _query(athena, f"SELECT name, n * 10 AS n10 FROM {table} ORDER BY n", database)
    assert selected["Status"]["State"] == "SUCCEEDED", selected["Status"]
    rows = athena.get_query_results(QueryExecutionId=selected["QueryExecutionId"])["ResultSet"]["Rows"]
    assert [[d.get("VarCharValue") for d in r["Data"]] for r in rows] == [["name", "n10"], ["a", "10"], ["b", "20"]]
    again = _query(athena, ddl, database)
    assert again["Status"]["State"] == "FAILED" and "already exists" in again["Status"]["StateChangeReason"]
    assert _query(athena, ddl.replace("EXTERNAL TABLE", "EXTERNAL TABLE IF NOT EXISTS"), database)["Status"][
        "State"] == "SUCCEEDED"
    missing = _query(athena, ddl.replace(f"TABLE {table}", f"TABLE no_such_db_x.{table}"), database)
    assert missing["Status"]["State"] == "FAILED" and "Database does not exist" in missing["Status"][
        "StateChangeReason"]
