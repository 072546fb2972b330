"""Monitoring schedules run: a NOW schedule's run is a real processing job over the endpoint's captured
data, with Model Monitor's analyzer contract (inputs in the capture layout, the variables, the output
folder per run) and its status read from the analyzer's exit message; a window without data fails
as AWS's does; bad schedules are refused at Create."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.monitoring import schedule

from .helpers import ROLE, deploy, endpoint_config, error_of, sdk_environment, unique, wait_until

LOCAL_INPUT = "/opt/ml/processing/input/endpoint"
LOCAL_OUTPUT = "/opt/ml/processing/output"
NOW = {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT1H", "DataAnalysisEndTime": "-PT0H"}


def definition(image: str, endpoint: str, output: str) -> dict:
    return {"MonitoringInputs": [{"EndpointInput": {"EndpointName": endpoint, "LocalPath": LOCAL_INPUT}}],
            "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                "S3Uri": output, "LocalPath": LOCAL_OUTPUT, "S3UploadMode": "EndOfJob"}}]},
            "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 5}},
            "MonitoringAppSpecification": {"ImageUri": image},
            "Environment": {"BEHAVIOUR": "monitor"}, "RoleArn": ROLE,
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}


def executions(sm, name: str) -> list[dict]:
    return sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"]


def finished(sm, name: str) -> dict:
    def done():
        runs = executions(sm, name)
        return runs and runs[0]["MonitoringExecutionStatus"] not in ("Pending", "InProgress", "Stopping") and runs[0]
    return wait_until(done, 180, lambda: f"the run of {name}: {executions(sm, name)}")


@pytest.fixture(scope="module")
def captured_endpoint(sagemaker_client, sagemaker_runtime_client, s3_client, serving_image, bucket):
    """An endpoint that captured three requests, one of them "bad"."""
    sm = sagemaker_client
    model = unique("monitored")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
    config = endpoint_config(sm, ("AllTraffic", model, 1, 1.0), DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    name = deploy(sm, unique("ep-monitored"), config)
    for body in ('{"x": 1}', '{"x": "bad"}', '{"x": 2}'):
        sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=body, ContentType="application/json")

    def captured() -> int:
        keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"capture/{name}/").get(
            "Contents", [])]
        return sum(len(s3_client.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()) for k in keys) >= 3
    wait_until(captured, 60, "the three captured records")
    yield name
    sm.delete_endpoint(EndpointName=name)


def test_now_schedule_runs_the_analyzer_over_the_captured_hour(sagemaker_client, s3_client, bucket,
                                                               processing_image, captured_endpoint):
    sm, endpoint = sagemaker_client, captured_endpoint
    name = unique("mon-now")
    sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": NOW, "MonitoringJobDefinition": definition(processing_image, endpoint,
                                                                     f"s3://{bucket}/reports")})
    run = finished(sm, name)
    assert run["MonitoringExecutionStatus"] == "CompletedWithViolations", run
    assert run["EndpointName"] == endpoint and run["MonitoringScheduleName"] == name
    job_name = run["ProcessingJobArn"].rsplit("/", 1)[1]
    assert job_name.startswith("model-monitoring-")
    schedule_doc = sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert schedule_doc["MonitoringScheduleStatus"] == "Scheduled" and schedule_doc["EndpointName"] == endpoint
    assert schedule_doc["LastMonitoringExecutionSummary"]["ProcessingJobArn"] == run["ProcessingJobArn"]

    job = sm.describe_processing_job(ProcessingJobName=job_name)
    assert job["ProcessingJobStatus"] == "Completed"
    assert job["ExitMessage"] == "CompletedWithViolations: Job completed successfully with 1 violations."
    hour = dt.datetime.fromtimestamp(run["ScheduledTime"].timestamp(), dt.timezone.utc).strftime("%Y/%m/%d/%H")
    destination = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert destination == f"s3://{bucket}/reports/{endpoint}/{name}/{hour}"  # what list_executions() reads
    inputs = [i["S3Input"] for i in job["ProcessingInputs"]]
    assert inputs and all(i["LocalPath"].startswith(f"{LOCAL_INPUT}/{endpoint}/AllTraffic/") for i in inputs)

    prefix = f"reports/{endpoint}/{name}/{hour}"
    read = lambda key: json.loads(s3_client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read())  # noqa: E731
    assert read("statistics.json")["dataset"]["item_count"] == 3
    violations = read("constraint_violations.json")["violations"]
    assert [v["description"] for v in violations] == ['{"x": "bad"}']
    env = read("env.json")
    assert json.loads(env["dataset_format"]) == {"sagemakerCaptureJson": {
        "captureIndexNames": ["endpointInput", "endpointOutput"]}}
    assert env["dataset_source"] == LOCAL_INPUT and env["output_path"] == LOCAL_OUTPUT
    assert env["sagemaker_endpoint_name"] == endpoint and env["sagemaker_monitoring_schedule_name"] == name
    start, end = (dt.datetime.strptime(env[k], "%Y-%m-%dT%H:%M:%SZ") for k in ("start_time", "end_time"))
    assert end - start == dt.timedelta(hours=1)

    # NOW runs once: the schedule stays Scheduled with that one run
    assert len(executions(sm, name)) == 1
    listed = sm.list_monitoring_executions(EndpointName=endpoint, StatusEquals="CompletedWithViolations")
    assert run["ProcessingJobArn"] in [r.get("ProcessingJobArn") for r in listed["MonitoringExecutionSummaries"]]
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)


def test_named_definition_and_a_window_without_data(sagemaker_client, bucket, processing_image,
                                                     captured_endpoint):
    sm, endpoint = sagemaker_client, captured_endpoint
    inline = definition(processing_image, endpoint, f"s3://{bucket}/dq")
    job_definition = unique("dq-def")
    sm.create_data_quality_job_definition(
        JobDefinitionName=job_definition,
        DataQualityAppSpecification={"ImageUri": processing_image, "Environment": {"BEHAVIOUR": "monitor"}},
        DataQualityJobInput={"EndpointInput": inline["MonitoringInputs"][0]["EndpointInput"]},
        DataQualityJobOutputConfig=inline["MonitoringOutputConfig"], JobResources=inline["MonitoringResources"],
        RoleArn=ROLE)
    name = unique("mon-empty")
    # a window of the day before: nothing was captured then
    sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT26H",
                           "DataAnalysisEndTime": "-PT25H"},
        "MonitoringJobDefinitionName": job_definition, "MonitoringType": "DataQuality"})
    described = sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["EndpointName"] == endpoint and described["MonitoringType"] == "DataQuality"
    run = finished(sm, name)
    assert run["MonitoringExecutionStatus"] == "Failed" and run["FailureReason"] == "Job inputs had no data"
    assert "ProcessingJobArn" not in run and run["MonitoringJobDefinitionName"] == job_definition
    assert sm.list_monitoring_executions(MonitoringScheduleName=name, StatusEquals="Completed")[
        "MonitoringExecutionSummaries"] == []
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    sm.delete_data_quality_job_definition(JobDefinitionName=job_definition)


def test_sdk_model_monitor_schedules_now_and_reads_the_run(sagemaker_emulator, monkeypatch, bucket, processing_image,
                                                           captured_endpoint):
    """SDK v2's bring-your-own-container ModelMonitor: a NOW schedule, list_executions(), and the
    run's statistics and violations read from the folder the SDK derives from the processing job."""
    import sagemaker
    from sagemaker.model_monitor import CronExpressionGenerator, EndpointInput, ModelMonitor, MonitoringOutput

    sdk_environment(monkeypatch, sagemaker_emulator.endpoint_url, [])
    session = sagemaker.Session(default_bucket=bucket, sagemaker_config={
        "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    monitor = ModelMonitor(role=ROLE, image_uri=processing_image, instance_count=1, instance_type="ml.m5.large",
                           env={"BEHAVIOUR": "monitor"}, sagemaker_session=session)
    name = unique("sdk-mon")
    monitor.create_monitoring_schedule(
        endpoint_input=EndpointInput(captured_endpoint, LOCAL_INPUT),
        output=MonitoringOutput(source=LOCAL_OUTPUT, destination=f"s3://{bucket}/sdk-reports"),
        monitor_schedule_name=name, schedule_cron_expression=CronExpressionGenerator.now(),
        data_analysis_start_time="-PT1H", data_analysis_end_time="-PT0H")

    def last_status() -> str | None:
        summary = monitor.describe_schedule().get("LastMonitoringExecutionSummary") or {}
        status = summary.get("MonitoringExecutionStatus")
        return status if status in ("Completed", "CompletedWithViolations", "Failed", "Stopped") else None
    assert wait_until(last_status, 180, "the SDK schedule's run") == "CompletedWithViolations"
    [execution] = monitor.list_executions()
    assert execution.output.destination.startswith(f"s3://{bucket}/sdk-reports/{captured_endpoint}/{name}/")
    assert execution.statistics().body_dict["dataset"]["item_count"] == 3
    assert len(execution.constraint_violations().body_dict["violations"]) == 1
    monitor.stop_monitoring_schedule()
    assert monitor.describe_schedule()["MonitoringScheduleStatus"] == "Stopped"
    monitor.delete_monitoring_schedule()


@pytest.mark.parametrize("config, message", [
    ({"ScheduleExpression": "cron(30 * ? * * *)"}, "on the hour"),
    ({"ScheduleExpression": "rate(1 hour)"}, "neither NOW nor cron"),
    ({"ScheduleExpression": "NOW"}, "required when the ScheduleExpression is NOW"),
    ({**NOW, "DataAnalysisStartTime": "-PT30H"}, "at most 24 hours apart"),
    ({**NOW, "DataAnalysisEndTime": "PT1H"}, "negative ISO 8601 duration"),
    ({"ScheduleExpression": "cron(0 * ? * * *)", "DataAnalysisStartTime": "-PT1H"}, "only valid when"),
])
def test_bad_schedules_are_refused_at_create(sagemaker_client, config, message):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_monitoring_schedule(MonitoringScheduleName=unique("bad"), MonitoringScheduleConfig={
            "ScheduleConfig": config, "MonitoringJobDefinition": definition("img", "ep", "s3://b/o")})
    code, text, _ = error_of(exc)
    assert code == "ValidationException" and message in text, text


def test_a_missing_job_definition_is_refused(sagemaker_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_monitoring_schedule(MonitoringScheduleName=unique("bad"), MonitoringScheduleConfig={
            "ScheduleConfig": NOW, "MonitoringJobDefinitionName": "nope", "MonitoringType": "ModelQuality"})
    assert error_of(exc)[:2] == ("ValidationException", 'Could not find ModelQuality job definition "nope".')


def test_cron_schedules_run_on_their_hours():
    noon = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.timezone.utc).timestamp()
    at = lambda expression: dt.datetime.fromtimestamp(  # noqa: E731
        schedule.parse(expression).next_after(noon), dt.timezone.utc).strftime("%d %H:%M")
    assert at("cron(0 * ? * * *)") == "01 13:00"  # CronExpressionGenerator.hourly()
    assert at("cron(0 8 ? * * *)") == "02 08:00"  # .daily(8)
    assert at("cron(0 2/5 ? * * *)") == "01 17:00"  # .daily_every_x_hours(5, starting_hour=2)
    assert at("cron(0 * * * ? *)") == "01 13:00"
    assert schedule.window(noon, None, None) == (noon - 3600, noon)
    assert schedule.window(noon, "-PT3H", "-PT1H") == (noon - 3 * 3600, noon - 3600)
