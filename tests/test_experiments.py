"""Experiments, trials, trial components, sagemaker-metrics and lineage through plain boto3."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, unique


def _experiment(sm) -> tuple[str, str, str]:
    experiment, trial, component = unique("exp"), unique("trial"), unique("tc")
    sm.create_experiment(ExperimentName=experiment, Description="d")
    sm.create_trial(TrialName=trial, ExperimentName=experiment)
    sm.create_trial_component(TrialComponentName=component, Status={"PrimaryStatus": "InProgress"},
                              Parameters={"lr": {"NumberValue": 0.1}, "opt": {"StringValue": "adam"}})
    sm.associate_trial_component(TrialComponentName=component, TrialName=trial)
    return experiment, trial, component



def assert_not_found(describe, **params) -> None:
    """Describe of a deleted resource answers ResourceNotFound."""
    with pytest.raises(ClientError) as exc:
        describe(**params)
    assert error_of(exc)[0] == "ResourceNotFound"

def test_crud_associations_and_duplicates(sagemaker_client):
    sm = sagemaker_client
    experiment, trial, component = _experiment(sm)
    for call, params in ((sm.create_experiment, {"ExperimentName": experiment}),
                         (sm.create_trial, {"TrialName": trial, "ExperimentName": experiment}),
                         (sm.create_trial_component, {"TrialComponentName": component})):
        with pytest.raises(ClientError) as exc:
            call(**params)
        code, message, _ = error_of(exc)
        assert code == "ValidationException" and "already exists" in message  # the SDK's Run branches on it
    sm.update_experiment(ExperimentName=experiment, DisplayName="shown")
    assert sm.describe_experiment(ExperimentName=experiment)["DisplayName"] == "shown"
    sm.update_trial(TrialName=trial, DisplayName="t")
    assert sm.describe_trial(TrialName=trial)["ExperimentName"] == experiment
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    sm.update_trial_component(TrialComponentName=component, StartTime=start, EndTime=start + dt.timedelta(hours=1),
                              Status={"PrimaryStatus": "Completed"}, Parameters={"epochs": {"NumberValue": 3}},
                              ParametersToRemove=["opt"],
                              OutputArtifacts={"model": {"Value": "s3://b/model.tar.gz",
                                                         "MediaType": "application/x-tar"}})
    got = sm.describe_trial_component(TrialComponentName=component)
    assert got["Parameters"] == {"lr": {"NumberValue": 0.1}, "epochs": {"NumberValue": 3}}
    assert got["Status"]["PrimaryStatus"] == "Completed" and got["StartTime"] == start
    assert got["OutputArtifacts"]["model"]["Value"] == "s3://b/model.tar.gz"
    assert [t["TrialName"] for t in sm.list_trials(ExperimentName=experiment)["TrialSummaries"]] == [trial]
    assert [t["TrialName"] for t in sm.list_trials(TrialComponentName=component)["TrialSummaries"]] == [trial]
    assert [c["TrialComponentName"] for c in sm.list_trial_components(TrialName=trial)
            ["TrialComponentSummaries"]] == [component]
    assert [c["TrialComponentName"] for c in sm.list_trial_components(ExperimentName=experiment)
            ["TrialComponentSummaries"]] == [component]
    assert experiment in [e["ExperimentName"] for e in sm.list_experiments(MaxResults=100)["ExperimentSummaries"]]
    # deletions in AWS's order: a trial with components, an experiment with trials are refused
    for call, params in ((sm.delete_trial_component, {"TrialComponentName": component}),
                         (sm.delete_trial, {"TrialName": trial}),
                         (sm.delete_experiment, {"ExperimentName": experiment})):
        with pytest.raises(ClientError) as exc:
            call(**params)
        assert error_of(exc)[0] == "ValidationException"
    sm.disassociate_trial_component(TrialComponentName=component, TrialName=trial)
    sm.delete_trial_component(TrialComponentName=component)
    sm.delete_trial(TrialName=trial)
    sm.delete_experiment(ExperimentName=experiment)
    assert_not_found(sm.describe_experiment, ExperimentName=experiment)


def test_batch_put_and_get_metrics(sagemaker_client, sagemaker_metrics_client):
    _, _, component = _experiment(sagemaker_client)
    now = time.time()
    values = [0.5 + i / 100 for i in range(25)]
    for start in range(0, 25, 10):
        reply = sagemaker_metrics_client.batch_put_metrics(TrialComponentName=component, MetricData=[
            {"MetricName": "loss", "Value": v, "Step": start + i, "Timestamp": dt.datetime.fromtimestamp(
                now + start + i, dt.timezone.utc)} for i, v in enumerate(values[start:start + 10])])
        assert not reply.get("Errors")
    sagemaker_metrics_client.batch_put_metrics(TrialComponentName=component, MetricData=[
        {"MetricName": "acc", "Value": 1.0, "Timestamp": dt.datetime.now(dt.timezone.utc)}])
    summary = {m["MetricName"]: m for m in sagemaker_client.describe_trial_component(
        TrialComponentName=component)["Metrics"]}
    loss = summary["loss"]
    assert loss["Count"] == 25 and loss["Min"] == values[0] and loss["Max"] == values[-1]
    assert loss["Last"] == values[-1] and loss["Avg"] == pytest.approx(statistics.fmean(values))
    assert loss["StdDev"] == pytest.approx(statistics.stdev(values))
    assert summary["acc"]["Count"] == 1
    arn = sagemaker_client.describe_trial_component(TrialComponentName=component)["TrialComponentArn"]
    got = sagemaker_metrics_client.batch_get_metrics(MetricQueries=[
        {"MetricName": "loss", "ResourceArn": arn, "MetricStat": "Avg", "Period": "IterationNumber",
         "XAxisType": "IterationNumber"},
        {"MetricName": "loss", "ResourceArn": arn, "MetricStat": "Count", "Period": "OneHour",
         "XAxisType": "Timestamp"},
        {"MetricName": "loss", "ResourceArn": arn[:-1] + "z", "MetricStat": "Avg", "Period": "OneHour",
         "XAxisType": "Timestamp"}])["MetricQueryResults"]
    assert got[0]["Status"] == "Complete" and got[0]["XAxisValues"] == list(range(25))
    assert got[0]["MetricValues"] == pytest.approx(values)
    assert sum(got[1]["MetricValues"]) == 25
    assert got[2]["Status"] == "ValidationError"
    with pytest.raises(ClientError):
        sagemaker_metrics_client.batch_put_metrics(TrialComponentName="no-such-component", MetricData=[
            {"MetricName": "loss", "Value": 1.0, "Timestamp": dt.datetime.now(dt.timezone.utc)}])


def test_search_trial_components(sagemaker_client, sagemaker_metrics_client):
    experiment, trial, component = _experiment(sagemaker_client)
    sagemaker_metrics_client.batch_put_metrics(TrialComponentName=component, MetricData=[
        {"MetricName": "acc", "Value": 0.9, "Timestamp": dt.datetime.now(dt.timezone.utc)}])
    def search(*filters, **extra):
        return sagemaker_client.search(Resource="ExperimentTrialComponent", SearchExpression={
            "Filters": list(filters)}, **extra)["Results"]
    hit = search({"Name": "TrialComponentName", "Operator": "Equals", "Value": component},
                 {"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial})
    assert [r["TrialComponent"]["TrialComponentName"] for r in hit] == [component]
    assert hit[0]["TrialComponent"]["Parents"] == [{"TrialName": trial, "ExperimentName": experiment}]
    assert hit[0]["TrialComponent"]["Metrics"][0]["MetricName"] == "acc"
    assert not search({"Name": "TrialComponentName", "Operator": "Equals", "Value": component},
                      {"Name": "Parents.TrialName", "Operator": "Equals", "Value": "other"})
    assert len(search({"Name": "Parents.ExperimentName", "Value": experiment},
                      {"Name": "Metrics.acc.Max", "Operator": "GreaterThanOrEqualTo", "Value": "0.9"},
                      {"Name": "Parameters.lr", "Operator": "LessThan", "Value": "1"})) == 1
    assert not search({"Name": "Parents.ExperimentName", "Value": experiment},
                      {"Name": "Metrics.acc.Max", "Operator": "GreaterThan", "Value": "0.9"})
    assert len(search({"Name": "Parents.ExperimentName", "Operator": "In", "Value": f"x,{experiment}"},
                      {"Name": "EndTime", "Operator": "NotExists"})) == 1
    with pytest.raises(ClientError) as exc:
        sagemaker_client.search(Resource="ExperimentTrialComponent", NextToken="bogus")
    assert error_of(exc)[0] == "ValidationException"


def test_lineage_artifacts_and_associations(sagemaker_client):
    sm = sagemaker_client
    _, _, component = _experiment(sm)
    tc_arn = sm.describe_trial_component(TrialComponentName=component)["TrialComponentArn"]
    artifact = sm.create_artifact(ArtifactName="cm", ArtifactType="ConfusionMatrix",
                                  Source={"SourceUri": f"s3://b/{component}/cm.json",
                                          "SourceTypes": [{"SourceIdType": "S3ETag", "Value": "e"}]})["ArtifactArn"]
    assert sm.describe_artifact(ArtifactArn=artifact)["ArtifactType"] == "ConfusionMatrix"
    sm.add_association(SourceArn=tc_arn, DestinationArn=artifact, AssociationType="Produced")
    with pytest.raises(ClientError):
        sm.add_association(SourceArn=tc_arn, DestinationArn=artifact[:-3] + "000")
    listed = sm.list_associations(SourceArn=tc_arn)["AssociationSummaries"]
    assert [(a["DestinationArn"], a["AssociationType"], a["DestinationType"]) for a in listed] == [
        (artifact, "Produced", "ConfusionMatrix")]  # the entity's own type
    found = sm.list_artifacts(SourceUri=f"s3://b/{component}/cm.json")["ArtifactSummaries"]
    assert [a["ArtifactArn"] for a in found] == [artifact]
    lineage = sm.query_lineage(StartArns=[artifact], Direction="Ascendants", IncludeEdges=True)
    assert {v["Arn"] for v in lineage["Vertices"]} == {artifact, tc_arn}
    context = sm.create_context(ContextName=unique("ctx"), ContextType="Endpoint", Source={"SourceUri": "x"})
    action = sm.create_action(ActionName=unique("act"), ActionType="ModelDeployment", Source={"SourceUri": "y"})
    sm.add_association(SourceArn=action["ActionArn"], DestinationArn=context["ContextArn"])
    sm.delete_association(SourceArn=tc_arn, DestinationArn=artifact)
    assert not sm.list_associations(SourceArn=tc_arn)["AssociationSummaries"]
    sm.delete_artifact(ArtifactArn=artifact)
    assert_not_found(sm.describe_artifact, ArtifactArn=artifact)


def test_metric_name_limit(sagemaker_client, sagemaker_metrics_client):
    """Past 1000 distinct names on one trial component, new names get METRIC_LIMIT_EXCEEDED per item."""
    _, _, component = _experiment(sagemaker_client)
    now = dt.datetime.now(dt.timezone.utc)
    for batch in range(100):
        reply = sagemaker_metrics_client.batch_put_metrics(TrialComponentName=component, MetricData=[
            {"MetricName": f"m{batch * 10 + i}", "Value": 1.0, "Timestamp": now} for i in range(10)])
        assert not reply.get("Errors")
    reply = sagemaker_metrics_client.batch_put_metrics(TrialComponentName=component, MetricData=[
        {"MetricName": "m0", "Value": 2.0, "Timestamp": now}, {"MetricName": "new", "Value": 1.0, "Timestamp": now}])
    assert reply["Errors"] == [{"Code": "METRIC_LIMIT_EXCEEDED", "MetricIndex": 1}]


def test_lineage_groups(sagemaker_client):
    """The default lineage group exists once any lineage entity does (no API creates groups)."""
    sm = sagemaker_client
    sm.create_context(ContextName=unique("ctx"), ContextType="Custom", Source={"SourceUri": "s3://b/ctx"})
    got = sm.describe_lineage_group(LineageGroupName="sagemaker-default-lineage-group")
    assert got["LineageGroupArn"].endswith(":lineage-group/sagemaker-default-lineage-group")
    assert got["DisplayName"] == "sagemaker-default-lineage-group" and got["CreationTime"]
    listed = sm.list_lineage_groups(SortBy="Name", SortOrder="Ascending")["LineageGroupSummaries"]
    assert [g["LineageGroupName"] for g in listed].count("sagemaker-default-lineage-group") == 1
    assert sm.get_lineage_group_policy(LineageGroupName=got["LineageGroupArn"])["LineageGroupArn"] == \
        got["LineageGroupArn"]
    policy = sm.get_lineage_group_policy(LineageGroupName="sagemaker-default-lineage-group")
    assert policy["LineageGroupArn"] == got["LineageGroupArn"] and "ResourcePolicy" not in policy
    assert sm.list_lineage_groups(CreatedAfter=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1))[
        "LineageGroupSummaries"] == []
    for call in (sm.describe_lineage_group, sm.get_lineage_group_policy):
        with pytest.raises(ClientError) as exc:
            call(LineageGroupName="no-such-group")
        assert error_of(exc)[0] == "ResourceNotFound"


def test_a_group_created_on_the_users_behalf(tmp_path):
    """`lineage_groups.ensure` (what a pipeline's creation calls) makes a named group once."""
    from sagemaker_emulator.handlers import lineage_groups
    from sagemaker_emulator.runtime.fake import FakeRuntime
    from sagemaker_emulator.testing.inprocess import InProcessServer

    with InProcessServer(FakeRuntime(), data_dir=tmp_path / "data") as emu:
        ctx = emu.services.request_context("us-east-1")
        arn = lineage_groups.ensure(ctx, "sagemaker-my-pipeline", description="from a pipeline")
        assert lineage_groups.ensure(ctx, "sagemaker-my-pipeline") == arn
        got = emu.services.sagemaker.call("DescribeLineageGroup", {"LineageGroupName": "sagemaker-my-pipeline"})
        assert got["LineageGroupArn"] == arn and got["Description"] == "from a pipeline"
        listed = emu.services.sagemaker.call("ListLineageGroups", {})["LineageGroupSummaries"]
        assert [g["LineageGroupName"] for g in listed] == ["sagemaker-my-pipeline"]


def test_component_defaults_and_direct_metric_summaries(sagemaker_client, sagemaker_metrics_client):
    """Describe shows DisplayName (the name when none was given) and empty Metrics/Sources; metrics put
    straight onto a component name the component as their SourceArn; Errors is always listed."""
    name = unique("tc")
    arn = sagemaker_client.create_trial_component(TrialComponentName=name)["TrialComponentArn"]
    got = sagemaker_client.describe_trial_component(TrialComponentName=name)
    assert (got["DisplayName"], got["Metrics"], got["Sources"]) == (name, [], [])
    reply = sagemaker_metrics_client.batch_put_metrics(TrialComponentName=name, MetricData=[
        {"MetricName": "loss", "Timestamp": dt.datetime.now(dt.timezone.utc), "Step": 0, "Value": 2.0}])
    assert reply["Errors"] == []
    summary = sagemaker_client.describe_trial_component(TrialComponentName=name)["Metrics"][0]
    assert (summary["MetricName"], summary["SourceArn"], summary["Count"]) == ("loss", arn, 1)
