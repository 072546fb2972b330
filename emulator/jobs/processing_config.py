"""What a processing container sees under /opt/ml/config, and where inputs/outputs live on the host (spec §5.3).

Each input and output gets its own host directory per host (`algo-N/inputs/<i>`, `algo-N/outputs/<i>`),
bind-mounted at its `LocalPath`; the config files are in `algo-N/config`, mounted read-only at
`/opt/ml/config`; `/opt/ml/output` (for `message`) is `algo-N/output`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG_DIR = "/opt/ml/config"
OUTPUT_DIR = "/opt/ml/output"
LOCAL_PREFIX = "/opt/ml/processing/"


def hosts_of(job: dict[str, Any]) -> list[str]:
    return [f"algo-{i}" for i in range(1, job["ProcessingResources"]["ClusterConfig"]["InstanceCount"] + 1)]


def s3_inputs(job: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(index, input) of the inputs the platform stages: S3Input ones that are not AppManaged."""
    return [(i, item) for i, item in enumerate(job.get("ProcessingInputs") or [])
            if item.get("S3Input") and not item.get("AppManaged")]


def s3_outputs(job: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    outputs = (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    return [(i, item) for i, item in enumerate(outputs) if item.get("S3Output") and not item.get("AppManaged")]


def input_dir(host_root: Path, index: int) -> Path:
    return host_root / "inputs" / str(index)


def output_dir(host_root: Path, index: int) -> Path:
    return host_root / "outputs" / str(index)


def mounts(job: dict[str, Any], host_root: Path) -> dict[str, tuple[str, str]]:
    """Host path -> (container path, mode) for one host."""
    out = {str(host_root / "config"): (CONFIG_DIR, "ro"), str(host_root / "output"): (OUTPUT_DIR, "rw")}
    for index, item in s3_inputs(job):
        out[str(input_dir(host_root, index))] = (item["S3Input"]["LocalPath"], "rw")
    for index, item in s3_outputs(job):
        out[str(output_dir(host_root, index))] = (item["S3Output"]["LocalPath"], "rw")
    return out


def processing_job_config(job: dict[str, Any]) -> dict[str, Any]:
    """`processingjobconfig.json`: the job definition, with the nulls and defaults SageMaker writes."""
    app = job["AppSpecification"]
    inputs = []
    for item in job.get("ProcessingInputs") or []:
        entry = {key: value for key, value in item.items() if key != "S3Input"}
        if item.get("S3Input"):
            s3 = item["S3Input"]
            distribution = s3.get("S3DataDistributionType", "FullyReplicated")
            entry["S3Input"] = {
                "LocalPath": s3.get("LocalPath"), "S3Uri": s3["S3Uri"],
                # the documented file says S3DistributionType, the API S3DataDistributionType: write both
                "S3DistributionType": distribution, "S3DataDistributionType": distribution,
                "S3DataType": s3["S3DataType"], "S3InputMode": s3.get("S3InputMode", "File"),
                "S3CompressionType": s3.get("S3CompressionType", "None"), "S3DownloadMode": "StartOfJob"}
        inputs.append(entry)
    output_config = job.get("ProcessingOutputConfig") or {}
    cluster = job["ProcessingResources"]["ClusterConfig"]
    config: dict[str, Any] = {
        "ProcessingJobArn": job["ProcessingJobArn"],
        "ProcessingJobName": job["ProcessingJobName"],
        "AppSpecification": {"ImageUri": app["ImageUri"], "ContainerEntrypoint": app.get("ContainerEntrypoint"),
                             "ContainerArguments": app.get("ContainerArguments")},
        "Environment": dict(job.get("Environment") or {}),
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": list(output_config.get("Outputs") or []),
                                   "KmsKeyId": output_config.get("KmsKeyId")},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": cluster["InstanceCount"], "InstanceType": cluster["InstanceType"],
            "VolumeSizeInGB": cluster["VolumeSizeInGB"], "VolumeKmsKeyId": cluster.get("VolumeKmsKeyId")}},
        "RoleArn": job.get("RoleArn"),
        "StoppingCondition": job.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400},
    }
    if job.get("NetworkConfig"):
        config["NetworkConfig"] = job["NetworkConfig"]
    return config


def resource_config(host: str, hosts: list[str], instance_type: str) -> dict[str, Any]:
    return {"current_host": host, "hosts": list(hosts), "current_instance_type": instance_type,
            "network_interface_name": "eth0"}
