"""CloudWatch Logs served by the emulator, through boto3's logs client."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, sdk_style_tail, unique


@pytest.fixture
def group(logs_client) -> str:
    name = "/test/" + unique("group")
    logs_client.create_log_group(logGroupName=name)
    return name


BASE = int(time.time() * 1000) - 3_600_000  # events an hour old: AWS refuses those over 14 days old


def put(logs_client, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Put `events`, their timestamps counted from BASE."""
    logs_client.put_log_events(logGroupName=group, logStreamName=stream,
                               logEvents=[{"timestamp": BASE + ts, "message": m} for ts, m in events])


def test_get_events_forward_to_the_end_and_tail(logs_client, group):
    logs_client.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs_client, group, "s", [(1000 + i, f"line {i}") for i in range(25)])
    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs_client.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, limit=10,
                                          **kwargs)
        if not page["events"]:
            assert page["nextForwardToken"] == token  # the end: same token back
            break
        seen += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
    assert seen == [f"line {i}" for i in range(25)]
    put(logs_client, group, "s", [(2000, "late line")])
    page = logs_client.get_log_events(logGroupName=group, logStreamName="s", nextToken=token)
    assert [e["message"] for e in page["events"]] == ["late line"]


def test_time_window_and_newest_first_default(logs_client, group):
    logs_client.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs_client, group, "s", [(1000 * i, f"m{i}") for i in range(1, 6)])
    window = logs_client.get_log_events(logGroupName=group, logStreamName="s", startTime=BASE + 2000,
                                        endTime=BASE + 4000, startFromHead=True)
    assert [e["message"] for e in window["events"]] == ["m2", "m3"]
    newest = logs_client.get_log_events(logGroupName=group, logStreamName="s", limit=2)
    assert [e["message"] for e in newest["events"]] == ["m4", "m5"]
    assert all({"timestamp", "message", "ingestionTime"} <= set(e) for e in newest["events"])


def test_describe_streams_and_groups(logs_client, group):
    for name, ts in (("job/algo-2-1", 3000), ("job/algo-1-1", 5000), ("other/x", 1000)):
        logs_client.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs_client, group, name, [(ts, "x")])
    by_prefix = logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix="job/")
    assert [s["logStreamName"] for s in by_prefix["logStreams"]] == ["job/algo-1-1", "job/algo-2-1"]
    latest = logs_client.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in latest["logStreams"]] == ["job/algo-1-1", "job/algo-2-1", "other/x"]
    pages = logs_client.get_paginator("describe_log_streams").paginate(logGroupName=group,
                                                                       PaginationConfig={"PageSize": 1})
    assert len([s for p in pages for s in p["logStreams"]]) == 3
    with pytest.raises(ClientError) as exc:
        logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix="job/", orderBy="LastEventTime")
    assert error_of(exc)[0] == "InvalidParameterException"
    groups = logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]


def test_filter_log_events(logs_client, group):
    for stream in ("a", "b"):
        logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
    put(logs_client, group, "a", [(1, "ERROR disk full"), (3, "INFO ok")])
    put(logs_client, group, "b", [(2, "ERROR net down"), (4, "WARN slow")])
    errors = logs_client.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
    assert [(e["logStreamName"], e["message"]) for e in errors] == [("a", "ERROR disk full"), ("b", "ERROR net down")]
    either = logs_client.filter_log_events(logGroupName=group, filterPattern="?WARN ?disk", logStreamNames=["b"])
    assert [e["message"] for e in either["events"]] == ["WARN slow"]
    phrase = logs_client.filter_log_events(logGroupName=group, filterPattern='"net down"')["events"]
    assert [e["message"] for e in phrase] == ["ERROR net down"]
    pages = logs_client.get_paginator("filter_log_events").paginate(logGroupName=group,
                                                                    PaginationConfig={"PageSize": 1})
    assert [e["message"] for p in pages for e in p["events"]] == ["ERROR disk full", "ERROR net down", "INFO ok",
                                                                    "WARN slow"]


def test_errors(logs_client, group):
    with pytest.raises(ClientError) as exc:
        logs_client.create_log_group(logGroupName=group)
    assert error_of(exc)[0] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        logs_client.get_log_events(logGroupName=group, logStreamName="missing")
    assert error_of(exc) == ("ResourceNotFoundException", "The specified log stream does not exist.", 400)
    with pytest.raises(ClientError) as exc:
        logs_client.describe_log_streams(logGroupName="/no/such/group")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    logs_client.delete_log_group(logGroupName=group)
    assert logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


def test_sdk_style_tail_terminates(logs_client, group):
    for host, offset in (("algo-1", 0), ("algo-2", 1)):
        logs_client.create_log_stream(logGroupName=group, logStreamName=f"job/{host}-1")
        put(logs_client, group, f"job/{host}-1", [(10 * i + offset, f"{host} {i}") for i in range(3)])
    assert sdk_style_tail(logs_client, group, "job") == [
        "algo-1 0", "algo-2 0", "algo-1 1", "algo-2 1", "algo-1 2", "algo-2 2"]


def test_put_log_events_batch_rules(logs_client, group):
    logs_client.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)

    def refused(events: list[tuple[int, str]]) -> tuple[str, str, int]:
        with pytest.raises(ClientError) as exc:
            logs_client.put_log_events(logGroupName=group, logStreamName="s",
                                       logEvents=[{"timestamp": ts, "message": m} for ts, m in events])
        return error_of(exc)

    assert refused([(now, "b"), (now - 1, "a")])[:2] == (
        "InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
    code, message, _ = refused([(now, "x" * 600_000), (now, "y" * 600_000)])
    assert code == "InvalidParameterException" and message.startswith("Upload too large: 1200052 bytes")
    assert "cannot span more than 24 hours" in refused([(now - 30 * 3600_000, "a"), (now, "b")])[1]
    reply = logs_client.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": now - 20 * 86400_000, "message": "too old"}, {"timestamp": now - 1000, "message": "kept 1"},
        {"timestamp": now, "message": "kept 2"}, {"timestamp": now + 3 * 3600_000, "message": "too new"}])
    assert reply["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0, "tooNewLogEventStartIndex": 3}
    stored = logs_client.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in stored] == ["kept 1", "kept 2"]
    fine = logs_client.put_log_events(logGroupName=group, logStreamName="s",
                                      logEvents=[{"timestamp": now, "message": "again"}])
    assert "rejectedLogEventsInfo" not in fine


@contextlib.contextmanager
def s3_events_to_log_group(emulator, s3_client, name: str, group: str) -> Iterator[str]:
    """A bucket whose events an EventBridge rule sends to the log group `group`; yields the bucket."""
    events = emulator.client("events")
    bucket = name.lower()
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    pattern = {"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    arn = f"arn:aws:logs:{s3_client.meta.region_name}:123456789012:log-group:{group}"
    events.put_targets(Rule=name, Targets=[{"Id": "logs", "Arn": arn}])
    try:
        yield bucket
    finally:
        events.remove_targets(Rule=name, Ids=["logs"])
        events.delete_rule(Name=name)
        for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=item["Key"])
        s3_client.delete_bucket(Bucket=bucket)


def test_events_written_by_moto_services_land_in_our_logs(sagemaker_emulator, s3_client, logs_client, group, name):
    """S3 -> EventBridge -> a log-group target: the event reaches the Logs API users read (aws/moto_logs.py)."""
    with s3_events_to_log_group(sagemaker_emulator, s3_client, name, group) as bucket:
        s3_client.put_object(Bucket=bucket, Key="data/x.csv", Body=b"1,2\n")
        found = logs_client.filter_log_events(logGroupName=group)["events"]
        details = [json.loads(e["message"]) for e in found]
        assert [(d["detail-type"], d["detail"]["object"]["key"]) for d in details
                if d["detail"]["reason"] == "ObjectCreated"] == [("Object Created", "data/x.csv")]


def test_event_to_a_missing_log_group_does_not_fail_the_put(sagemaker_emulator, s3_client, logs_client, name):
    """A target whose log group does not exist drops the event (moto's writer gets ResourceNotFound), not the PUT."""
    missing = "/nowhere/" + name
    with s3_events_to_log_group(sagemaker_emulator, s3_client, name, missing) as bucket:
        s3_client.put_object(Bucket=bucket, Key="k", Body=b"x")
        assert s3_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
        with pytest.raises(ClientError) as excinfo:
            logs_client.filter_log_events(logGroupName=missing)
        assert error_of(excinfo)[0] == "ResourceNotFoundException"
