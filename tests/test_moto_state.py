"""The embedded moto services keep their state across a clean restart and a kill -9 (aws/moto_state.py).

Each test runs its own server subprocess on a fresh data dir, writes to IAM, SQS, CloudWatch, SNS,
DynamoDB, Glue, Secrets Manager, Lambda and STS, stops it (SIGTERM, or SIGKILL 1.5 s after the last
change) and checks, after the start on the same data dir, that everything reads back as before.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from sagemaker_emulator.aws import moto_state
from sagemaker_emulator.testing import EmulatorServer

from .helpers import unique

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


def _lambda_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return out.getvalue()


def write_everything(server: EmulatorServer) -> dict:
    """One change in each service; returns the names to look for afterwards."""
    names = {k: unique(k) for k in ("role", "policy", "queue", "alarm", "ns", "topic", "table", "db", "secret", "fn")}
    iam = server.client("iam")
    role_arn = iam.create_role(RoleName=names["role"], AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    policy_arn = iam.create_policy(PolicyName=names["policy"], PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=names["role"], PolicyArn=policy_arn)
    names["role_arn"], names["policy_arn"] = role_arn, policy_arn

    sqs = server.client("sqs")
    queue_url = sqs.create_queue(QueueName=names["queue"])["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"message-{i}")
    names["queue_url"] = queue_url

    cw = server.client("cloudwatch")
    cw.put_metric_data(Namespace=names["ns"], MetricData=[
        {"MetricName": "loss", "Value": float(v), "Timestamp": datetime.now(timezone.utc)} for v in (1, 2, 3)])
    cw.put_metric_alarm(AlarmName=names["alarm"], Namespace=names["ns"], MetricName="loss", Statistic="Average",
                        Period=60, EvaluationPeriods=1, Threshold=2.0, ComparisonOperator="GreaterThanThreshold")

    sns = server.client("sns")
    topic_arn = sns.create_topic(Name=names["topic"])["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs",
                  Endpoint=f"arn:aws:sqs:us-east-1:123456789012:{names['queue']}")
    names["topic_arn"] = topic_arn

    ddb = server.client("dynamodb")
    ddb.create_table(TableName=names["table"], KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=names["table"], Item={"k": {"S": "one"}, "v": {"N": "1"}})

    server.client("glue").create_database(DatabaseInput={"Name": names["db"]})
    server.client("secretsmanager").create_secret(Name=names["secret"], SecretString="s3cret")
    server.client("lambda").create_function(FunctionName=names["fn"], Runtime="python3.11", Role=role_arn,
                                            Handler="handler.handler", Code={"ZipFile": _lambda_zip()})
    return names


def check_everything(server: EmulatorServer, names: dict) -> None:
    iam = server.client("iam")
    assert iam.get_role(RoleName=names["role"])["Role"]["Arn"] == names["role_arn"]
    attached = iam.list_attached_role_policies(RoleName=names["role"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [names["policy_arn"]]
    assert server.client("sts").assume_role(RoleArn=names["role_arn"], RoleSessionName="after-restart")["Credentials"]

    sqs = server.client("sqs")
    url = sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"]  # the port is new: the path is the same
    assert url.split("/", 3)[3] == names["queue_url"].split("/", 3)[3]
    names["queue_url"] = url
    bodies = set()
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies.add(message["Body"])
        if len(bodies) >= 3:
            break
    assert bodies == {"message-0", "message-1", "message-2"}

    cw = server.client("cloudwatch")
    alarms = cw.describe_alarms(AlarmNames=[names["alarm"]])["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == [names["alarm"]]
    now = datetime.now(timezone.utc)
    stats = cw.get_metric_statistics(Namespace=names["ns"], MetricName="loss", StartTime=now - timedelta(hours=1),
                                     EndTime=now + timedelta(minutes=5), Period=3600, Statistics=["SampleCount"])
    assert sum(d["SampleCount"] for d in stats["Datapoints"]) == 3

    subscriptions = server.client("sns").list_subscriptions_by_topic(TopicArn=names["topic_arn"])["Subscriptions"]
    assert [s["Protocol"] for s in subscriptions] == ["sqs"]
    item = server.client("dynamodb").get_item(TableName=names["table"], Key={"k": {"S": "one"}})["Item"]
    assert item["v"] == {"N": "1"}
    assert server.client("glue").get_database(Name=names["db"])["Database"]["Name"] == names["db"]
    secret = server.client("secretsmanager").get_secret_value(SecretId=names["secret"])
    assert secret["SecretString"] == "s3cret"
    assert server.client("lambda").get_function(FunctionName=names["fn"])["Configuration"]["Role"] == names["role_arn"]


@pytest.mark.parametrize("kill", [False, True], ids=["clean-restart", "kill-9"])
def test_embedded_services_survive_a_restart(tmp_path, kill):
    with EmulatorServer(data_dir=tmp_path) as server:
        names = write_everything(server)
        if kill:
            time.sleep(1.5)  # a kill -9 may lose at most the last second of changes
        server.stop(kill=kill)
        server.start()
        check_everything(server, names)
        # and what changes after the restart is kept as well
        server.client("sqs").purge_queue(QueueUrl=names["queue_url"])
        time.sleep(1.5)
        server.stop(kill=True)
        server.start()
        sqs = server.client("sqs")
        url = sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"]
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
        assert server.client("iam").get_role(RoleName=names["role"])


def test_sns_to_sqs_delivery_is_kept(tmp_path):
    """A write to one service that lands in another's state (SNS delivering into SQS) is saved too."""
    with EmulatorServer(data_dir=tmp_path) as server:
        sns, sqs = server.client("sns"), server.client("sqs")
        queue = unique("q")
        url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        topic = sns.create_topic(Name=unique("t"))["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                      Attributes={"RawMessageDelivery": "true"})
        sns.publish(TopicArn=topic, Message="hello")
        time.sleep(1.5)
        server.stop(kill=True)
        server.start()
        sqs = server.client("sqs")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert [m["Body"] for m in messages] == ["hello"]


def test_snapshot_cost_and_unpicklable_state(tmp_path):
    """In-process: the snapshot of a few hundred IAM roles and SQS messages is cheap, and what pickle
    cannot carry (locks, a closure-made defaultdict) comes back working."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        ecr = boto3.client("ecr", region_name="us-east-1")  # its backend holds an RLock
        ssm = boto3.client("ssm", region_name="us-east-1")  # a defaultdict made by a lambda
        for i in range(200):
            iam.create_role(RoleName=f"role-{i}", AssumeRolePolicyDocument=TRUST)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for i in range(300):
            sqs.send_message(QueueUrl=url, MessageBody=str(i))
        ecr.create_repository(repositoryName="repo")
        ssm.put_parameter(Name="p", Value="v", Type="String")
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="p", Tags=[{"Key": "a", "Value": "b"}])

        state = moto_state.MotoState(tmp_path / "state.pickle")
        state.mark_dirty()
        state.snapshot()
        first = state.last_snapshot_seconds
        state.mark_dirty("sqs")
        state.snapshot()
        print(f"snapshot: first {first * 1000:.1f} ms, again {state.last_snapshot_seconds * 1000:.1f} ms, "
              f"{(tmp_path / 'state.pickle').stat().st_size} bytes")
        assert state.last_snapshot_seconds < 0.5

    with mock_aws():  # a fresh moto: empty until restored
        iam = boto3.client("iam", region_name="us-east-1")
        assert iam.list_roles()["Roles"] == []
        assert moto_state.MotoState(tmp_path / "state.pickle").restore() > 0
        assert len(iam.list_roles(MaxItems=1000)["Roles"]) == 200
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "300"
        assert sqs.receive_message(QueueUrl=url)["Messages"]  # the queue's lock works
        ecr = boto3.client("ecr", region_name="us-east-1")
        assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["repo"]
        ssm = boto3.client("ssm", region_name="us-east-1")
        assert ssm.get_parameter(Name="p")["Parameter"]["Value"] == "v"
        ssm.put_parameter(Name="p2", Value="w", Type="String")
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="p2", Tags=[{"Key": "c", "Value": "d"}])
        assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="p2")["TagList"]


def test_a_backend_that_will_not_load_is_kept(tmp_path):
    """A saved backend that cannot be restored (say, moto changed) is not overwritten by an empty one."""
    import pickle

    from moto import mock_aws

    path = tmp_path / "state.pickle"
    bogus = ("moto.nowhere.models", "nowhere_backends", "123456789012", "us-east-1")
    path.write_bytes(pickle.dumps({"format": moto_state.FORMAT, "backends": {bogus: b"not a pickle"}}))
    with mock_aws():
        state = moto_state.MotoState(path)
        assert state.restore() == 0
        state.mark_dirty()
        state.snapshot()
    assert pickle.loads(path.read_bytes())["backends"][bogus] == b"not a pickle"
