"""Access to botocore's service models, the single source of truth for shapes and limits."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import ServiceModel


@cache
def service_model(name: str) -> ServiceModel:
    """Load (once) the botocore model of `name`, e.g. "sagemaker", "logs", "sagemaker-runtime"."""
    return botocore.session.get_session().get_service_model(name)


def camel(name: str) -> str:
    """Member name as Coral writes it in validation messages: `TrainingJobName` -> `trainingJobName`."""
    return name[:1].lower() + name[1:]
