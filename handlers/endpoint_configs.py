"""Endpoint configurations: Create/Describe/List/DeleteEndpointConfig."""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common, models

KIND = "endpoint-config"
NOUN = "endpoint configuration"
# botocore's model says only 1024..6144; AWS takes whole GiB (docs/decisions.md: serverless memory)
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)


def _check_serverless(config: dict[str, Any], field: str, index: int) -> None:
    size = config["MemorySizeInMB"]
    if size not in SERVERLESS_MEMORY_SIZES:
        allowed = ", ".join(str(s) for s in SERVERLESS_MEMORY_SIZES)
        raise ValidationError(f"1 validation error detected: Value '{size}' at '{field[:1].lower()}{field[1:]}."
                              f"{index}.member.serverlessConfig.memorySizeInMB' failed to satisfy constraint: "
                              f"Member must satisfy enum value set: [{allowed}]")


def _check_variants(ctx: RequestContext, variants: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    names = [v["VariantName"] for v in variants]
    if len(set(names)) != len(names):
        raise ValidationError(f"{field} must have unique VariantName values; found {names}.")
    out = []
    for index, variant in enumerate(variants, 1):
        if not variant.get("ModelName"):  # optional in the model (for inference components, unsupported here)
            raise ValidationError(f"Variant '{variant['VariantName']}' must specify ModelName.")
        common.require(ctx, models.KIND, variant["ModelName"], models.NOUN)
        serverless = variant.get("ServerlessConfig") is not None
        if not serverless and (not variant.get("InstanceType") or not variant.get("InitialInstanceCount")):
            raise ValidationError(
                f"Variant '{variant['VariantName']}' must specify InstanceType and InitialInstanceCount, "
                "or ServerlessConfig.")
        if serverless and (variant.get("InstanceType") or variant.get("InitialInstanceCount")):
            raise ValidationError(
                f"Variant '{variant['VariantName']}' cannot specify both ServerlessConfig and "
                "InstanceType/InitialInstanceCount.")
        if serverless:
            _check_serverless(variant["ServerlessConfig"], field, index)
        variant = dict(variant)
        if not serverless:
            variant.setdefault("InitialVariantWeight", 1.0)
        out.append(variant)
    return out


def create_endpoint_config(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointConfigName"]
    document = {key: value for key, value in params.items() if key != "Tags"}
    document["ProductionVariants"] = _check_variants(ctx, params["ProductionVariants"], "ProductionVariants")
    if params.get("ShadowProductionVariants"):
        document["ShadowProductionVariants"] = _check_variants(
            ctx, params["ShadowProductionVariants"], "ShadowProductionVariants")
        overlap = {v["VariantName"] for v in document["ProductionVariants"]} & {
            v["VariantName"] for v in document["ShadowProductionVariants"]}
        if overlap:
            raise ValidationError(f"Variant names must be unique across production and shadow variants: "
                                  f"{sorted(overlap)}.")
    document["EndpointConfigArn"] = common.arn(ctx, KIND, name)
    document["CreationTime"] = resources.now()
    common.create(ctx, KIND, name, document, NOUN, tags=params.get("Tags"))
    return {"EndpointConfigArn": document["EndpointConfigArn"]}


def describe_endpoint_config(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.require(ctx, KIND, params["EndpointConfigName"], NOUN).document


def list_endpoint_configs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, KIND, params, "EndpointConfigs", lambda row: {
        "EndpointConfigName": row.name, "EndpointConfigArn": row.arn, "CreationTime": row.creation_time})


def delete_endpoint_config(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.delete(ctx, common.require(ctx, KIND, params["EndpointConfigName"], NOUN))
