"""Jobs in experiments: a training, processing or transform job with ExperimentConfig gets its own
trial component (`<job>-aws-training-job`, Source = the job) associated with the run's trial, as
AWS does; when the job ends the component takes its status and model artifact, and a training
job's MetricDefinitions datapoints are recorded on it (`record_points`, called by the training run).

Driven by lifecycle events (the job's creation and its terminal status), reading jobs through the
in-process call path; the components are written by the experiments area (handlers/experiments.py).
"""

from __future__ import annotations

import logging
from typing import Any

from sagemaker_emulator.events import StatusChange
from sagemaker_emulator.handlers import experiments
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

log = logging.getLogger(__name__)

_DESCRIBE = {"training-job": "DescribeTrainingJob", "processing-job": "DescribeProcessingJob",
             "transform-job": "DescribeTransformJob"}


class ExperimentTracking:
    def __init__(self, services: Any) -> None:
        self.services = services
        services.events.subscribe(self._changed, kinds=list(_DESCRIBE), name="experiment-tracking")

    def _changed(self, change: StatusChange) -> None:
        if change.status is None or not (change.previous is None or change.terminal):
            return
        prefix = experiments.JOB_SOURCES[change.kind][0]
        try:
            job = self.services.sagemaker.call(_DESCRIBE[change.kind], {f"{prefix}Name": change.name},
                                               region=change.region)
        except AwsError:
            return  # deleted meanwhile
        if not job.get("ExperimentConfig"):
            return
        ctx = self.services.request_context(change.region)
        try:
            experiments.job_component(ctx, change.kind, job)
            if change.terminal:
                experiments.finish_job_component(ctx, change.kind, job)
        except AwsError as err:  # e.g. the experiment or trial named does not exist
            log.warning("job %s: no trial component for its ExperimentConfig: %s", change.name, err.message)


def record_points(region: str, job: dict[str, Any], points: list[Any]) -> None:
    """A training job's metric datapoints (jobs.metrics.Datapoint) onto its trial component."""
    if not job.get("ExperimentConfig") or not points:
        return
    row = resources.get(experiments.COMPONENT, region, experiments.job_component_name("training-job",
                                                                                       job["TrainingJobName"]))
    if row is None:
        return
    experiments.record_metrics(row, [{"MetricName": p.name, "Value": p.value, "Timestamp": p.timestamp}
                                     for p in points], source_arn=job["TrainingJobArn"])
