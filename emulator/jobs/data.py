"""A job's view of the data-staging layer: one object store, channel staging, output upload.

Training and processing both use it, so S3 access (the embedded S3 or a configured S3-compatible
endpoint), Pipe feeders and metric publishing are set up in one place per job.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from sagemaker_emulator import staging
from sagemaker_emulator.aws.cloudwatch import put_metric_data
from sagemaker_emulator.staging import ObjectStore, PipeFeeder, StagingError

from .metrics import Datapoint

log = logging.getLogger(__name__)


def s3_client(services: Any, region: str):
    """boto3 S3 client for job data: the configured endpoint, else the emulator's own (moto's)."""
    config = services.config
    if config.s3_endpoint_url:
        return boto3.client("s3", endpoint_url=config.s3_endpoint_url, region_name=region)
    return boto3.client("s3", endpoint_url=config.self_url, region_name=region,
                        aws_access_key_id="emulator", aws_secret_access_key="emulator")


class JobData:
    errors = (StagingError,)

    def __init__(self, services: Any, region: str) -> None:
        self.services = services
        self.region = region
        self._s3 = None
        self._feeders: list[PipeFeeder] = []

    @property
    def store(self) -> ObjectStore:
        if self._s3 is None:
            self._s3 = s3_client(self.services, self.region)
        embedded = getattr(self.services, "embedded_s3", None)
        if embedded is None or self.services.config.s3_endpoint_url:
            return ObjectStore(self._s3)
        region = self.region

        def local_copy(bucket: str, key: str, fd: int) -> int | None:
            return embedded.copy_object_to(bucket, key, fd, region)
        return ObjectStore(self._s3, local_copy=local_copy)

    def stage_channel(self, channel: dict[str, Any], mode: str, data_dir: Path, host_index: int, host_count: int,
                      stop: threading.Event) -> PipeFeeder | None:
        """File/FastFile: download this host's share now. Pipe: a feeder for `<channel>_<epoch>`."""
        source = channel["DataSource"]["S3DataSource"]
        name = channel["ChannelName"]
        distribution = source.get("S3DataDistributionType", staging.FULLY_REPLICATED)
        seed = (channel.get("ShuffleConfig") or {}).get("Seed")
        data_type = source["S3DataType"]
        if mode != "Pipe":
            staging.download_source(self.store, source["S3Uri"], data_dir / name, data_type=data_type,
                                    host_index=host_index, host_count=host_count, distribution=distribution,
                                    seed=seed)
            return None
        if data_type == staging.AUGMENTED_MANIFEST_FILE:  # shard manifest lines, then expand to records
            lines = staging.read_augmented_manifest(self.store, source["S3Uri"])
            attributes = source.get("AttributeNames") or []
            list(staging.augmented_records(lines, attributes, source["S3Uri"]))  # bad manifests fail now
            lines_for = staging.epoch_source(lines, host_index, host_count, distribution, seed)

            def records(epoch: int) -> list:
                return list(staging.augmented_records(lines_for(epoch), attributes, source["S3Uri"]))
            epoch_items: Callable[[int], list] = records
        else:
            objects = staging.resolve_source(self.store, source["S3Uri"], data_type)
            epoch_items = staging.epoch_source(objects, host_index, host_count, distribution, seed)
        feeder = PipeFeeder(data_dir, name, epoch_items,
                            store=self.store, stop=stop, gzip=channel.get("CompressionType") == "Gzip",
                            record_wrapper=channel.get("RecordWrapperType"))
        self._feeders.append(feeder)
        return feeder

    def upload_training_outputs(self, job: dict[str, Any], host_dirs: list[Path]) -> dict[str, Any]:
        """Merge /opt/ml/model of every host into model.tar.gz (and output/data into output.tar.gz)."""
        output = job["OutputDataConfig"]
        base = staging.join_uri(staging.as_folder(output["S3OutputPath"]), f"{job['TrainingJobName']}/output/")
        compress = output.get("CompressionType", "GZIP") != "NONE"
        with tempfile.TemporaryDirectory(prefix="sm-out-") as tmp:
            merged = {"model": Path(tmp) / "model", "data": Path(tmp) / "data"}
            for host_dir in host_dirs:  # later hosts overwrite files of the same name, as on AWS
                for key, sub in (("model", "model"), ("data", "output/data")):
                    _merge_tree(host_dir / sub, merged[key])
            if not compress:
                staging.upload_dir(self.store, merged["model"], base + "model/")
                return {"ModelArtifacts": {"S3ModelArtifacts": base + "model/"}}
            archive = Path(tmp) / "model.tar.gz"
            staging.make_tar_gz(merged["model"], archive)
            staging.upload_file(self.store, archive, base + "model.tar.gz")
            if any(merged["data"].rglob("*")):
                data_archive = Path(tmp) / "output.tar.gz"
                staging.make_tar_gz(merged["data"], data_archive)
                staging.upload_file(self.store, data_archive, base + "output.tar.gz")
        return {"ModelArtifacts": {"S3ModelArtifacts": base + "model.tar.gz"}}

    def restore_checkpoints(self, uri: str, dest: Path) -> None:
        staging.download_prefix(self.store, uri, dest)

    def save_checkpoints(self, src: Path, uri: str) -> None:
        staging.sync_dir(self.store, src, staging.as_folder(uri))

    def publish_metrics(self, points: list[Datapoint], namespace: str) -> None:
        """Every datapoint to CloudWatch, dimension Host."""
        put_metric_data(self.services, self.region, namespace, [
            {"MetricName": p.name, "Value": p.value, "Timestamp": p.timestamp,
             "Dimensions": [{"Name": "Host", "Value": p.host}]} for p in points])

    def feeder_errors(self) -> list[str]:
        """Pipe feeders that broke (an object vanished mid-stream, ...): the job must fail on them."""
        return [f"Channel '{f.channel}': {f.error}" for f in self._feeders if f.error is not None]

    def close(self) -> None:
        for feeder in self._feeders:
            feeder.stop()
        for feeder in self._feeders:
            try:
                feeder.join(10)
            except Exception as exc:
                log.info("pipe feeder %s ended with %s", feeder.channel, exc)


def _merge_tree(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    if not src.is_dir():
        return
    for path in src.rglob("*"):
        if path.is_symlink():
            continue
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
