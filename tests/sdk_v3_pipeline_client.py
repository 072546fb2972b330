"""Run by tests/test_sdk_v3.py with the python of .venv-sdk3: a two-step `sagemaker.mlops` pipeline.

Two processing steps on the test processing image (argv[1]), the second after the first (DependsOn):
upsert, start, wait, list_steps, through the SDK v3's PipelineSession. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import sagemaker.core.telemetry.telemetry_logging as telemetry

telemetry._requests_helper = lambda url, timeout: None  # never send

import boto3  # noqa: E402
from botocore.exceptions import WaiterError  # noqa: E402
from sagemaker.core.processing import Processor  # noqa: E402
from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output  # noqa: E402
from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.mlops.workflow.pipeline import Pipeline  # noqa: E402
from sagemaker.mlops.workflow.steps import ProcessingStep  # noqa: E402

image, name = sys.argv[1], sys.argv[2]
# v3 checks the role before upsert: it must trust sagemaker.amazonaws.com (and SimulatePrincipalPolicy allow)
ROLE = boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                            "Principal": {"Service": "sagemaker.amazonaws.com"}}]}))["Role"]["Arn"]
session = PipelineSession(default_bucket="sagemaker-us-east-1-123456789012",
                          sagemaker_config={"SchemaVersion": "1.0",
                                            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
processor = Processor(role=ROLE, image_uri=image, instance_count=1, instance_type="ml.m5.large",
                      sagemaker_session=session, base_job_name="v3-pipe")


def report_to(step: str) -> list:
    """The image's one output: a report per host."""
    return [ProcessingOutput(output_name="report", s3_output=ProcessingS3Output(
        s3_uri=f"s3://{session.default_bucket()}/{name}/{step}", local_path="/opt/ml/processing/report",
        s3_upload_mode="EndOfJob"))]


first = ProcessingStep(name="First", step_args=processor.run(outputs=report_to("first")))
second = ProcessingStep(name="Second", step_args=processor.run(outputs=report_to("second")), depends_on=[first])
pipeline = Pipeline(name=name, steps=[first, second], sagemaker_session=session)
pipeline.upsert(role_arn=ROLE)
execution = pipeline.start()
try:
    execution.wait(delay=1, max_attempts=300)
except WaiterError:
    pass  # Failed: the report says why
print(json.dumps({"execution": execution.arn, "status": execution.describe()["PipelineExecutionStatus"],
                  "steps": [{"name": s["StepName"], "status": s["StepStatus"], "metadata": s.get("Metadata", {}),
                             "reason": s.get("FailureReason")}
                            for s in execution.list_steps()]}, default=str))
