"""Jobs in experiments and in lineage: every training, processing or transform job gets its own trial
component (`<job>-aws-training-job`, Source = the job), as AWS creates one "for and associated with
each SageMaker job"; with ExperimentConfig it is associated with the run's trial. When the job ends
the component takes its status and model artifact, and a training job's MetricDefinitions
datapoints are recorded on it (`record_points`, called by the training run). The job's lineage
(image, inputs, outputs) hangs off that component, and an endpoint entering service gets its own
(handlers/lineage_tracking.py).

Driven by lifecycle events (the job's creation and its terminal status), reading jobs through the
in-process call path; the components are written by the experiments area (handlers/experiments.py).
"""

from __future__ import annotations

import logging
from typing import Any

from sagemaker_emulator.events import StatusChange
from sagemaker_emulator.handlers import experiments, lineage_tracking
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

log = logging.getLogger(__name__)

_DESCRIBE = {"training-job": "DescribeTrainingJob", "processing-job": "DescribeProcessingJob",
             "transform-job": "DescribeTransformJob"}


class ExperimentTracking:
    def __init__(self, services: Any) -> None:
        self.services = services
        services.events.subscribe(self._changed, kinds=[*_DESCRIBE, "endpoint"], name="experiment-tracking")

    def _changed(self, change: StatusChange) -> None:
        if change.kind == "endpoint":
            if change.status == "InService":
                self._endpoint(change)
            return
        if change.status is None or not (change.previous is None or change.terminal):
            return
        prefix = experiments.JOB_SOURCES[change.kind][0]
        try:
            job = self.services.sagemaker.call(_DESCRIBE[change.kind], {f"{prefix}Name": change.name},
                                               region=change.region)
        except AwsError:
            return  # deleted meanwhile
        ctx = self.services.request_context(change.region)
        try:
            experiments.job_component(ctx, change.kind, job)
        except AwsError as err:  # e.g. the experiment or trial named does not exist
            log.warning("job %s: its trial component is not in the trial of its ExperimentConfig: %s",
                        change.name, err.message)
        component = resources.get(experiments.COMPONENT, change.region,
                                  experiments.job_component_name(change.kind, change.name))
        if component is None:
            return
        try:
            if change.previous is None:
                lineage_tracking.job_started(ctx, change.kind, job, component)
            if change.terminal:
                experiments.finish_job_component(ctx, change.kind, job)
                if change.status == "Completed":
                    lineage_tracking.job_finished(ctx, change.kind, job, component)
        except AwsError as err:
            log.warning("job %s: lineage not recorded: %s", change.name, err.message)

    def _endpoint(self, change: StatusChange) -> None:
        try:
            endpoint = self.services.sagemaker.call("DescribeEndpoint", {"EndpointName": change.name},
                                                    region=change.region)
            lineage_tracking.endpoint(self.services.request_context(change.region), endpoint)
        except AwsError as err:  # deleted meanwhile
            log.info("endpoint %s: lineage not recorded: %s", change.name, err.message)


def record_points(region: str, job: dict[str, Any], points: list[Any]) -> None:
    """A training job's metric datapoints (jobs.metrics.Datapoint) onto its trial component."""
    if not points:
        return
    row = resources.get(experiments.COMPONENT, region, experiments.job_component_name("training-job",
                                                                                       job["TrainingJobName"]))
    if row is None:
        return
    experiments.record_metrics(row, [{"MetricName": p.name, "Value": p.value, "Timestamp": p.timestamp}
                                     for p in points], source_arn=job["TrainingJobArn"])
