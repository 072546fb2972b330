"""moto's Resource Groups Tagging API backend, read and written in-process for the services it keeps.

Our handlers (handlers/resource_tagging.py) merge these with our own SageMaker resources; moto's
own SageMaker backend is never consulted (it holds nothing of ours), so its ARNs are left out.
"""

from __future__ import annotations

from typing import Any

from . import moto_state

SAGEMAKER_ARN = "arn:aws:sagemaker:"


def _backend(account_id: str, region: str) -> Any:
    from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

    return resourcegroupstaggingapi_backends[account_id][region]


def moto_resources(account_id: str, region: str, tag_filters: list[dict[str, Any]],
                   type_filters: list[str], arns: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Every (ARN, tags) moto's services answer for these filters, all pages read."""
    backend, token, found = _backend(account_id, region), None, []
    while True:
        token, page = backend.get_resources(pagination_token=token, resources_per_page=100, tags_per_page=500,
                                            tag_filters=tag_filters, resource_type_filters=type_filters,
                                            resource_arn_list=arns)
        found += [(r.arn, dict(r.tags)) for r in page if not r.arn.startswith(SAGEMAKER_ARN)]
        if not token:
            return found


def moto_tags(account_id: str, region: str) -> list[dict[str, str]]:
    return [tags for _, tags in moto_resources(account_id, region, [], [], [])]


def moto_tag(account_id: str, region: str, arns: list[str], tags: dict[str, str]) -> dict[str, Any]:
    moto_state.changed()  # the tagged resources are other services' (SNS, ...): any may have changed
    return _backend(account_id, region).tag_resources(arns, tags) if arns else {}


def moto_untag(account_id: str, region: str, arns: list[str], keys: list[str]) -> dict[str, Any]:
    moto_state.changed()
    return _backend(account_id, region).untag_resources(arns, keys) if arns else {}


def matcher(tag_filters: list[dict[str, Any]]) -> Any:
    """moto's TagFilters predicate, so our resources match exactly as moto's do."""
    from moto.core.resource_tagging import make_tag_matcher

    return make_tag_matcher(tag_filters)


def type_matches(resource_type: str, type_filters: list[str]) -> bool:
    from moto.core.resource_tagging import match_resource_type

    return match_resource_type(resource_type, type_filters)
