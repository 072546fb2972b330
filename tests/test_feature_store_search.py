"""Search over feature groups (Resource=FeatureGroup) and their features (Resource=FeatureMetadata):
the same evaluator as every other searchable kind, over the records AWS's Search returns for them."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from . import test_feature_store
from .helpers import error_of, unique
from .test_feature_store import _created

bucket = test_feature_store.bucket  # its module-scoped fixture: the shared bucket


@pytest.fixture(scope="module")
def groups(sagemaker_client, bucket):
    """Three groups sharing a unique prefix: online only (tagged), offline (with a Glue table), both."""
    sm, prefix = sagemaker_client, unique("fgs")
    online = _created(sm, f"{prefix}-online", Tags=[{"Key": "team", "Value": "fraud-detection"}])
    time.sleep(0.05)
    offline = _created(sm, f"{prefix}-offline", OnlineStoreConfig=None,
                       OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/search"}},
                       Description="claims history")
    time.sleep(0.05)
    both = _created(sm, f"{prefix}-both", OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/s2"},
                                                                "DisableGlueTableCreation": True})
    sm.update_feature_metadata(FeatureGroupName=f"{prefix}-both", FeatureName="score", Description="risk score",
                               ParameterAdditions=[{"Key": "owner", "Value": "risk-team"}])
    return prefix, online, offline, both


def _names(sm, resource: str, *filters: dict, member: str = "FeatureGroup", **options) -> list[str]:
    expression = {"Filters": list(filters)}
    results = sm.search(Resource=resource, SearchExpression=expression, **options)["Results"]
    return [r[member]["FeatureGroupName"] + (f".{r[member]['FeatureName']}" if member == "FeatureMetadata" else "")
            for r in results]


def test_feature_group_records_filters_and_sort(sagemaker_client, groups):
    sm = sagemaker_client
    prefix, online, offline, both = groups
    mine = {"Name": "FeatureGroupName", "Operator": "Contains", "Value": prefix}
    assert _names(sm, "FeatureGroup", mine, SortBy="CreationTime", SortOrder="Ascending") == [
        f"{prefix}-online", f"{prefix}-offline", f"{prefix}-both"]
    assert _names(sm, "FeatureGroup", mine, SortBy="FeatureGroupName", SortOrder="Descending") == [
        f"{prefix}-online", f"{prefix}-offline", f"{prefix}-both"]
    record = sm.search(Resource="FeatureGroup", SearchExpression={"Filters": [
        {"Name": "FeatureGroupName", "Operator": "Equals", "Value": f"{prefix}-offline"}]})["Results"]
    assert len(record) == 1
    group = record[0]["FeatureGroup"]
    assert group["FeatureGroupArn"] == offline["FeatureGroupArn"] and group["FeatureGroupStatus"] == "Created"
    assert group["OfflineStoreConfig"]["DataCatalogConfig"] == offline["OfflineStoreConfig"]["DataCatalogConfig"]
    assert group["Description"] == "claims history" and "AllTags" not in group
    assert not [key for key in group if key.startswith("_")]
    # the status lives in the row, not the stored document: an Equals on it is not narrowed in SQL
    assert _names(sm, "FeatureGroup", mine, {"Name": "FeatureGroupStatus", "Operator": "Equals",
                                             "Value": "Created"}, SortBy="FeatureGroupName",
                  SortOrder="Ascending") == [f"{prefix}-both", f"{prefix}-offline", f"{prefix}-online"]
    assert _names(sm, "FeatureGroup", mine, {"Name": "FeatureGroupStatus", "Operator": "Equals",
                                             "Value": "Creating"}) == []
    glue = {"Name": "OfflineStoreConfig.DataCatalogConfig.TableName", "Operator": "Exists"}
    assert _names(sm, "FeatureGroup", mine, glue) == [f"{prefix}-offline"]
    no_glue = {"Name": "OfflineStoreConfig.DisableGlueTableCreation", "Operator": "Equals", "Value": "true"}
    assert _names(sm, "FeatureGroup", mine, no_glue) == [f"{prefix}-both"]
    created = {"Name": "CreationTime", "Operator": "GreaterThanOrEqualTo",
               "Value": offline["CreationTime"].isoformat()}
    assert sorted(_names(sm, "FeatureGroup", mine, created)) == sorted([f"{prefix}-offline", f"{prefix}-both"])
    assert _names(sm, "FeatureGroup", mine, {"Name": "Tags.team", "Operator": "Equals",
                                             "Value": "fraud-detection"}) == [f"{prefix}-online"]
    all_tags = {"Name": "AllTags", "Operator": "Contains", "Value": "fraud"}
    assert _names(sm, "FeatureGroup", all_tags, {"Name": "FeatureGroupName", "Operator": "Equals",
                                                 "Value": f"{prefix}-online"}) == [f"{prefix}-online"]
    tagged = sm.search(Resource="FeatureGroup", SearchExpression={"Filters": [
        {"Name": "FeatureGroupName", "Operator": "Equals", "Value": f"{prefix}-online"}]})["Results"][0]
    assert tagged["FeatureGroup"]["Tags"] == [{"Key": "team", "Value": "fraud-detection"}]


def test_feature_group_pages(sagemaker_client, groups):
    sm = sagemaker_client
    prefix = groups[0]
    expression = {"Filters": [{"Name": "FeatureGroupName", "Operator": "Contains", "Value": prefix}]}
    seen, token = [], None
    while True:
        page = sm.search(Resource="FeatureGroup", SearchExpression=expression, MaxResults=2, SortBy="CreationTime",
                         SortOrder="Ascending", **({"NextToken": token} if token else {}))
        seen += [r["FeatureGroup"]["FeatureGroupName"] for r in page["Results"]]
        assert page["TotalHits"]["Value"] == 3
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"{prefix}-online", f"{prefix}-offline", f"{prefix}-both"]
    first = sm.search(Resource="FeatureGroup", SearchExpression=expression, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as excinfo:  # a FeatureGroup search's token is not a FeatureMetadata one's
        sm.search(Resource="FeatureMetadata", SearchExpression=expression, NextToken=first)
    assert error_of(excinfo)[0] == "ValidationException"


def test_feature_metadata_records(sagemaker_client, groups):
    sm = sagemaker_client
    prefix = groups[0]
    group = {"Name": "FeatureGroupName", "Operator": "Equals", "Value": f"{prefix}-both"}
    assert sorted(_names(sm, "FeatureMetadata", group, member="FeatureMetadata")) == sorted(
        f"{prefix}-both.{name}" for name in ("customer_id", "event_time", "age", "score"))
    owner = {"Name": "Parameters.owner", "Operator": "Equals", "Value": "risk-team"}
    found = sm.search(Resource="FeatureMetadata", SearchExpression={"Filters": [owner, group]})["Results"]
    assert [r["FeatureMetadata"]["FeatureName"] for r in found] == ["score"]
    record = found[0]["FeatureMetadata"]
    assert record["Description"] == "risk score" and record["FeatureType"] == "Fractional"
    assert record["Parameters"] == [{"Key": "owner", "Value": "risk-team"}] and "AllParameters" not in record
    assert record["FeatureGroupArn"] == groups[3]["FeatureGroupArn"]
    assert _names(sm, "FeatureMetadata", {"Name": "AllParameters", "Operator": "Contains", "Value": "risk"},
                  group, member="FeatureMetadata") == [f"{prefix}-both.score"]
    typed = {"Name": "FeatureType", "Operator": "Equals", "Value": "Integral"}
    assert sorted(_names(sm, "FeatureMetadata", typed, {"Name": "FeatureGroupName", "Operator": "Contains",
                                                        "Value": prefix}, member="FeatureMetadata")) == sorted(
        f"{prefix}-{kind}.age" for kind in ("online", "offline", "both"))


def test_visibility_conditions_and_cross_account(sagemaker_client, groups):
    """VisibilityConditions leave out a result whose tag has another value and keep untagged ones; a
    CrossAccount search sees only what other accounts shared, and the emulator serves one account."""
    sm = sagemaker_client
    prefix = groups[0]
    mine = {"Name": "FeatureGroupName", "Operator": "Contains", "Value": prefix}
    everything = sorted(_names(sm, "FeatureGroup", mine))
    assert len(everything) == 3
    assert sorted(_names(sm, "FeatureGroup", mine, VisibilityConditions=[
        {"Key": "Tags.team", "Value": "fraud-detection"}])) == everything
    assert sorted(_names(sm, "FeatureGroup", mine, VisibilityConditions=[
        {"Key": "Tags.team", "Value": "marketing"}])) == [f"{prefix}-both", f"{prefix}-offline"]
    with pytest.raises(ClientError) as excinfo:
        _names(sm, "FeatureGroup", mine, VisibilityConditions=[{"Key": "team", "Value": "x"}])
    assert error_of(excinfo)[0] == "ValidationException"
    assert _names(sm, "FeatureGroup", mine, CrossAccountFilterOption="SameAccount") != []
    crossed = sm.search(Resource="FeatureGroup", SearchExpression={"Filters": [mine]},
                        CrossAccountFilterOption="CrossAccount")
    assert crossed["Results"] == [] and crossed["TotalHits"]["Value"] == 0


def test_the_default_resource_catalog(sagemaker_client):
    """AWS's one resource catalog per account: DefaultFeatureGroupCatalog, with the filters ListResourceCatalogs has."""
    import datetime as dt

    catalogs = sagemaker_client.list_resource_catalogs()["ResourceCatalogs"]
    assert [c["ResourceCatalogName"] for c in catalogs] == ["DefaultFeatureGroupCatalog"]
    assert catalogs[0]["ResourceCatalogArn"].endswith(":sagemaker-catalog/DefaultFeatureGroupCatalog")
    created = catalogs[0]["CreationTime"]
    assert created <= dt.datetime.now(dt.timezone.utc)
    assert sagemaker_client.list_resource_catalogs(NameContains="Feature")["ResourceCatalogs"] == catalogs
    assert sagemaker_client.list_resource_catalogs(NameContains="Model")["ResourceCatalogs"] == []
    assert sagemaker_client.list_resource_catalogs(CreationTimeAfter=created)["ResourceCatalogs"] == []
    again = sagemaker_client.list_resource_catalogs()["ResourceCatalogs"]
    assert again[0]["CreationTime"] == created  # stable: it is the account's, not the call's
