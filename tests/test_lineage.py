"""The lineage SageMaker creates by itself, walked with QueryLineage: a real training job's data and image
ContributedTo its trial component, which Produced the model artifact; a model package built on that
model is found to descend from the job and its data (Ascendants), and its group context and creation
action lie below it (Descendants), with Types, LineageTypes, time and Properties filters, MaxDepth,
IncludeEdges and pages."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, sdk_environment, training_request, unique, wait_training, wait_until


@pytest.fixture(scope="module")
def trained_package(sagemaker_client, s3_client, bucket, training_image):
    sm = sagemaker_client
    s3_client.put_object(Bucket=bucket, Key="lineage/train/data.csv", Body=b"1,2\n")
    data = f"s3://{bucket}/lineage/train/"
    name = unique("lineage-train")
    sm.create_training_job(**training_request(name, bucket, training_image, InputDataConfig=[{
        "ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}}}]))
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    component = sm.describe_trial_component(TrialComponentName=f"{name}-aws-training-job")
    model = job["ModelArtifacts"]["S3ModelArtifacts"]

    def produced() -> bool:
        return bool(sm.list_associations(SourceArn=component["TrialComponentArn"])["AssociationSummaries"])

    wait_until(produced, timeout=30, what="the job's model artifact")
    group = unique("lineage-group")
    sm.create_model_package_group(ModelPackageGroupName=group)
    package = sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification={
        "Containers": [{"Image": training_image, "ModelDataUrl": model}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
    found = sm.list_artifacts(SourceUri=package)["ArtifactSummaries"]
    assert [a["ArtifactType"] for a in found] == ["Model"]  # the package's own artifact
    return {"job": job, "component": component["TrialComponentArn"], "data": data, "model": model,
            "package_arn": package, "package": found[0]["ArtifactArn"], "image": training_image, "group": group}


def _artifact(sm, uri: str) -> dict:
    found = sm.list_artifacts(SourceUri=uri)["ArtifactSummaries"]
    assert len(found) == 1, found  # one artifact per SourceUri, reused
    return found[0]


def _query(sm, start: str, **params) -> dict:
    return sm.query_lineage(StartArns=[start], **params)


def test_a_package_descends_from_the_training_job_and_its_data(sagemaker_client, trained_package):
    sm, t = sagemaker_client, trained_package
    jobs = _query(sm, t["package"], Direction="Ascendants", IncludeEdges=False,
                  Filters={"LineageTypes": ["TrialComponent"], "Types": ["TrainingJob"]})
    assert jobs["Vertices"] == [{"Arn": t["component"], "LineageType": "TrialComponent", "Type": "TrainingJob"}]
    assert jobs["Edges"] == []  # always present: the SDK's LineageQuery reads it
    name = jobs["Vertices"][0]["Arn"].rsplit("/", 1)[1]
    assert sm.describe_trial_component(TrialComponentName=name)["Source"]["SourceArn"] == t["job"]["TrainingJobArn"]
    data = _artifact(sm, t["data"])
    datasets = _query(sm, t["package"], Direction="Ascendants", IncludeEdges=False, Filters={"Types": ["DataSet"]})
    assert datasets["Vertices"] == [{"Arn": data["ArtifactArn"], "LineageType": "Artifact", "Type": "DataSet"}]
    # the whole path with its edges: data -> job -> model -> package, and the image into both
    model, image = _artifact(sm, t["model"]), _artifact(sm, t["image"])
    package = _artifact(sm, t["package_arn"])
    everything = _query(sm, t["package"], Direction="Ascendants", IncludeEdges=True)
    edges = {(e["SourceArn"], e["DestinationArn"], e["AssociationType"]) for e in everything["Edges"]}
    assert edges == {(data["ArtifactArn"], t["component"], "ContributedTo"),
                     (image["ArtifactArn"], t["component"], "ContributedTo"),
                     (t["component"], model["ArtifactArn"], "Produced"),
                     (model["ArtifactArn"], package["ArtifactArn"], "ContributedTo"),
                     (image["ArtifactArn"], package["ArtifactArn"], "ContributedTo")}
    arns = [v["Arn"] for v in everything["Vertices"]]
    assert set(arns) == {data["ArtifactArn"], image["ArtifactArn"], t["component"], model["ArtifactArn"],
                         package["ArtifactArn"]}
    assert arns[:2] == sorted([model["ArtifactArn"], image["ArtifactArn"]])  # nearest first
    # MaxDepth: one association away
    near = _query(sm, t["package"], Direction="Ascendants", IncludeEdges=False, MaxDepth=1)
    assert {v["Arn"] for v in near["Vertices"]} == {model["ArtifactArn"], image["ArtifactArn"]}
    # StartArns admits lineage entities only (botocore's pattern): a package is reached through its artifact
    with pytest.raises(ClientError) as exc:
        _query(sm, t["package_arn"])
    assert error_of(exc)[0] == "ValidationException"


def test_descendants_both_and_filters(sagemaker_client, trained_package):
    sm, t = sagemaker_client, trained_package
    below = _query(sm, t["package"], Direction="Descendants", IncludeEdges=False)["Vertices"]
    assert sorted((v["LineageType"], v["Type"]) for v in below) == [("Action", "ModelPackageCreation"),
                                                                     ("Context", "ModelGroup")]
    context = next(v for v in below if v["LineageType"] == "Context")
    described = sm.describe_context(ContextName=context["Arn"].rsplit("/", 1)[1])
    assert described["Source"]["SourceUri"].endswith(f"model-package-group/{t['group']}")
    # from the training job down: its model, then the package built on it, then the package's group
    down = _query(sm, t["component"], Direction="Descendants", IncludeEdges=False,
                  Filters={"LineageTypes": ["Artifact", "Context"]})["Vertices"]
    assert [v["Type"] for v in down] == ["Model", "Model", "ModelGroup"]
    assert down[1]["Arn"] == t["package"]
    both = _query(sm, t["package"], Direction="Both", IncludeEdges=False)["Vertices"]
    assert {v["Arn"] for v in below} < {v["Arn"] for v in both}
    assert t["component"] in {v["Arn"] for v in both}
    # time and Properties filters
    assert _query(sm, t["package"], Direction="Both", IncludeEdges=False,
                  Filters={"CreatedAfter": time.time() + 60})["Vertices"] == []
    data = _artifact(sm, t["data"])
    sm.update_artifact(ArtifactArn=data["ArtifactArn"], Properties={"split": "train"})
    tagged = _query(sm, t["package"], Direction="Ascendants", IncludeEdges=False,
                    Filters={"Properties": {"split": "train", "other": "x"}})["Vertices"]
    assert [v["Arn"] for v in tagged] == [data["ArtifactArn"]]
    # pages of vertices
    first = _query(sm, t["package"], Direction="Both", IncludeEdges=False, MaxResults=2)
    rest = _query(sm, t["package"], Direction="Both", IncludeEdges=False, NextToken=first["NextToken"])
    assert [v["Arn"] for v in first["Vertices"] + rest["Vertices"]] == [v["Arn"] for v in both]


def test_the_sdks_lineage_helpers(sagemaker_emulator, sagemaker_client, trained_package):
    """The SDK v2's own traversals (LineageQuery underneath) on the graph SageMaker created."""
    import sagemaker
    from sagemaker.lineage.artifact import ModelArtifact

    t = trained_package
    with pytest.MonkeyPatch.context() as mp:
        sdk_environment(mp, sagemaker_emulator.endpoint_url, [])
        session = sagemaker.Session(default_bucket=unique("lineage-sdk"), sagemaker_config={
            "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
        package = ModelArtifact.load(artifact_arn=t["package"], sagemaker_session=session)
        assert package.training_job_arns() == [t["job"]["TrainingJobArn"]]
        assert [a.source.source_uri for a in package.dataset_artifacts()] == [t["data"]]


def test_query_lineage_errors(sagemaker_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.query_lineage(StartArns=["arn:aws:sagemaker:us-east-1:123456789012:artifact/x"],
                                       NextToken="not-a-token")
    assert error_of(exc)[0] == "ValidationException"
    unknown = sagemaker_client.query_lineage(StartArns=["arn:aws:sagemaker:us-east-1:123456789012:artifact/nope"])
    assert unknown["Vertices"] == []
