"""`load_run()` inside a training job, through the SageMaker Python SDK v2 unchanged on both sides.

On the host, `Estimator.fit` inside `with Run(...)` sends the run's ExperimentConfig with the job; in
the container the SDK finds the job from TRAINING_JOB_ARN, reads the ExperimentConfig back with
DescribeTrainingJob, loads the same run and logs to it, reaching the emulator through the
AWS_ENDPOINT_URL the job's containers get. The image is the sklearn stand-in with the SDK installed
(tests/images/sdk-training: AWS's sklearn images do not ship the SDK).
"""

from __future__ import annotations

import pytest

from .helpers import ROLE, sdk_environment, unique

TRAIN_PY = '''
import os
from sagemaker.experiments.run import load_run

with load_run() as run:
    run.log_parameter("job", os.environ["TRAINING_JOB_NAME"])
    for step in range(5):
        run.log_metric(name="job:loss", value=1.0 / (step + 1), step=step)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("trained")
print("logged to the run")
'''


@pytest.fixture(scope="module")
def session(sagemaker_emulator, sdk_training_image, tmp_path_factory):
    import sagemaker

    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, [])
        mp.chdir(tmp_path_factory.mktemp("experiments-in-jobs"))
        yield sagemaker.Session(default_bucket=unique("load-run"), sagemaker_config={
            "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})


def test_load_run_inside_a_training_job_logs_to_the_run(session, sdk_training_image, sagemaker_client, tmp_path):
    from sagemaker.analytics import ExperimentAnalytics
    from sagemaker.experiments.run import Run
    from sagemaker.sklearn import SKLearn

    session.boto_session.client("s3", endpoint_url=session.sagemaker_client.meta.endpoint_url).create_bucket(
        Bucket=session.default_bucket())
    (tmp_path / "train.py").write_text(TRAIN_PY)
    experiment, run_name = unique("job-exp"), unique("run")
    estimator = SKLearn(entry_point="train.py", source_dir=str(tmp_path), framework_version="1.2-1",
                        py_version="py3", image_uri=sdk_training_image, instance_type="ml.m5.large", role=ROLE,
                        sagemaker_session=session)
    with Run(experiment_name=experiment, run_name=run_name, sagemaker_session=session) as run:
        run.log_parameter("lr", 0.1)
        estimator.fit(logs=False)  # the run's experiment_config goes with the job
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    component = f"{experiment}-{run_name}"
    assert job["ExperimentConfig"] == {"ExperimentName": experiment, "TrialName": f"Default-Run-Group-{experiment}",
                                       "RunName": component}
    got = sagemaker_client.describe_trial_component(TrialComponentName=component)
    assert got["Parameters"]["job"] == {"StringValue": job["TrainingJobName"]}
    assert got["Parameters"]["lr"] == {"NumberValue": 0.1}
    loss = {m["MetricName"]: m for m in got["Metrics"]}["job:loss"]
    assert loss["Count"] == 5 and loss["Max"] == 1.0 and loss["Last"] == pytest.approx(0.2)
    assert got["Status"]["PrimaryStatus"] == "Completed"
    # the job's own trial component sits in the run's trial next to the run
    job_component = f"{job['TrainingJobName']}-aws-training-job".lower()
    frame = ExperimentAnalytics(experiment_name=experiment, sagemaker_session=session).dataframe()
    assert sorted(frame["TrialComponentName"]) == sorted([component, job_component])
    row = frame[frame["TrialComponentName"] == component].iloc[0]
    assert row["job:loss - Count"] == 5 and row["lr"] == 0.1
