"""The monitoring engine's timing on a clock the test moves (FakeRuntime: no container runs): an hourly
schedule runs on the hour, once per hour, not while Stopped, and from the next hour after a Start; a
run recorded before a kill whose job never started is Failed after the restart."""

from __future__ import annotations

import datetime as dt

from sagemaker_emulator.monitoring.engine import KIND, STATE, job_name
from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.storage import resources
from sagemaker_emulator.testing.inprocess import InProcessServer

from .minimal_requests import ROLE

HOURLY = "cron(0 * ? * * *)"


def at(hour: int, minute: int = 0, second: int = 0) -> float:
    return dt.datetime(2026, 12, 1, hour, minute, second, tzinfo=dt.timezone.utc).timestamp()


def config(expression: str) -> dict:
    return {"ScheduleConfig": {"ScheduleExpression": expression}, "MonitoringJobDefinition": {
        "MonitoringInputs": [{"BatchTransformInput": {
            "DataCapturedDestinationS3Uri": "s3://clock-bucket/capture", "LocalPath": "/opt/ml/processing/input",
            "DatasetFormat": {"Csv": {"Header": True}}}}],
        "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
            "S3Uri": "s3://clock-bucket/out", "LocalPath": "/opt/ml/processing/output"}}]},
        "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "MonitoringAppSpecification": {"ImageUri": "analyzer:1"}, "RoleArn": ROLE}}


def scheduled_hours(sm, name: str) -> list[str]:
    runs = sm.list_monitoring_executions(MonitoringScheduleName=name, SortOrder="Ascending")
    return [r["ScheduledTime"].astimezone(dt.timezone.utc).strftime("%H:%M")
            for r in runs["MonitoringExecutionSummaries"]]


def test_hourly_schedule_runs_on_each_hour_and_not_while_stopped(tmp_path):
    fake = FakeRuntime(scripts={"analyzer:1": Script(lines=["analyzing"], after=0.05)})
    with InProcessServer(fake, data_dir=tmp_path) as server:
        engine, sm = server.services.monitoring, server.client("sagemaker")
        server.client("s3").create_bucket(Bucket="clock-bucket")
        server.client("s3").put_object(Bucket="clock-bucket", Key="capture/part-0.csv", Body=b"a,b\n1,2\n")
        clock = [at(12, 59, 50)]
        engine.clock = lambda: clock[0]
        sm.create_monitoring_schedule(MonitoringScheduleName="hourly", MonitoringScheduleConfig=config(HOURLY))

        def tick_at(moment: float) -> None:
            clock[0] = moment
            engine.tick()
            engine.tick()  # a second look at the same moment starts nothing more

        tick_at(at(12, 59, 59))
        assert scheduled_hours(sm, "hourly") == []
        tick_at(at(13, 0, 1))
        assert scheduled_hours(sm, "hourly") == ["13:00"]
        run = sm.list_monitoring_executions(MonitoringScheduleName="hourly")["MonitoringExecutionSummaries"][0]
        job = sm.describe_processing_job(ProcessingJobName=run["ProcessingJobArn"].rsplit("/", 1)[1])
        assert job["ProcessingJobName"] == job_name("hourly", "us-east-1", at(13))
        assert job["Environment"]["dataset_format"] == '{"csv": {"header": true}}'
        assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == \
            "s3://clock-bucket/out/hourly/2026/12/01/13"  # a batch input has no endpoint folder
        tick_at(at(13, 40))
        assert scheduled_hours(sm, "hourly") == ["13:00"]

        sm.stop_monitoring_schedule(MonitoringScheduleName="hourly")
        tick_at(at(14, 0, 1))
        assert scheduled_hours(sm, "hourly") == ["13:00"]  # Stopped: no run
        clock[0] = at(14, 10)
        sm.start_monitoring_schedule(MonitoringScheduleName="hourly")
        tick_at(at(14, 10, 1))
        assert scheduled_hours(sm, "hourly") == ["13:00"]  # no catching up on the hour missed
        tick_at(at(15, 0, 0))
        assert scheduled_hours(sm, "hourly") == ["13:00", "15:00"]
        summary = sm.describe_monitoring_schedule(MonitoringScheduleName="hourly")["LastMonitoringExecutionSummary"]
        assert summary["ScheduledTime"].timestamp() == at(15)

        # a run recorded just before a kill, whose job was never created, is Failed once the engine starts
        row = resources.get(KIND, "us-east-1", "hourly")
        doc = row.document
        doc[STATE]["executions"].append({"ProcessingJobName": job_name("hourly", "us-east-1", at(16)),
                                         "ScheduledTime": at(16), "CreationTime": at(16), "LastModifiedTime": at(16)})
        resources.save(row, doc)
        engine._fail_unstarted()
        last = sm.list_monitoring_executions(MonitoringScheduleName="hourly")["MonitoringExecutionSummaries"][0]
        assert last["MonitoringExecutionStatus"] == "Failed" and "stopped before" in last["FailureReason"]
