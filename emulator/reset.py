"""`POST /_emulator/reset`: back to a fresh server's SageMaker state, for test suites between tests
(as moto's `/moto-api/reset`; `?aws=1` empties moto's services and our S3 as well).

Work in flight is ended first, through the engines' own stop paths, so no container, network or
directory outlives the rows that owned it: tuning jobs stop, running jobs are stopped and awaited,
endpoints are torn down. Then every SageMaker resource, tag, relation and log is deleted.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.database import database_proxy as db
from sagemaker_emulator.storage.log_models import LOG_MODELS
from sagemaker_emulator.storage.models import Relation, Resource, Tag

log = logging.getLogger(__name__)
WAIT_SECONDS = 60.0


def reset_sagemaker(services: Any) -> dict[str, int]:
    """End all work, then forget every SageMaker resource and log; counts of what was removed."""
    services.pipelines.reset()  # first: the job stops below must not move any execution on
    for row in resources.all_with_status("hyper-parameter-tuning-job", ("InProgress",)):
        services.tuning.stop(row.region, row.name)
    engines = [services.training, services.processing, services.transform]
    for engine in engines:
        for run in engine.running():
            run.shutdown_requested = True
            run.request_stop()
    deadline = time.time() + WAIT_SECONDS
    for engine in engines:
        for run in engine.running():
            run.join(max(0.0, deadline - time.time()))
    for row in Resource.select().where(Resource.kind == "endpoint"):
        services.hosting.delete(row.region, row.name)
    services.feature_store.reset()  # its records live in their own database (featurestore.db)
    with db.atomic():
        counts = {"resources": Resource.delete().execute()}
        Tag.delete().execute()
        Relation.delete().execute()
        for model in reversed(LOG_MODELS):  # events before streams before groups
            model.delete().execute()
    log.info("reset: removed %d SageMaker resources", counts["resources"])
    return counts
