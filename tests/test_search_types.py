"""Search over Pipeline, PipelineExecution, PipelineVersion, Project, ModelCard, Model, Job and HubContent,
on the record-only server (reset per test, so every count is exact): the record members botocore's shapes
name, filters that keep and exclude, sorting both ways, GetSearchSuggestions and VisibilityConditions on
the new records; and a search applying due status transitions first (an in-process server)."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer

from .helpers import ROLE, error_of, make_model, start_transform_job, wait_endpoint, wait_transform
from .pipeline_defs import definition, get, wait_execution


@pytest.fixture
def sm(record_only_emulator):
    return record_only_emulator.client("sagemaker")


def _search(sm, resource: str, *filters: dict, operator: str = "And", **sort) -> list[dict]:
    """Every record of one search (one page is enough here), checking TotalHits against it."""
    kwargs = {"SearchExpression": {"Filters": list(filters), "Operator": operator}} if filters else {}
    out = sm.search(Resource=resource, MaxResults=100, **kwargs, **sort)
    assert out["TotalHits"]["Value"] == len(out["Results"])
    return out["Results"]


def _f(name: str, value: str | None = None, operator: str = "Equals") -> dict:
    return {"Name": name, "Operator": operator, **({"Value": value} if value is not None else {})}


# -- pipelines ---------------------------------------------------------------------------------------
_GO = [{"Name": "Go", "Type": "String", "DefaultValue": "yes"}]
_CHECK = [{"Name": "Check", "Type": "Condition", "Arguments": {
    "Conditions": [{"Type": "Equals", "LeftValue": get("Parameters.Go"), "RightValue": "yes"}],
    "IfSteps": [], "ElseSteps": [{"Name": "Refuse", "Type": "Fail", "Arguments": {"ErrorMessage": "told no"}}]}}]


def _pipeline(sm, name: str, **extra) -> str:
    return sm.create_pipeline(PipelineName=name, PipelineDefinition=definition(_CHECK, _GO), RoleArn=ROLE,
                              **extra)["PipelineArn"]


def test_pipeline_records_filters_and_sorting(sm):
    arns = {}
    for name, team in (("pipe-a", "red"), ("pipe-b", "blue"), ("pipe-c", "red")):
        arns[name] = _pipeline(sm, name, PipelineDescription=f"the {name}", Tags=[{"Key": "team", "Value": team}])
        time.sleep(0.02)  # distinct creation times
    b = sm.describe_pipeline(PipelineName="pipe-b")

    [record] = _search(sm, "Pipeline", _f("PipelineName", "pipe-b"))
    pipeline = record["Pipeline"]
    assert pipeline["PipelineArn"] == arns["pipe-b"] and pipeline["PipelineDescription"] == "the pipe-b"
    assert pipeline["PipelineStatus"] == "Active" and pipeline["RoleArn"] == ROLE
    assert pipeline["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert pipeline["CreationTime"] == b["CreationTime"]
    assert "PipelineDefinition" not in pipeline  # not a member of botocore's Pipeline shape

    def names(*filters, **sort):
        return [r["Pipeline"]["PipelineName"] for r in _search(sm, "Pipeline", *filters, **sort)]

    assert names(_f("Tags.team", "red"), SortBy="PipelineName", SortOrder="Ascending") == ["pipe-a", "pipe-c"]
    assert names(_f("Tags.team", "red"), SortBy="PipelineName", SortOrder="Descending") == ["pipe-c", "pipe-a"]
    assert names(_f("CreationTime", b["CreationTime"].isoformat(), "GreaterThanOrEqualTo"),
                 SortBy="CreationTime", SortOrder="Ascending") == ["pipe-b", "pipe-c"]
    assert names(_f("PipelineName", "pipe-b", "NotEquals"), SortBy="CreationTime") == ["pipe-c", "pipe-a"]
    assert names(_f("PipelineDescription", "pipe-c", "Contains")) == ["pipe-c"]
    # the definition is no searchable property: a word only it holds matches nothing
    assert names(_f("PipelineDefinition", "Refuse", "Contains")) == []
    # the run updates LastRunTime, which the record carries
    sm.start_pipeline_execution(PipelineName="pipe-a")
    assert names(_f("LastRunTime", operator="Exists")) == ["pipe-a"]


def test_pipeline_execution_records_status_parameters_and_version(sm):
    arn = _pipeline(sm, "exec-pipe")
    other = _pipeline(sm, "other-pipe")
    sm.update_pipeline_version(PipelineArn=arn, PipelineVersionId=1, PipelineVersionDisplayName="first")
    runs = []
    for go in ("yes", "no", "yes"):
        runs.append(sm.start_pipeline_execution(PipelineName="exec-pipe", PipelineExecutionDisplayName=f"run-{go}",
                                                PipelineParameters=[{"Name": "Go", "Value": go}])
                    ["PipelineExecutionArn"])
        time.sleep(0.02)
    elsewhere = sm.start_pipeline_execution(PipelineName="other-pipe")["PipelineExecutionArn"]
    statuses = [wait_execution(sm, run)["PipelineExecutionStatus"] for run in [*runs, elsewhere]]
    assert statuses == ["Succeeded", "Failed", "Succeeded", "Succeeded"]

    def arns(*filters, **sort):
        return [r["PipelineExecution"]["PipelineExecutionArn"] for r in _search(sm, "PipelineExecution", *filters,
                                                                                 **sort)]

    mine = _f("PipelineArn", arn)
    assert arns(mine, SortBy="CreationTime", SortOrder="Ascending") == runs
    assert arns(mine, SortBy="CreationTime", SortOrder="Descending") == runs[::-1]
    assert arns(mine, _f("PipelineExecutionStatus", "Failed")) == [runs[1]]
    assert arns(_f("PipelineExecutionStatus", "Succeeded"), SortBy="CreationTime",
                SortOrder="Ascending") == [runs[0], runs[2], elsewhere]
    assert arns(mine, _f("PipelineParameters.Go", "yes"), SortBy="CreationTime", SortOrder="Ascending") == [
        runs[0], runs[2]]
    assert arns(_f("PipelineArn", other)) == [elsewhere]
    [failed] = _search(sm, "PipelineExecution", _f("FailureReason", "told no", "Contains"))
    record = failed["PipelineExecution"]
    assert record["PipelineExecutionArn"] == runs[1] and record["PipelineExecutionDisplayName"] == "run-no"
    assert record["PipelineParameters"] == [{"Name": "Go", "Value": "no"}]
    assert record["PipelineVersionId"] == 1 and record["PipelineVersionDisplayName"] == "first"
    assert record["PipelineExperimentConfig"]["ExperimentName"] == "exec-pipe"
    suggested = sm.get_search_suggestions(Resource="PipelineExecution", SuggestionQuery={
        "PropertyNameQuery": {"PropertyNameHint": "pipelinep"}})["PropertyNameSuggestions"]
    assert suggested == [{"PropertyName": "PipelineParameters.Go"}]


def test_pipeline_execution_status_follows_a_stop(sm, record_only_emulator):
    """An execution waiting on a callback is Executing; stopped, it is found as Stopped and no longer Executing."""
    sqs = record_only_emulator.client("sqs")
    queue = sqs.create_queue(QueueName="search-callbacks")["QueueUrl"]
    waiting = [{"Name": "Wait", "Type": "Callback", "Arguments": {}, "SqsQueueUrl": queue, "OutputParameters": []}]
    sm.create_pipeline(PipelineName="waits", PipelineDefinition=definition(waiting), RoleArn=ROLE)
    run = sm.start_pipeline_execution(PipelineName="waits")["PipelineExecutionArn"]
    done = _pipeline(sm, "done-pipe")
    finished = sm.start_pipeline_execution(PipelineName="done-pipe")["PipelineExecutionArn"]
    wait_execution(sm, finished)

    def arns(status):
        return [r["PipelineExecution"]["PipelineExecutionArn"]
                for r in _search(sm, "PipelineExecution", _f("PipelineExecutionStatus", status))]

    assert arns("Executing") == [run] and arns("Succeeded") == [finished] and arns("Stopped") == []
    sm.stop_pipeline_execution(PipelineExecutionArn=run)
    wait_execution(sm, run)
    assert arns("Stopped") == [run] and arns("Executing") == []
    assert [r["PipelineExecution"]["PipelineExecutionArn"] for r in _search(
        sm, "PipelineExecution", _f("PipelineArn", done), _f("PipelineExecutionStatus", "Stopped"),
        operator="Or", SortBy="CreationTime", SortOrder="Ascending")] == [run, finished]


def test_pipeline_version_records(sm):
    arn = _pipeline(sm, "versioned")
    sm.update_pipeline(PipelineName="versioned", PipelineDescription="second")
    sm.update_pipeline_version(PipelineArn=arn, PipelineVersionId=2, PipelineVersionDisplayName="v-two",
                               PipelineVersionDescription="the second")
    run = sm.start_pipeline_execution(PipelineName="versioned", PipelineVersionId=1,
                                      PipelineParameters=[{"Name": "Go", "Value": "no"}])["PipelineExecutionArn"]
    wait_execution(sm, run)
    _pipeline(sm, "unversioned")  # one version, another pipeline

    def versions(*filters, **sort):
        return [(r["PipelineVersion"]["PipelineArn"].rsplit("/", 1)[1], r["PipelineVersion"]["PipelineVersionId"])
                for r in _search(sm, "PipelineVersion", *filters, **sort)]

    assert versions(_f("PipelineArn", arn), SortBy="PipelineVersionId", SortOrder="Ascending") == [
        ("versioned", 1), ("versioned", 2)]
    assert versions(_f("PipelineArn", arn), SortBy="PipelineVersionId", SortOrder="Descending") == [
        ("versioned", 2), ("versioned", 1)]
    assert sorted(versions()) == [("unversioned", 1), ("versioned", 1), ("versioned", 2)]
    assert versions(_f("PipelineVersionDisplayName", "v-two")) == [("versioned", 2)]
    [ran] = _search(sm, "PipelineVersion", _f("LastExecutedPipelineExecutionArn", operator="Exists"))
    record = ran["PipelineVersion"]
    assert (record["PipelineVersionId"], record["LastExecutedPipelineExecutionArn"]) == (1, run)
    assert record["LastExecutedPipelineExecutionStatus"] == "Failed"
    assert versions(_f("LastExecutedPipelineExecutionStatus", "Failed")) == [("versioned", 1)]


# -- declared resources ------------------------------------------------------------------------------
def test_project_records(sm):
    for name, stage in (("proj-a", "dev"), ("proj-b", "prod"), ("proj-c", "dev")):
        sm.create_project(ProjectName=name, ProjectDescription=f"{stage} project",
                          Tags=[{"Key": "stage", "Value": stage}])
        time.sleep(0.02)
    described = sm.describe_project(ProjectName="proj-b")
    [record] = _search(sm, "Project", _f("ProjectName", "proj-b"))
    project = record["Project"]
    assert project["ProjectArn"] == described["ProjectArn"] and project["ProjectId"] == described["ProjectId"]
    assert project["ProjectStatus"] == "CreateCompleted" and project["Tags"] == [{"Key": "stage", "Value": "prod"}]

    def names(*filters, **sort):
        return [r["Project"]["ProjectName"] for r in _search(sm, "Project", *filters, **sort)]

    assert names(_f("Tags.stage", "dev"), SortBy="CreationTime", SortOrder="Ascending") == ["proj-a", "proj-c"]
    assert names(_f("ProjectStatus", "CreateCompleted"), SortBy="ProjectName") == ["proj-c", "proj-b", "proj-a"]
    assert names(_f("ProjectId", described["ProjectId"])) == ["proj-b"]
    # VisibilityConditions leave out a project tagged otherwise
    assert [r["Project"]["ProjectName"] for r in sm.search(
        Resource="Project", SortBy="ProjectName", SortOrder="Ascending",
        VisibilityConditions=[{"Key": "Tags.stage", "Value": "prod"}])["Results"]] == ["proj-b"]


def _card(sm, name: str, model_id: str | None, risk: str, group: str | None = None, status: str = "Draft") -> None:
    content: dict = {"intended_uses": {"risk_rating": risk}}
    if model_id:
        content["model_overview"] = {"model_id": model_id}
    if group:
        content["model_package_details"] = {"model_package_group_name": group}
    sm.create_model_card(ModelCardName=name, Content=json.dumps(content), ModelCardStatus=status)


def test_model_card_records(sm):
    model_arn = make_model(sm, "carded-model")["ModelArn"]
    _card(sm, "card-a", model_arn, "High")
    _card(sm, "card-b", None, "Low", group="my-group", status="PendingReview")
    _card(sm, "card-c", None, "High")
    sm.update_model_card(ModelCardName="card-c", ModelCardStatus="Approved")

    def names(*filters, **sort):
        return [r["ModelCard"]["ModelCardName"] for r in _search(sm, "ModelCard", *filters, **sort)]

    assert names(_f("ModelId", model_arn)) == ["card-a"]  # what the SDK's ModelCard.from_model_name asks
    assert names(_f("ModelPackageGroupName", "my-group")) == ["card-b"]
    assert names(_f("RiskRating", "High"), SortBy="ModelCardName", SortOrder="Ascending") == ["card-a", "card-c"]
    assert names(_f("ModelCardStatus", "Approved")) == ["card-c"]
    assert names(_f("ModelCardVersion", "2")) == ["card-c"]
    [record] = _search(sm, "ModelCard", _f("ModelCardName", "card-a"))
    card = record["ModelCard"]
    assert (card["ModelId"], card["RiskRating"], card["ModelCardVersion"]) == (model_arn, "High", 1)
    assert json.loads(card["Content"])["model_overview"]["model_id"] == model_arn


# -- models ------------------------------------------------------------------------------------------
def test_model_dashboard_records(sm, record_only_emulator):
    served = make_model(sm, "served-model", Tags=[{"Key": "owner", "Value": "ana"}])["ModelArn"]
    make_model(sm, "idle-model", Tags=[{"Key": "owner", "Value": "ben"}])
    sm.create_endpoint_config(EndpointConfigName="served-config", ProductionVariants=[
        {"VariantName": "main", "ModelName": "served-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="served-ep", EndpointConfigName="served-config")
    wait_endpoint(sm, "served-ep")
    s3 = record_only_emulator.client("s3")
    s3.create_bucket(Bucket="dash")
    s3.put_object(Bucket="dash", Key="in/rows.csv", Body=b"1\n")
    job = start_transform_job(sm, "served-model", "s3://dash/in/", "s3://dash/out/")
    wait_transform(sm, job)
    sm.create_monitoring_schedule(MonitoringScheduleName="served-watch", MonitoringScheduleConfig={
        "MonitoringJobDefinition": {
            "MonitoringInputs": [{"EndpointInput": {"EndpointName": "served-ep", "LocalPath": "/opt/ml/processing"}}],
            "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                "S3Uri": "s3://dash/monitor", "LocalPath": "/opt/ml/processing/output"}}]},
            "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 10}},
            "MonitoringAppSpecification": {"ImageUri": "monitor:1"}, "RoleArn": ROLE}})
    _card(sm, "served-card", served, "Medium")

    def names(*filters, **sort):
        return [r["Model"]["Model"]["ModelName"] for r in _search(sm, "Model", *filters, **sort)]

    assert names(SortBy="Model.ModelName", SortOrder="Ascending") == ["idle-model", "served-model"]
    assert names(SortBy="Model.CreationTime", SortOrder="Descending") == ["idle-model", "served-model"]
    assert names(_f("Model.ModelName", "idle-model")) == ["idle-model"]
    assert names(_f("Endpoints.EndpointName", "served-ep")) == ["served-model"]
    assert names(_f("Endpoints.EndpointName", operator="NotExists")) == ["idle-model"]
    assert names(_f("Model.Tags.owner", "ben")) == ["idle-model"]
    assert names(_f("Tags.owner", "ana")) == ["served-model"]
    assert names(_f("LastBatchTransformJob.TransformJobStatus", "Completed")) == ["served-model"]
    assert names(_f("ModelCard.RiskRating", "Medium")) == ["served-model"]
    [record] = _search(sm, "Model", _f("Model.ModelArn", served))
    dashboard = record["Model"]
    assert dashboard["Model"]["Tags"] == [{"Key": "owner", "Value": "ana"}]
    assert dashboard["Model"]["PrimaryContainer"]["Image"] == "my-serve:latest"
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in dashboard["Endpoints"]] == [("served-ep", "InService")]
    assert dashboard["LastBatchTransformJob"]["TransformJobName"] == job
    assert [s["MonitoringScheduleName"] for s in dashboard["MonitoringSchedules"]] == ["served-watch"]
    assert dashboard["ModelCard"]["ModelCardName"] == "served-card"


# -- what AWS cannot search --------------------------------------------------------------------------
@pytest.mark.parametrize("resource", ["Image", "ImageVersion"])
def test_types_without_a_search_record_are_refused(sm, resource):
    with pytest.raises(ClientError) as excinfo:
        sm.search(Resource=resource)
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert f"a SearchRecord has no member for an {resource}" in message


def test_job_and_hub_content_records(sm):
    for name, category in (("job-a", "DataTransformation"), ("job-b", "AgentRFT"), ("job-c", "DataTransformation")):
        sm.create_job(JobName=name, RoleArn=ROLE, JobCategory=category, JobConfigSchemaVersion="1.0.0",
                      JobConfigDocument=json.dumps({"steps": 1}))

    def jobs(*filters, **sort):
        return [r["Job"]["JobName"] for r in _search(sm, "Job", *filters, **sort)]

    assert jobs(_f("JobCategory", "DataTransformation"), SortBy="JobName", SortOrder="Ascending") == [
        "job-a", "job-c"]
    # nothing runs: a job is Completed at once (SETTLE_SECONDS=0)
    assert jobs(_f("JobStatus", "Completed"), SortBy="JobName", SortOrder="Descending") == ["job-c", "job-b", "job-a"]
    assert jobs(_f("JobStatus", "InProgress")) == []
    assert jobs(_f("JobName", "job-b", "NotEquals"), _f("JobCategory", "AgentRFT"), operator="Or",
                SortBy="CreationTime", SortOrder="Ascending") == ["job-a", "job-b", "job-c"]
    assert jobs(_f("JobName", "job-b", "NotEquals"), _f("JobCategory", "AgentRFT")) == []

    sm.create_hub(HubName="search-hub", HubDescription="a hub")
    for name, kind, words in (("hub-model", "Model", ["vision", "small"]), ("hub-notes", "Notebook", ["small"])):
        sm.import_hub_content(HubName="search-hub", HubContentName=name, HubContentType=kind,
                              DocumentSchemaVersion="2.0.0", HubContentDocument="{}", HubContentSearchKeywords=words)

    def contents(*filters, **sort):
        return [r["HubContent"]["HubContentName"] for r in _search(sm, "HubContent", *filters, **sort)]

    assert contents(_f("HubContentType", "Notebook")) == ["hub-notes"]
    assert contents(_f("HubContentSearchKeywords", "vision")) == ["hub-model"]
    assert contents(_f("HubContentSearchKeywords", "small"), SortBy="HubContentName", SortOrder="Ascending") == [
        "hub-model", "hub-notes"]
    [record] = _search(sm, "HubContent", _f("HubContentName", "hub-model"))
    content = record["HubContent"]
    assert (content["HubName"], content["HubContentStatus"], content["HubContentVersion"]) == (
        "search-hub", "Available", "1.0.0")


def test_due_transitions_settle_before_a_search(tmp_path):
    """With transitions that take time (SETTLE_SECONDS), a search applies those due first: a project
    stored as Pending is found CreateCompleted once its time has come, and not before."""
    with InProcessServer(FakeRuntime(), data_dir=tmp_path / "data") as server:
        server.services.config.settle_seconds = 0.5
        sm = server.client("sagemaker")
        sm.create_project(ProjectName="slow-proj")
        sm.create_job(JobName="slow-job", RoleArn=ROLE, JobCategory="AgentRFT", JobConfigSchemaVersion="1.0.0",
                      JobConfigDocument="{}")
        sm.stop_job(JobName="slow-job", JobCategory="AgentRFT")

        def found(resource, member, status):
            return [r[resource][member] for r in _search(sm, resource, _f(f"{resource}Status", status))]

        assert found("Project", "ProjectName", "Pending") == ["slow-proj"]
        assert found("Project", "ProjectName", "CreateCompleted") == []
        assert found("Job", "JobName", "Stopping") == ["slow-job"]
        time.sleep(0.6)
        assert found("Project", "ProjectName", "CreateCompleted") == ["slow-proj"]
        assert found("Project", "ProjectName", "Pending") == []
        assert found("Job", "JobName", "Stopped") == ["slow-job"]
