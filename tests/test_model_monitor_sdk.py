"""SDK v2's DefaultModelMonitor on AWS's analyzer image URI, which runs the emulator's stand-in (built on
first use): suggest_baseline() gives statistics and constraints, a NOW schedule over an endpoint's
captured CSV requests finds the violations, and the SDK reads them back from the run's folder."""

from __future__ import annotations

import pytest
from botocore.exceptions import WaiterError

from .helpers import ROLE, deploy, endpoint_config, sdk_environment, unique, wait_until

TERMINAL = ("Completed", "CompletedWithViolations", "Failed", "Stopped")


@pytest.fixture(scope="module")
def monitor_session(sagemaker_emulator, bucket):
    import sagemaker

    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, [])
        yield sagemaker.Session(default_bucket=bucket, sagemaker_config={
            "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})


def test_default_model_monitor_baseline_then_a_now_run_with_violations(monitor_session, sagemaker_client,
                                                                        sagemaker_runtime_client, s3_client,
                                                                        serving_image, bucket, tmp_path):
    from sagemaker.model_monitor import CronExpressionGenerator, DefaultModelMonitor
    from sagemaker.model_monitor.dataset_format import DatasetFormat

    sm = sagemaker_client
    baseline = tmp_path / "baseline.csv"
    baseline.write_text("f1,f2\n" + "".join(f"{i % 10},{i / 8}\n" for i in range(80)))
    monitor = DefaultModelMonitor(role=ROLE, instance_count=1, instance_type="ml.m5.large", volume_size_in_gb=5,
                                  max_runtime_in_seconds=900, sagemaker_session=monitor_session)
    monitor.suggest_baseline(baseline_dataset=str(baseline), dataset_format=DatasetFormat.csv(header=True),
                             output_s3_uri=f"s3://{bucket}/baselining", wait=True, logs=False)
    job = sm.describe_processing_job(ProcessingJobName=monitor.latest_baselining_job_name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AppSpecification"]["ImageUri"].endswith("/sagemaker-model-monitor-analyzer")
    statistics = monitor.baseline_statistics().body_dict
    assert statistics["dataset"]["item_count"] == 80
    assert {f["name"]: f["inferred_type"] for f in statistics["features"]} == {"f1": "Integral", "f2": "Fractional"}
    constraints = monitor.suggested_constraints().body_dict
    assert constraints["monitoring_config"]["distribution_constraints"]["categorical_drift_method"] == "LInfinity"

    model = unique("mm-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
    config = endpoint_config(sm, ("AllTraffic", model, 1, 1.0), DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{bucket}/datacapture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    endpoint = deploy(sm, unique("ep-mm"), config)
    try:
        for row in ("3,0.5", "4,1.25", "250.5,2.0", "5,0.75"):  # one f1 that is not Integral
            sagemaker_runtime_client.invoke_endpoint(EndpointName=endpoint, Body=row, ContentType="text/csv")

        def captured() -> bool:
            keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"datacapture/{endpoint}/").get(
                "Contents", [])]
            return sum(len(s3_client.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines())
                       for k in keys) >= 4
        wait_until(captured, 60, "the captured requests")

        name = unique("mm-now")
        monitor.create_monitoring_schedule(
            monitor_schedule_name=name, endpoint_input=endpoint, output_s3_uri=f"s3://{bucket}/monitoring",
            statistics=monitor.baseline_statistics(), constraints=monitor.suggested_constraints(),
            schedule_cron_expression=CronExpressionGenerator.now(), data_analysis_start_time="-PT1H",
            data_analysis_end_time="-PT0H", enable_cloudwatch_metrics=False)
        described = sm.describe_data_quality_job_definition(JobDefinitionName=monitor.job_definition_name)
        assert described["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == endpoint

        def last() -> str | None:
            status = (monitor.describe_schedule().get("LastMonitoringExecutionSummary") or {}).get(
                "MonitoringExecutionStatus")
            return status if status in TERMINAL else None
        assert wait_until(last, 300, "the monitoring run") == "CompletedWithViolations", \
            monitor.describe_schedule().get("LastMonitoringExecutionSummary")
        violations = monitor.latest_monitoring_constraint_violations().body_dict["violations"]
        checks = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
        assert ("f1", "data_type_check") in checks, violations
        assert not any(v["constraint_check_type"] in ("missing_column_check", "extra_column_check")
                       for v in violations)
        assert monitor.latest_monitoring_statistics().body_dict["dataset"]["item_count"] == 4
        [execution] = monitor.list_executions()
        run_job = sm.describe_processing_job(ProcessingJobName=execution.job_name)
        assert run_job["ExitMessage"] == f"CompletedWithViolations: Job completed successfully with " \
                                         f"{len(violations)} violations."
        assert run_job["Environment"]["baseline_constraints"].endswith("/constraints.json")
        monitor.stop_monitoring_schedule()
        monitor.delete_monitoring_schedule()
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_quality_check_step_calculates_then_checks_a_baseline(sagemaker_emulator, s3_client, bucket, tmp_path):
    """A pipeline's QualityCheckStep: a first run skips the check and registers the new baseline (its
    properties), a second run checks other data against that baseline and fails on its violations."""
    from sagemaker.model_monitor.dataset_format import DatasetFormat
    from sagemaker.workflow.check_job_config import CheckJobConfig
    from sagemaker.workflow.parameters import ParameterBoolean, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

    s3_client.put_object(Bucket=bucket, Key="qc/good.csv", Body="f1,f2\n" + "".join(
        f"{i % 10},{i / 8}\n" for i in range(60)))
    s3_client.put_object(Bucket=bucket, Key="qc/bad.csv", Body="f1,f2\n" + "".join(
        f"{i % 10 + 0.5},{i / 8}\n" for i in range(60)))  # f1 is no longer Integral
    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, [])
        mp.chdir(tmp_path)
        session = PipelineSession(default_bucket=bucket)
        dataset, skip = ParameterString("Dataset"), ParameterBoolean("SkipCheck", default_value=True)
        statistics, constraints = ParameterString("Statistics", ""), ParameterString("Constraints", "")
        step = QualityCheckStep(
            name="DataQuality", skip_check=skip, register_new_baseline=True,
            supplied_baseline_statistics=statistics, supplied_baseline_constraints=constraints,
            quality_check_config=DataQualityCheckConfig(baseline_dataset=dataset,
                                                        dataset_format=DatasetFormat.csv(header=True),
                                                        output_s3_uri=f"s3://{bucket}/qc-out"),
            check_job_config=CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                                            volume_size_in_gb=5, sagemaker_session=session))
        pipeline = Pipeline(name=unique("qc-pipeline"), parameters=[dataset, skip, statistics, constraints],
                            steps=[step], sagemaker_session=session)
        pipeline.upsert(role_arn=ROLE)

        first = pipeline.start(parameters={"Dataset": f"s3://{bucket}/qc/good.csv"})
        first.wait(delay=1, max_attempts=300)
        [ran] = first.list_steps()
        assert ran["StepStatus"] == "Succeeded", ran.get("FailureReason")
        meta = ran["Metadata"]["QualityCheck"]
        assert meta["CheckType"] == "DATA_QUALITY" and meta["SkipCheck"] is True
        assert meta["CalculatedBaselineConstraints"].endswith("/constraints.json")
        assert meta["BaselineUsedForDriftCheckConstraints"] == meta["CalculatedBaselineConstraints"]
        key = meta["CalculatedBaselineConstraints"].split("/", 3)[3]
        suggested = __import__("json").loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert {f["name"]: f["inferred_type"] for f in suggested["features"]} == {"f1": "Integral", "f2": "Fractional"}

        second = pipeline.start(parameters={
            "Dataset": f"s3://{bucket}/qc/bad.csv", "SkipCheck": False,
            "Statistics": meta["CalculatedBaselineStatistics"], "Constraints": meta["CalculatedBaselineConstraints"]})
        with pytest.raises(WaiterError):  # the SDK's waiter raises on a failed execution
            second.wait(delay=1, max_attempts=300)
        [checked] = second.list_steps()
        assert checked["StepStatus"] == "Failed"
        assert "DATA_QUALITY check found" in checked["FailureReason"] and "data_type_check" in checked["FailureReason"]
        assert checked["Metadata"]["QualityCheck"]["ViolationReport"].endswith("/constraint_violations.json")
        pipeline.delete()
