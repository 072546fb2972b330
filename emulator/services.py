"""The running emulator's shared state: configuration, database, event bus and the services.

One `Services` object per server process; handlers reach it through `RequestContext.services`.
Code inside the emulator calls an operation the way a client would, through the same validation
and handler: `services.sagemaker.call("CreateTrainingJob", params, region=...)` (and `services.logs`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sagemaker_emulator.storage.database import open_database

from .config import Config, owner_id
from .events import EventBus
from .protocol.json_protocol import JsonService, RequestContext, collect_handlers, new_request_id
from .protocol.rest_protocol import RestService
from .protocol.service import service_model
from .runtime.interface import ContainerRuntime

log = logging.getLogger(__name__)


def _sagemaker_handlers() -> list:
    from sagemaker_emulator.handlers import (
        endpoint_configs,
        endpoint_policies,
        endpoints,
        experiments,
        feature_groups,
        lineage,
        lineage_groups,
        model_packages,
        models,
        monitoring_schedules,
        pipelines,
        processing_jobs,
        search,
        tags,
        training_jobs,
        transform_jobs,
        tuning_jobs,
    )

    served = [models, endpoint_configs, endpoints, endpoint_policies, tags, training_jobs, processing_jobs,
              transform_jobs, model_packages, experiments, lineage, lineage_groups, search, tuning_jobs,
              feature_groups, pipelines, monitoring_schedules]
    # last: the declarative layer derives only what the modules above do not serve
    from sagemaker_emulator.resources import handler_module

    return [*served, handler_module(served)]


def _logs_handlers() -> list:
    from sagemaker_emulator.handlers import logs

    return [logs]


class Services:
    """`runtime`: the container runtime (default: DockerRuntime on `config.docker_host`; tests pass a FakeRuntime)."""

    def __init__(self, config: Config, runtime: ContainerRuntime | None = None) -> None:
        self.config = config
        # Containers are labelled with the data dir's identity: a restart on the same data dir finds
        # (and re-adopts or cleans) its own containers, and never touches another emulator's.
        self.instance_id = owner_id(config.data_dir)
        # moto reads the account id from the environment on every request.
        os.environ["MOTO_ACCOUNT_ID"] = config.account_id
        self.db = open_database(config.data_dir)
        # Our own S3 (aws/s3.S3App) once the WSGI app has made it (server/app.py), else None: job staging
        # reads its objects in-process through it.
        self.embedded_s3: Any = None
        from .aws.moto_state import MotoState

        # IAM, SQS, CloudWatch, ... (moto's in-memory backends) come back from their snapshot
        self.moto_state = MotoState(config.data_dir / "moto" / "state.pickle", config.moto_snapshot_seconds)
        restored = self.moto_state.restore()
        if restored:
            log.info("restored %d backends of the embedded AWS services", restored)
        self.moto_state.start()
        self.events = EventBus()
        from .resources.refused import reason

        self.sagemaker = JsonService(
            "sagemaker", collect_handlers(service_model("sagemaker"), _sagemaker_handlers()), self.request_context,
            refused=reason)
        self.logs = JsonService("logs", collect_handlers(service_model("logs"), _logs_handlers()),
                                self.request_context)
        from sagemaker_emulator.handlers import resource_tagging

        # only its tag listing and tagging operations; the rest of the API is moto's (server/app.py)
        self.tagging = JsonService("resourcegroupstaggingapi", collect_handlers(
            service_model("resourcegroupstaggingapi"), [resource_tagging]), self.request_context)
        from sagemaker_emulator.handlers import application_autoscaling

        # its `sagemaker` namespace only: the router (server/app.py) sends every other namespace to moto
        self.application_autoscaling = JsonService("application-autoscaling", collect_handlers(
            service_model("application-autoscaling"), [application_autoscaling]), self.request_context)
        self.json_services = [self.sagemaker, self.logs, self.tagging, self.application_autoscaling]
        from sagemaker_emulator.handlers import runtime as runtime_handlers

        self.sagemaker_runtime = RestService("sagemaker-runtime", collect_handlers(
            service_model("sagemaker-runtime"), [runtime_handlers]))
        from sagemaker_emulator.handlers import metrics as metrics_handlers

        self.sagemaker_metrics = RestService("sagemaker-metrics", collect_handlers(
            service_model("sagemaker-metrics"), [metrics_handlers]))
        from sagemaker_emulator.handlers import lambda_functions

        # Lambda's Invoke only (moto answers every other Lambda operation): aws/lambda_runtime.py
        self.lambda_invoke = RestService("lambda", collect_handlers(service_model("lambda"), [lambda_functions]))
        from sagemaker_emulator.handlers import featurestore_runtime

        self.featurestore_runtime = RestService("sagemaker-featurestore-runtime", collect_handlers(
            service_model("sagemaker-featurestore-runtime"), [featurestore_runtime]))
        from .feature_store import FeatureStore

        self.feature_store = FeatureStore(self)
        if runtime is None and config.execution == "none":
            from .runtime.record_only import RecordOnlyRuntime

            runtime = RecordOnlyRuntime(owner=self.instance_id, reply=config.canned_reply.encode(),
                                        content_type=config.canned_content_type)
        elif runtime is None:
            if config.execution != "docker":
                raise ValueError(f"execution must be 'docker' or 'none', not {config.execution!r}")
            from .runtime.docker_engine import DockerRuntime

            runtime = DockerRuntime(owner=self.instance_id, docker_host=config.docker_host)
        self.runtime: ContainerRuntime = runtime
        from .runtime.workspace import make_workspace

        self.workspace = make_workspace(config.workspace_kind(), runtime)
        from .hosting import HostingEngine
        from .jobs.processing import ProcessingEngine
        from .jobs.training import TrainingEngine

        self.training = TrainingEngine(self)
        self.processing = ProcessingEngine(self)
        self.hosting = HostingEngine(self)
        from .jobs.transform.engine import TransformEngine

        self.transform = TransformEngine(self)
        from .jobs.experiment_tracking import ExperimentTracking

        self.experiment_tracking = ExperimentTracking(self)
        from .tuning.engine import TuningEngine

        self.tuning = TuningEngine(self)
        from .aws.lambda_sandboxes import Sandboxes

        self.lambdas = Sandboxes(self)  # the containers Lambda functions run in (aws/lambda_runtime.py)
        from .pipelines.executor import PipelineExecutor

        self.pipelines = PipelineExecutor(self)
        from .monitoring import MonitoringEngine

        self.monitoring = MonitoringEngine(self)  # monitoring schedules' runs (processing jobs)
        from .autoscaling.scaler import Scaler

        self.autoscaling = Scaler(self)  # Application Auto Scaling acting on SageMaker variants

    def request_context(self, region: str | None = None) -> RequestContext:
        """The context of one operation call, from the wire (region from the signature) or from inside."""
        return RequestContext(region=region or self.config.region, account_id=self.config.account_id,
                              request_id=new_request_id(), services=self)

    def start_background(self) -> None:
        """Once the server is bound (so jobs can reach our S3): subscribers rebuild what they wait for
        from the database, then interrupted jobs are re-attached or failed."""
        self.events.recover()
        self.feature_store.start()  # needs no Docker: the offline store writes through our own S3
        from .aws import cfn_sagemaker

        if not self.runtime.available():
            log.warning("no Docker engine answers: jobs and endpoints will fail until one runs "
                        "(scripts/ensure-docker starts one on Debian)")
            self.pipelines.resume()
            self.monitoring.start()
            self.autoscaling.start()
            cfn_sagemaker.recover(self)
            return
        self.training.recover()
        self.tuning.resume()  # after training re-attached its jobs: new children are not mistaken for lost ones
        self.processing.recover()
        self.transform.recover()
        self.hosting.recover()
        self.lambdas.recover()
        self.pipelines.resume()  # after the job engines re-attached or failed their jobs
        self.monitoring.start()
        self.autoscaling.start()
        cfn_sagemaker.recover(self)  # stacks left *_IN_PROGRESS: after the endpoints were re-adopted
        try:
            self._sweep_orphans()
        except Exception:
            log.exception("could not remove every leftover of the previous run")

    def _sweep_orphans(self) -> None:
        """After recovery (a kill -9 leaves things behind): remove job directories and networks that
        belong to no job still running, i.e. re-attached (and their volumes). Endpoint directories are all rebuilt."""
        import shutil

        from sagemaker_emulator.storage import resources

        kinds = {"training": "training-job", "processing": "processing-job", "transform": "transform-job"}
        live = {(folder, row.region, row.name): row.arn for folder, kind in kinds.items()
                for row in resources.all_with_status(kind, ("InProgress", "Stopping"))}
        jobs = self.config.data_dir / "jobs"
        for folder in kinds:
            for region_dir in (jobs / folder).glob("*"):
                for job_dir in region_dir.glob("*"):
                    if (folder, region_dir.name, job_dir.name) not in live:
                        log.info("removing the leftover directory %s", job_dir)
                        shutil.rmtree(job_dir, ignore_errors=True)
        for name in self.runtime.sweep_orphans(set(live.values())):
            log.info("removed the leftover network or volume %s", name)

    def close(self) -> None:
        """Graceful shutdown: stop the containers of running jobs (none is orphaned), then the database."""
        from .aws import cfn_sagemaker

        cfn_sagemaker.shutdown(self)  # stack workers first: they call the engines below
        self.pipelines.shutdown()
        self.monitoring.shutdown()
        self.autoscaling.shutdown()
        self.tuning.shutdown()
        self.lambdas.close()
        self.training.shutdown()
        self.processing.shutdown()
        self.transform.shutdown()
        try:
            self.hosting.shutdown()
        except Exception:
            log.exception("could not remove every endpoint container")
        self.events.close()
        self.feature_store.close()
        self.moto_state.close()
        self.db.close()
