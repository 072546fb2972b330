"""The SageMaker Python SDK v2 (`sagemaker<3`, installed from PyPI), unchanged, against the emulator.

One module-scoped session, training job and endpoint serve every test: fit with the live log tail,
attach, deploy + predict, batch transform through the deployed model, Processor and ScriptProcessor
runs, and finally delete. The fixtures hold the README's SDK v2 snippet, line for line.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from .helpers import ROLE, endpoint_containers, sdk_environment, unique
from .readme import missing_from

# The SDK is imported where it is used: importing it costs seconds, which every `pytest` run would pay
# at collection, even `-m "not docker"` that runs none of these tests.

BUCKET = "sagemaker-us-east-1-123456789012"


@pytest.fixture(scope="module")
def sdk(sagemaker_emulator, training_image, serving_image, tmp_path_factory):
    """The environment of the README (AWS_ENDPOINT_URL & co), the images under the README's names,
    and a record of every telemetry request the SDK would send (there must be none)."""
    import sagemaker

    if int(sagemaker.__version__.split(".")[0]) != 2:  # v3 runs in its own env (test_sdk_v3.py)
        pytest.fail(f"tests/test_sdk_v2.py needs the SageMaker SDK v2 (pyproject's test extra), found "
                    f"{sagemaker.__version__}", pytrace=False)
    subprocess.run(["docker", "tag", training_image, "my-training:1"], check=True)
    subprocess.run(["docker", "tag", serving_image, "my-serving-image:latest"], check=True)
    sent: list[tuple] = []
    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, sent)
        workdir = tmp_path_factory.mktemp("sdk-v2")
        (workdir / "train.csv").write_text("1,2\n3,4\n")
        mp.chdir(workdir)
        yield sent


@pytest.fixture(scope="module")
def session(sdk):
    import sagemaker

    # --- README sdk-v2 snippet, part 1 ---
    session = sagemaker.Session(
        default_bucket="sagemaker-us-east-1-123456789012",  # see below: the SDK asks STS at AWS for it
        sagemaker_config={"SchemaVersion": "1.0",
                          "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    # --- end ---
    return session


@pytest.fixture(scope="module")
def trained(session):
    """fit() with logs=True; returns the estimator, what the SDK printed and how long fit took."""
    from sagemaker.estimator import Estimator

    printed = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(printed):
        # --- README sdk-v2 snippet, part 2 ---
        train = session.upload_data("train.csv", key_prefix="data")  # into the default bucket
        estimator = Estimator(image_uri="my-training:1", role="arn:aws:iam::123456789012:role/SageMakerRole",
                              instance_count=1, instance_type="ml.m5.large", hyperparameters={"epochs": 1},
                              output_path=f"s3://{session.default_bucket()}/output", sagemaker_session=session)
        estimator.fit({"train": train})  # prints the job's log until it ends
        # --- end ---
    return estimator, printed.getvalue(), time.monotonic() - started


@pytest.fixture(scope="module")
def deploying(trained):
    """estimator.deploy() in a thread, started as soon as the job is trained: the SDK sleeps 30 s before
    it first looks at the endpoint, and the attach and processing tests run meanwhile."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer

    outcome: dict = {}

    def deploy(estimator) -> None:
        try:
            # --- README sdk-v2 snippet, part 3 ---
            predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                         image_uri="my-serving-image:latest",
                                         serializer=JSONSerializer(), deserializer=JSONDeserializer())
            print(predictor.predict({"x": 1}))
            # --- end ---
            outcome["predictor"] = predictor
        except BaseException as error:  # re-raised by the predictor fixture
            outcome["error"] = error

    thread = threading.Thread(target=deploy, args=(trained[0],), daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture(scope="module")
def predictor(deploying):
    thread, outcome = deploying
    thread.join(300)
    assert not thread.is_alive(), "estimator.deploy() did not return within 300 s"
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["predictor"]
    with contextlib.suppress(ClientError):  # when test_delete_endpoint did not get to it
        outcome["predictor"].sagemaker_session.delete_endpoint(outcome["predictor"].endpoint_name)


def test_readme_snippet_is_the_one_run_here():
    assert missing_from("sdk-v2", Path(__file__)) == []


def test_default_bucket_and_identity_from_the_embedded_services(session, s3_client):
    assert session.default_bucket() == BUCKET
    s3_client.head_bucket(Bucket=BUCKET)  # created by the SDK in the embedded S3
    # the identity the SDK's boto session sees (it derives the default bucket name from it)
    assert session.boto_session.client("sts").get_caller_identity()["Account"] == "123456789012"


@pytest.mark.usefixtures("deploying")  # starts the deployment the later tests use
def test_fit_streams_the_log_until_the_job_ends(trained, sagemaker_client, s3_client):
    estimator, printed, seconds = trained
    job = sagemaker_client.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["HyperParameters"] == {"epochs": "1"}
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/data/train.csv"
    lines = printed.splitlines()
    assert "epoch=2 train_loss=0.3333; valid_acc=0.70" in lines and "done" in lines, printed
    assert any("Completed - Training job completed" in line for line in lines), printed
    assert seconds < 60, f"fit took {seconds:.0f}s: the log tail did not end with the job"
    assert estimator.model_data == f"s3://{BUCKET}/output/{job['TrainingJobName']}/output/model.tar.gz"
    s3_client.head_object(Bucket=BUCKET, Key=estimator.model_data.split(BUCKET + "/", 1)[1])


def test_attach_rebuilds_the_estimator(trained, session):
    from sagemaker.estimator import Estimator

    estimator = trained[0]
    with contextlib.redirect_stdout(io.StringIO()):
        attached = Estimator.attach(estimator.latest_training_job.name, sagemaker_session=session)
    assert attached.model_data == estimator.model_data
    assert (attached.image_uri, attached.role, attached.instance_type) == ("my-training:1", ROLE, "ml.m5.large")
    assert attached.output_path == f"s3://{BUCKET}/output"
    assert attached.hyperparameters() == {"epochs": "1"}


def test_processor_run(session, processing_image, sagemaker_client, s3_client):
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor

    output = f"s3://{BUCKET}/{unique('proc')}"
    processor = Processor(role=ROLE, image_uri=processing_image, instance_count=1, instance_type="ml.m5.large",
                          env={"MY_FLAG": "on"}, sagemaker_session=session)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        processor.run(inputs=[ProcessingInput(source=f"s3://{BUCKET}/data/", destination="/opt/ml/processing/input")],
                      outputs=[ProcessingOutput(source="/opt/ml/processing/report", destination=output)],
                      arguments=["--rows", "2"], wait=True, logs=True)
    assert "argv=['--rows', '2']" in printed.getvalue() and "done" in printed.getvalue(), printed.getvalue()
    job = sagemaker_client.describe_processing_job(ProcessingJobName=processor.latest_job.job_name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    report = json.loads(s3_client.get_object(Bucket=BUCKET, Key=output.split(BUCKET + "/", 1)[1]
                                             + "/report-algo-1.json")["Body"].read())
    assert report["argv"] == ["--rows", "2"]
    assert report["env"] == {"MY_FLAG": "on"}
    assert report["inputs"][job["ProcessingInputs"][0]["InputName"]] == {"train.csv": "1,2\n3,4\n"}


def test_script_processor_uploads_and_runs_code(session, processing_image, tmp_path, s3_client):
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor

    script = tmp_path / "upper.py"
    script.write_text("import sys\n"
                      "data = open('/opt/ml/processing/input/train.csv').read()\n"
                      "open('/opt/ml/processing/out/upper.txt', 'w').write(data.upper() + ' '.join(sys.argv[1:]))\n")
    output = f"s3://{BUCKET}/{unique('script')}"
    processor = ScriptProcessor(role=ROLE, image_uri=processing_image, command=["python3"], instance_count=1,
                                instance_type="ml.m5.large", sagemaker_session=session)
    with contextlib.redirect_stdout(io.StringIO()):
        processor.run(code=str(script), arguments=["a", "b"], wait=True, logs=False,
                      inputs=[ProcessingInput(source=f"s3://{BUCKET}/data/", destination="/opt/ml/processing/input")],
                      outputs=[ProcessingOutput(source="/opt/ml/processing/out", destination=output)])
    assert processor.latest_job.describe()["ProcessingJobStatus"] == "Completed"
    # the SDK uploaded the script into the default bucket and made it the container's entrypoint
    code = processor.latest_job.describe()["ProcessingInputs"][-1]["S3Input"]["S3Uri"]
    assert code.startswith(f"s3://{BUCKET}/") and code.endswith("/upper.py")
    key = output.split(BUCKET + "/", 1)[1] + "/upper.txt"
    assert s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"1,2\n3,4\na b"


def test_deploy_and_predict(predictor, trained, sagemaker_client):
    reply = predictor.predict({"x": 1})
    assert reply["echo"] == '{"x": 1}'
    assert reply["content_type"] == "application/json"
    assert reply["files"] == ["report-algo-1.json"]  # the training job's model.tar.gz, unpacked
    endpoint = sagemaker_client.describe_endpoint(EndpointName=predictor.endpoint_name)
    assert endpoint["EndpointStatus"] == "InService"
    assert len(endpoint_containers(predictor.endpoint_name)) == 1


def deployed_model_name(sagemaker_client, endpoint: str) -> str:
    config = sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    return sagemaker_client.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]


def test_transformer_through_the_deployed_model(predictor, session, sagemaker_client):
    from sagemaker.transformer import Transformer

    output = f"s3://{BUCKET}/batch-{unique('out')}"
    transformer = Transformer(model_name=deployed_model_name(sagemaker_client, predictor.endpoint_name),
                              instance_count=1, instance_type="ml.m5.large", output_path=output,
                              accept="text/csv", sagemaker_session=session)
    with contextlib.redirect_stdout(io.StringIO()):
        transformer.transform(f"s3://{BUCKET}/data/", content_type="text/csv", split_type="Line",
                              wait=True, logs=True)
    job = sagemaker_client.describe_transform_job(TransformJobName=transformer.latest_transform_job.name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert session.read_s3_file(BUCKET, output.split(BUCKET + "/", 1)[1] + "/train.csv.out") == "3.0\n7.0"


def test_delete_endpoint(predictor, sagemaker_client):
    name = predictor.endpoint_name
    model = deployed_model_name(sagemaker_client, name)
    predictor.delete_model()
    predictor.delete_endpoint()  # and its endpoint config
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sagemaker_client.describe_endpoint(EndpointName=name)
    with pytest.raises(ClientError, match="Could not find model"):
        sagemaker_client.describe_model(ModelName=model)
    deadline = time.monotonic() + 30
    while endpoint_containers(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert endpoint_containers(name) == []


def test_telemetry_opt_out_from_a_config_file(sdk, tmp_path, monkeypatch):
    """The README's other way to opt out: the same keys in the SDK's YAML config file."""
    import sagemaker
    from sagemaker.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.utils import resolve_value_from_config

    config = tmp_path / "config.yaml"
    for value in ("true", "false"):
        config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
                          f"      TelemetryOptOut: {value}\n")
        monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
        session = sagemaker.Session(default_bucket=BUCKET)
        opted_out = resolve_value_from_config(config_path=TELEMETRY_OPT_OUT_PATH, sagemaker_session=session)
        assert opted_out is (value == "true")


def test_no_telemetry_was_sent(sdk, predictor):
    """TelemetryOptOut in the session's config: the SDK sent nothing to its AWS telemetry bucket."""
    assert sdk == []


# -- model registry and experiments ----------------------------------------------------------------
def test_register_two_versions_approve_and_deploy(trained, session, sagemaker_client, sagemaker_runtime_client):
    """Estimator.fit -> register() twice into a group (the SDK searches the group first) -> approve
    version 2 -> ModelPackage(...).deploy() -> predict from a real container; version 1, still
    PendingManualApproval, is refused by CreateModel."""
    from sagemaker import ModelPackage
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    estimator = trained[0]
    group = unique("sdk-group")
    packages = [estimator.register(content_types=["application/json"], response_types=["application/json"],
                                   inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
                                   image_uri="my-serving-image:latest", model_package_group_name=group)
                for _ in range(2)]
    arns = [p.model_package_arn for p in packages]
    assert [arn.rsplit("/", 1)[1] for arn in arns] == ["1", "2"]
    first = sagemaker_client.describe_model_package(ModelPackageName=arns[0])
    assert first["ModelApprovalStatus"] == "PendingManualApproval" and first["ModelPackageStatus"] == "Completed"
    assert first["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == estimator.model_data
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_model(ModelName=unique("unapproved"), ExecutionRoleArn=ROLE,
                                      Containers=[{"ModelPackageName": arns[0]}])
    assert exc.value.response["Error"]["Code"] == "ValidationException" and "Approved" in str(exc.value)
    sagemaker_client.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved")
    model = ModelPackage(role=ROLE, model_package_arn=arns[1], sagemaker_session=session, predictor_cls=Predictor)
    try:
        predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                 serializer=JSONSerializer(), deserializer=JSONDeserializer())
        reply = predictor.predict({"x": 1})
        assert reply["echo"] == '{"x": 1}'
        assert reply["files"] == ["report-algo-1.json"]  # the package's ModelDataUrl: the trained model
    finally:
        if model.endpoint_name:
            session.delete_endpoint(model.endpoint_name)


def test_run_logs_parameters_metrics_files_and_a_confusion_matrix(session, sagemaker_client, tmp_path):
    from sagemaker.experiments.run import Run

    experiment, run_name = unique("sdk-exp"), unique("run")
    (tmp_path / "notes.txt").write_text("hello")
    with Run(experiment_name=experiment, run_name=run_name, sagemaker_session=session) as run:
        run.log_parameters({"lr": 0.01, "optimizer": "adam"})
        for step in range(25):
            run.log_metric(name="loss", value=1.0 / (step + 1), step=step)
        run.log_file(str(tmp_path / "notes.txt"), name="notes", is_output=True)
        run.log_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], title="cm")
    component = f"{experiment}-{run_name}"
    got = sagemaker_client.describe_trial_component(TrialComponentName=component)
    assert got["Status"]["PrimaryStatus"] == "Completed" and got["EndTime"] >= got["StartTime"]
    assert got["Parameters"]["lr"] == {"NumberValue": 0.01}
    assert got["Parameters"]["optimizer"] == {"StringValue": "adam"}
    assert got["OutputArtifacts"]["notes"]["Value"].startswith("s3://")
    loss = {m["MetricName"]: m for m in got["Metrics"]}["loss"]
    assert loss["Count"] == 25 and loss["Max"] == 1.0 and loss["Min"] == pytest.approx(1 / 25)
    assert loss["Last"] == pytest.approx(1 / 25)
    trials = sagemaker_client.list_trials(TrialComponentName=component)["TrialSummaries"]
    assert [t["TrialName"] for t in trials] == [f"Default-Run-Group-{experiment}"]
    produced = sagemaker_client.list_associations(SourceArn=got["TrialComponentArn"])["AssociationSummaries"]
    assert [a["DestinationType"] for a in produced] == ["ConfusionMatrix"]  # the artifact's own type
    from sagemaker.analytics import ExperimentAnalytics

    frame = ExperimentAnalytics(experiment_name=experiment, sagemaker_session=session).dataframe()
    assert frame["TrialComponentName"].tolist() == [component]
    assert frame["loss - Count"].tolist() == [25] and frame["lr"].tolist() == [0.01]
    # loading the run again finds the same component (the SDK's load-or-create and Search)
    from sagemaker.experiments.run import load_run

    with load_run(experiment_name=experiment, run_name=run_name, sagemaker_session=session) as again:
        again.log_parameter("extra", 1)
    assert sagemaker_client.describe_trial_component(TrialComponentName=component)["Parameters"]["extra"] == {
        "NumberValue": 1}
