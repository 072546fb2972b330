"""Feature Store's control plane: feature groups and their feature metadata.

A group is a `feature-group` resource whose status column is its FeatureGroupStatus: Creating on
create, Created CREATE_SECONDS later, Deleting on delete and gone DELETE_SECONDS later (the
transitions are settled when the region's groups are next read: feature_store.FeatureStore.settle).
Create resolves the offline store's S3 location as AWS lays it out and creates the Glue table
(feature_store/catalog.py); the records themselves are the runtime's (handlers/featurestore_runtime.py).
"""

from __future__ import annotations

import logging
from typing import Any

from sagemaker_emulator.feature_store import catalog, offline
from sagemaker_emulator.feature_store import definitions as checks
from sagemaker_emulator.feature_store.service import KIND
from sagemaker_emulator.protocol.errors import ResourceInUse, ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import feature_records, resources
from sagemaker_emulator.storage.models import Resource

from . import common

log = logging.getLogger(__name__)


def _not_found(value: str) -> ResourceNotFound:
    name = value.rsplit("/", 1)[-1]
    return ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}")


def _row(ctx: RequestContext, value: str) -> Resource:
    ctx.services.feature_store.settle(ctx.region)
    row = common.find_named(ctx, KIND, value)
    if row is None:
        raise _not_found(value)
    return row


def _created(ctx: RequestContext, value: str, action: str) -> Resource:
    row = _row(ctx, value)
    if row.status != "Created":
        raise ResourceInUse(f"Feature group {row.name} is in status {row.status}; it can be {action} once it is "
                            "Created.")
    return row


def _offline_config(ctx: RequestContext, params: dict[str, Any], created: float) -> dict[str, Any] | None:
    """OfflineStoreConfig as Describe shows it: ResolvedOutputS3Uri and the DataCatalogConfig AWS fills in."""
    given = params.get("OfflineStoreConfig")
    if given is None:
        return None
    config = {**given, "S3StorageConfig": dict(given["S3StorageConfig"])}
    config["S3StorageConfig"]["ResolvedOutputS3Uri"] = offline.resolved_uri(
        given["S3StorageConfig"]["S3Uri"], ctx.account_id, ctx.region, params["FeatureGroupName"], created)
    config.setdefault("DisableGlueTableCreation", False)
    config.setdefault("TableFormat", "Glue")
    if "DataCatalogConfig" not in config and not config["DisableGlueTableCreation"]:
        config["DataCatalogConfig"] = {"TableName": catalog.auto_table_name(params["FeatureGroupName"], created),
                                       "Catalog": catalog.AUTO_CATALOG, "Database": catalog.AUTO_DATABASE}
    return config


def _check_create(params: dict[str, Any]) -> None:
    online, offline_given = params.get("OnlineStoreConfig") or {}, params.get("OfflineStoreConfig")
    if not online.get("EnableOnlineStore") and offline_given is None:
        raise ValidationError("A feature group needs an online store (OnlineStoreConfig.EnableOnlineStore) or an "
                              "offline store (OfflineStoreConfig), or both.")
    if online.get("StorageType") == "InMemory" and offline_given is not None:
        raise ValidationError("An online store with StorageType InMemory cannot have an offline store.")
    offline_table = offline_given or {}
    if offline_table.get("TableFormat") == "Iceberg" and offline_table.get("DisableGlueTableCreation"):
        raise ValidationError("TableFormat Iceberg needs the Glue table Feature Store creates: "
                              "DisableGlueTableCreation cannot be true with it.")
    if online.get("TtlDuration") and not online.get("EnableOnlineStore"):
        raise ValidationError("TtlDuration needs an enabled online store (OnlineStoreConfig.EnableOnlineStore).")
    throughput = params.get("ThroughputConfig") or {}
    if throughput.get("ThroughputMode") == "OnDemand" and (
            "ProvisionedReadCapacityUnits" in throughput or "ProvisionedWriteCapacityUnits" in throughput):
        raise ValidationError("Provisioned capacity units are only valid with ThroughputMode Provisioned.")
    checks.check_definitions(params)


def create_feature_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_create(params)
    name = params["FeatureGroupName"]
    ctx.services.feature_store.settle(ctx.region)
    if common.find(ctx, KIND, name) is not None:
        raise ResourceInUse(f"Resource Already Exists: FeatureGroup with name {name} already exists. "
                            "Choose a different name.")
    created = resources.now()
    document = {key: value for key, value in params.items() if key != "Tags"}
    document.update(FeatureGroupArn=common.arn(ctx, KIND, name), CreationTime=created, LastModifiedTime=created,
                    ThroughputConfig=params.get("ThroughputConfig") or {"ThroughputMode": "OnDemand"})
    if "OnlineStoreConfig" in params:
        document["OnlineStoreConfig"] = {**params["OnlineStoreConfig"]}
        if params["OnlineStoreConfig"].get("EnableOnlineStore"):
            document["OnlineStoreConfig"].setdefault("StorageType", "Standard")
    config = _offline_config(ctx, params, created)
    status = "Creating"
    if config is not None:
        document["OfflineStoreConfig"] = config
        document["OfflineStoreStatus"] = {"Status": "Active"}
        if config.get("DataCatalogConfig") and not config["DisableGlueTableCreation"]:
            try:
                catalog.create_table(ctx.account_id, ctx.region, document)
                document["_GlueTableCreated"] = True
            except catalog.CatalogError as err:
                status, document["FailureReason"] = "CreateFailed", str(err)
    document["_FeatureMetadata"] = {}
    row = common.create(ctx, KIND, name, document, "feature group", status=status, tags=params.get("Tags"),
                        duplicate=lambda arn: ResourceInUse(f"Resource Already Exists: FeatureGroup with name {name} "
                                                            "already exists. Choose a different name."))
    if config is not None and config.get("TableFormat") == "Iceberg" and document.get("_GlueTableCreated"):
        ctx.services.feature_store.create_iceberg_table(row)
    return {"FeatureGroupArn": row.arn}


def _public(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if not key.startswith("_")}


def describe_feature_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _row(ctx, params["FeatureGroupName"])
    out = _public(row.document)
    out.update(FeatureGroupStatus=row.status, LastModifiedTime=row.last_modified_time,
               OnlineStoreTotalSizeBytes=0, NextToken="")
    return out


def _summary(row: Resource) -> dict[str, Any]:
    doc = row.document
    out = {"FeatureGroupName": row.name, "FeatureGroupArn": row.arn, "CreationTime": row.creation_time,
           "FeatureGroupStatus": row.status}
    if "OfflineStoreStatus" in doc:
        out["OfflineStoreStatus"] = doc["OfflineStoreStatus"]
    return out


def list_feature_groups(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The shared List* paging, plus OfflineStoreStatusEquals / SortBy OfflineStoreStatus, which live in
    the document: those listings are filtered and sorted here, with the same keyset token."""
    ctx.services.feature_store.settle(ctx.region)
    query = common.list_query(params)
    query.status = params.get("FeatureGroupStatusEquals")
    sort_by = params.get("SortBy") or "CreationTime"
    offline_status = params.get("OfflineStoreStatusEquals")
    if sort_by != "OfflineStoreStatus" and offline_status is None:
        query.sort_by = {"FeatureGroupStatus": "Status"}.get(sort_by, sort_by)
        return common.page_of(ctx, KIND, query, "FeatureGroupSummaries", _summary)
    query.limit, query.token = 10**9, None
    rows, _ = resources.page(KIND, ctx.region, query)
    summaries = [_summary(row) for row in rows]
    if offline_status is not None:
        summaries = [s for s in summaries if s.get("OfflineStoreStatus", {}).get("Status") == offline_status]
    if sort_by == "OfflineStoreStatus":
        summaries.sort(key=lambda s: s.get("OfflineStoreStatus", {}).get("Status", ""), reverse=query.descending)
    return common.offset_page(summaries, params, "FeatureGroupSummaries")


def update_feature_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _created(ctx, params["FeatureGroupName"], "updated")
    given = [key for key in ("FeatureAdditions", "OnlineStoreConfig", "ThroughputConfig") if key in params]
    if not given:
        raise ValidationError("UpdateFeatureGroup needs FeatureAdditions, OnlineStoreConfig or ThroughputConfig.")
    document = row.document
    additions = params.get("FeatureAdditions") or []
    checks.check_additions(document, additions)
    online_update = params.get("OnlineStoreConfig")
    if online_update is not None and not (document.get("OnlineStoreConfig") or {}).get("EnableOnlineStore"):
        raise ValidationError(f"Feature group {row.name} has no online store: its OnlineStoreConfig cannot be "
                              "updated.")
    now = resources.now()

    def mutate(doc: dict[str, Any]) -> None:
        if additions:
            doc["FeatureDefinitions"] = doc["FeatureDefinitions"] + additions
            for definition in additions:
                doc["_FeatureMetadata"].setdefault(definition["FeatureName"], {})["CreationTime"] = now
        if online_update is not None:
            ttl = online_update.get("TtlDuration")
            if checks.ttl_seconds(ttl) is None:  # Unit and Value null: no default TTL any more
                doc["OnlineStoreConfig"].pop("TtlDuration", None)
            else:
                doc["OnlineStoreConfig"]["TtlDuration"] = ttl
        if "ThroughputConfig" in params:
            doc["ThroughputConfig"] = {**doc.get("ThroughputConfig", {}), **params["ThroughputConfig"]}
        doc["LastModifiedTime"] = now
        doc["LastUpdateStatus"] = {"Status": "Successful"}

    updated = resources.update(KIND, row.region, row.name, mutate)
    ctx.services.feature_store.forget(row.arn)
    if updated is not None and additions and updated.document.get("_GlueTableCreated"):
        catalog.update_columns(ctx.account_id, row.region, updated.document)
    return {"FeatureGroupArn": row.arn}


def delete_feature_group(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = _row(ctx, params["FeatureGroupName"])
    if row.status == "Deleting":  # DeleteFeatureGroup declares no ResourceInUse: the generic error
        raise ValidationError(f"Feature group {row.name} is already being deleted.")
    feature_records.drop_group(row.arn)  # the online store's data goes; the offline store's stays
    try:
        ctx.services.feature_store.flush(row.arn)  # what was put before the delete still reaches S3
    except Exception:  # S3 failures are handled (and logged) by the flush itself; this is anything else
        log.exception("could not flush the offline store of feature group %s before deleting it", row.name)
    resources.update(KIND, row.region, row.name, lambda doc: "Deleting")
    ctx.services.feature_store.forget(row.arn)


# -- feature metadata ---------------------------------------------------------------------------------
def _feature(ctx: RequestContext, params: dict[str, Any]) -> tuple[Resource, dict[str, Any]]:
    row = _row(ctx, params["FeatureGroupName"])
    name = params["FeatureName"]
    definition = next((d for d in row.document["FeatureDefinitions"] if d["FeatureName"] == name), None)
    if definition is None:
        raise ResourceNotFound(f"Resource Not Found: feature {name} does not exist in feature group {row.name}.")
    return row, definition


def _metadata(row: Resource, doc: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    """One feature's metadata as DescribeFeatureMetadata (and Search's FeatureMetadata records) show it."""
    metadata = doc["_FeatureMetadata"].get(definition["FeatureName"], {})
    created = metadata.get("CreationTime", doc["CreationTime"])
    out = {"FeatureGroupArn": row.arn, "FeatureGroupName": row.name, "FeatureName": definition["FeatureName"],
           "FeatureType": definition["FeatureType"], "CreationTime": created,
           "LastModifiedTime": metadata.get("LastModifiedTime", created),
           "Parameters": [{"Key": k, "Value": v} for k, v in metadata.get("Parameters", {}).items()]}
    if "Description" in metadata:
        out["Description"] = metadata["Description"]
    return out


def describe_feature_metadata(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row, definition = _feature(ctx, params)
    return _metadata(row, row.document, definition)


# -- Search (handlers/search.py filters and sorts; these say what a feature group's records are) ------
def settle_for_search(ctx: RequestContext) -> None:
    ctx.services.feature_store.settle(ctx.region)


def group_records(rows: list[Resource]) -> list[tuple[Resource, dict[str, Any]]]:
    """Search's FeatureGroup records: the Describe document, its status from the row."""
    return [(row, {**_public(row.document), "FeatureGroupStatus": row.status,
                   "LastModifiedTime": row.last_modified_time}) for row in rows]


def metadata_records(rows: list[Resource]) -> list[tuple[Resource, dict[str, Any]]]:
    """Search's FeatureMetadata records: one per feature of each group. `AllParameters` (every parameter
    key and value, AWS's name for a search over all of them) is there for filters only; the
    response shape has no such member, so it is never sent."""
    out = []
    for row in rows:
        doc = row.document
        for definition in doc["FeatureDefinitions"]:
            record = _metadata(row, doc, definition)
            record["AllParameters"] = [text for p in record["Parameters"] for text in (p["Key"], p["Value"])]
            out.append((row, record))
    return out


def with_all_tags(rows: list[Resource], docs: list[dict[str, Any]]) -> None:
    """`AllTags`: every tag key and value of a feature group, for filters (not a response member)."""
    for doc in docs:
        doc["AllTags"] = [text for tag in doc.get("Tags", []) for text in (tag["Key"], tag["Value"])]


def update_feature_metadata(ctx: RequestContext, params: dict[str, Any]) -> None:
    row, definition = _feature(ctx, params)
    name = definition["FeatureName"]
    if any("Key" not in p or "Value" not in p for p in params.get("ParameterAdditions") or []):
        raise ValidationError("Every member of ParameterAdditions needs a Key and a Value.")
    additions = {p["Key"]: p["Value"] for p in params.get("ParameterAdditions") or []}
    removals = params.get("ParameterRemovals") or []
    if set(additions) & set(removals):
        raise ValidationError("A parameter key cannot be both added and removed in one UpdateFeatureMetadata.")

    def mutate(doc: dict[str, Any]) -> None:
        metadata = doc["_FeatureMetadata"].setdefault(name, {})
        parameters = {**metadata.get("Parameters", {}), **additions}
        for key in removals:
            parameters.pop(key, None)
        if len(parameters) > 25:
            raise ValidationError(f"Feature {name} would have {len(parameters)} parameters; the limit is 25.")
        metadata["Parameters"] = parameters
        if "Description" in params:
            metadata["Description"] = params["Description"]
        metadata["LastModifiedTime"] = resources.now()

    resources.update(KIND, row.region, row.name, mutate)


DEFAULT_CATALOG = "DefaultFeatureGroupCatalog"


def list_resource_catalogs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The account's resource catalogs: AWS has one, DefaultFeatureGroupCatalog (every feature group of
    the account; what cross-account discoverability shares through RAM). It dates from the data dir."""
    from sagemaker_emulator.storage.database import created_time

    created = int(created_time() * 1000) / 1000  # what the wire carries (ms), so a filter on it is exact
    catalog = {"ResourceCatalogArn": f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:sagemaker-catalog/"
                                     f"{DEFAULT_CATALOG}",
               "ResourceCatalogName": DEFAULT_CATALOG,
               "Description": "The catalog of the account's feature groups.", "CreationTime": created}
    after, before = params.get("CreationTimeAfter"), params.get("CreationTimeBefore")
    keep = (params.get("NameContains", "") in DEFAULT_CATALOG and (after is None or created > after)
            and (before is None or created < before))
    return common.offset_page([catalog] if keep else [], params, "ResourceCatalogs")
