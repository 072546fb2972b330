"""The SDK v2's `@step` decorator (`sagemaker.workflow.function_step.step`) through Pipelines, unchanged.

Each decorated function becomes a Training step: the SDK cloudpickles the function and its arguments to
S3, and the job's container runs the SDK's remote-function invoker (`sagemaker.remote_function.invoke_function`),
which reads them back, runs the function and writes its return value to S3. A later step's argument that
is an earlier step's return value (a DelayedReturn) is resolved inside the container from that S3 path.
The image is the sklearn stand-in with the SDK on it (tests/images/sdk-training): on AWS the image must
carry the SDK and the client's Python/cloudpickle versions too.
"""

from __future__ import annotations

import pytest

from .helpers import ROLE, sdk_environment, unique

TELEMETRY: list = []


@pytest.fixture(scope="module")
def session(sagemaker_emulator, sdk_training_image, tmp_path_factory):
    from sagemaker.workflow.pipeline_context import PipelineSession

    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, TELEMETRY)
        mp.chdir(tmp_path_factory.mktemp("step-decorator"))
        bucket = unique("step-deco")
        session = PipelineSession(default_bucket=bucket, sagemaker_config={
            "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
        session.boto_session.client("s3", endpoint_url=sagemaker_emulator.endpoint_url).create_bucket(Bucket=bucket)
        yield session


def test_two_step_functions_chained_by_a_delayed_return(session, sdk_training_image, sagemaker_client):
    from sagemaker.workflow.function_step import step
    from sagemaker.workflow.pipeline import Pipeline

    options = {"image_uri": sdk_training_image, "instance_type": "ml.m5.large", "role": ROLE,
               "keep_alive_period_in_seconds": 0}

    @step(name="MakeData", **options)
    def make_data(count: int) -> list:
        return [i * i for i in range(count)]

    @step(name="Total", **options)
    def total(values: list, offset: int) -> dict:
        return {"sum": sum(values) + offset, "n": len(values)}

    result = total(make_data(5), offset=100)
    pipeline = Pipeline(name=unique("step-deco"), steps=[result], sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    execution.wait(delay=1, max_attempts=600)
    steps = {s["StepName"]: s for s in execution.list_steps()}
    assert {name: s["StepStatus"] for name, s in steps.items()} == {"MakeData": "Succeeded", "Total": "Succeeded"}
    assert execution.result(step_name="MakeData") == [0, 1, 4, 9, 16]
    assert execution.result(step_name="Total") == {"sum": 130, "n": 5}
    job_arn = steps["Total"]["Metadata"]["TrainingJob"]["Arn"]
    job = sagemaker_client.describe_training_job(TrainingJobName=job_arn.rsplit("/", 1)[1])
    assert job["AlgorithmSpecification"]["TrainingImage"] == sdk_training_image
    assert job["TrainingJobStatus"] == "Completed"
