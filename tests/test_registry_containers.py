"""The registry and experiments with real containers: an approved package served by an endpoint,
a package validated by a real transform job, a training job's own trial component and metrics."""

from __future__ import annotations

import json

from .helpers import (
    ROLE,
    deploy,
    endpoint_config,
    processing_request,
    training_request,
    unique,
    wait_processing,
    wait_training,
    wait_until,
)


def _package(sm, image: str, **extra) -> str:
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    return sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification={
        "Containers": [{"Image": image, "Environment": {"VARIANT_TAG": "from-package"}}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}, **extra)[
        "ModelPackageArn"]


def test_approved_package_serves_on_an_endpoint(sagemaker_client, sagemaker_runtime_client, serving_image):
    sm = sagemaker_client
    arn = _package(sm, serving_image, ModelApprovalStatus="Approved")
    model = unique("pkg-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": arn}])
    endpoint = unique("pkg-ep")
    deploy(sm, endpoint, endpoint_config(sm, ("AllTraffic", model, 1, 1.0)))
    try:
        reply = sagemaker_runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"hi",
                                                         ContentType="application/json")
        assert json.loads(reply["Body"].read())["variant"] == "from-package"
        # the lineage AWS creates for an endpoint: its context, a ModelDeployment action, the package's artifact
        endpoint_arn = sm.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
        wait_until(lambda: sm.list_contexts(SourceUri=endpoint_arn)["ContextSummaries"], timeout=30,
                   what="the endpoint's lineage context")
        context = sm.list_contexts(SourceUri=endpoint_arn)["ContextSummaries"][0]
        assert context["ContextType"] == "Endpoint"
        up = sm.query_lineage(StartArns=[context["ContextArn"]], Direction="Ascendants", IncludeEdges=False)
        types = sorted((v["LineageType"], v.get("Type")) for v in up["Vertices"])
        assert types == [("Action", "ModelDeployment"), ("Artifact", "Image"), ("Artifact", "Model")], types
        package = sm.list_artifacts(SourceUri=arn)["ArtifactSummaries"][0]["ArtifactArn"]
        assert package in {v["Arn"] for v in up["Vertices"]}
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_validation_specification_runs_a_transform_job(sagemaker_client, s3_client, bucket, serving_image):
    sm = sagemaker_client
    s3_client.put_object(Bucket=bucket, Key="validation/in.csv", Body=b"1,2\n3,4\n")
    definition = {"TransformInput": {"DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/validation/"}}, "ContentType": "text/csv",
        "SplitType": "Line"}, "TransformOutput": {"S3OutputPath": f"s3://{bucket}/validated/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
    arn = _package(sm, serving_image, ValidationSpecification={"ValidationRole": ROLE, "ValidationProfiles": [
        {"ProfileName": "csv", "TransformJobDefinition": definition}]})
    assert sm.describe_model_package(ModelPackageName=arn)["ModelPackageStatus"] == "InProgress"
    wait_until(lambda: sm.describe_model_package(ModelPackageName=arn)["ModelPackageStatus"] != "InProgress",
               timeout=180, what="the validation transform job")
    got = sm.describe_model_package(ModelPackageName=arn)
    assert got["ModelPackageStatus"] == "Completed", got["ModelPackageStatusDetails"]
    assert got["ModelPackageStatusDetails"]["ValidationStatuses"] == [{"Name": "csv", "Status": "Completed"}]
    out = s3_client.get_object(Bucket=bucket, Key="validated/in.csv.out")["Body"].read()
    assert out.split() == [b"3.0", b"7.0"]


def test_training_job_in_an_experiment(sagemaker_client, sagemaker_metrics_client, bucket, training_image):
    sm = sagemaker_client
    experiment, trial = unique("exp"), unique("trial")
    sm.create_experiment(ExperimentName=experiment)
    sm.create_trial(TrialName=trial, ExperimentName=experiment)
    name = unique("train")
    sm.create_training_job(**training_request(
        name, bucket, training_image, HyperParameters={"epochs": "1", "eta": "0.1"},
        ExperimentConfig={"ExperimentName": experiment, "TrialName": trial},
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "File",
                                "MetricDefinitions": [{"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"}]}))
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    component = f"{name}-aws-training-job".lower()

    def finished() -> bool:
        return sm.describe_trial_component(TrialComponentName=component)["Status"]["PrimaryStatus"] == "Completed"

    wait_until(finished, timeout=30, what="the job's trial component")
    got = sm.describe_trial_component(TrialComponentName=component)
    assert got["Source"] == {"SourceArn": job["TrainingJobArn"], "SourceType": "SageMakerTrainingJob"}
    assert got["Parameters"]["eta"] == {"NumberValue": 0.1}
    assert got["OutputArtifacts"]["SageMaker.ModelArtifact"]["Value"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    loss = {m["MetricName"]: m for m in got["Metrics"]}["train:loss"]
    assert loss["Count"] == 3 and loss["Min"] == 0.3333 and loss["Max"] == 1.0
    listed = sm.list_trial_components(SourceArn=job["TrainingJobArn"])["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in listed] == [component]
    assert [c["TrialComponentName"] for c in sm.list_trial_components(TrialName=trial)
            ["TrialComponentSummaries"]] == [component]
    series = sagemaker_metrics_client.batch_get_metrics(MetricQueries=[
        {"MetricName": "train:loss", "ResourceArn": job["TrainingJobArn"], "MetricStat": "Count",
         "Period": "OneHour", "XAxisType": "Timestamp"}])["MetricQueryResults"][0]
    assert series["Status"] == "Complete" and sum(series["MetricValues"]) == 3


def test_processing_job_without_a_trial_gets_one(sagemaker_client, bucket, processing_image):
    """ExperimentConfig with only ExperimentName: the job's component goes into a new trial named after it."""
    sm = sagemaker_client
    experiment = unique("exp")
    sm.create_experiment(ExperimentName=experiment)
    name = unique("proc")
    sm.create_processing_job(**processing_request(name, bucket, processing_image,
                                                  ExperimentConfig={"ExperimentName": experiment}))
    job = wait_processing(sm, name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    component = f"{name}-aws-processing-job".lower()
    wait_until(lambda: sm.describe_trial_component(TrialComponentName=component)["Status"]["PrimaryStatus"]
               == "Completed", timeout=30, what="the processing job's trial component")
    got = sm.describe_trial_component(TrialComponentName=component)
    assert got["Source"] == {"SourceArn": job["ProcessingJobArn"], "SourceType": "SageMakerProcessingJob"}
    assert [t["TrialName"] for t in sm.list_trials(ExperimentName=experiment)["TrialSummaries"]] == [component]
    # its lineage: the image ContributedTo the job's component, which Produced its two S3 outputs
    into = sm.list_associations(DestinationArn=got["TrialComponentArn"])["AssociationSummaries"]
    assert [(a["SourceType"], a["AssociationType"]) for a in into] == [("Image", "ContributedTo")]
    wait_until(lambda: len(sm.list_associations(SourceArn=got["TrialComponentArn"])["AssociationSummaries"]) == 2,
               timeout=30, what="the processing job's output artifacts")
    out = sm.list_associations(SourceArn=got["TrialComponentArn"])["AssociationSummaries"]
    outputs = {o["S3Output"]["S3Uri"] for o in job["ProcessingOutputConfig"]["Outputs"]}
    assert {sm.describe_artifact(ArtifactArn=a["DestinationArn"])["Source"]["SourceUri"] for a in out} == outputs
    assert {(a["DestinationType"], a["AssociationType"]) for a in out} == {("DataSet", "Produced")}
