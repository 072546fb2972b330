"""The three files SageMaker writes into /opt/ml/input/config of every training host (spec §2.3-2.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Host:
    """One training instance: `algo-<index>` in group `group` of type `instance_type`."""

    index: int  # 1-based
    group: str
    instance_type: str

    @property
    def name(self) -> str:
        return f"algo-{self.index}"


def hosts_of(resource_config: dict[str, Any]) -> list[Host]:
    """All hosts, numbered across instance groups in request order."""
    groups = resource_config.get("InstanceGroups") or [{
        "InstanceGroupName": "homogeneousCluster", "InstanceType": resource_config["InstanceType"],
        "InstanceCount": resource_config["InstanceCount"]}]
    hosts, index = [], 1
    for group in groups:
        for _ in range(group["InstanceCount"]):
            hosts.append(Host(index, group["InstanceGroupName"], group["InstanceType"]))
            index += 1
    return hosts


def hyperparameters(job: dict[str, Any]) -> dict[str, str]:
    return dict(job.get("HyperParameters") or {})


def input_data_config(job: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per-channel metadata, with the four keys real jobs write (ContentType only when given)."""
    default_mode = job["AlgorithmSpecification"]["TrainingInputMode"]
    out = {}
    for channel in job.get("InputDataConfig") or []:
        s3 = channel["DataSource"].get("S3DataSource", {})
        entry = {}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        entry["TrainingInputMode"] = channel.get("InputMode") or default_mode
        entry["S3DistributionType"] = s3.get("S3DataDistributionType", "FullyReplicated")
        entry["RecordWrapperType"] = channel.get("RecordWrapperType", "None")
        out[channel["ChannelName"]] = entry
    return out


def resource_config(host: Host, hosts: list[Host]) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for h in hosts:
        group = groups.setdefault(h.group, {"instance_group_name": h.group, "instance_type": h.instance_type,
                                            "hosts": []})
        group["hosts"].append(h.name)
    return {
        "current_host": host.name,
        "current_instance_type": host.instance_type,
        "current_group_name": host.group,
        "hosts": sorted(h.name for h in hosts),
        "instance_groups": list(groups.values()),
        "network_interface_name": "eth0",
        "topology": None,
    }


def channel_hosts(channel: dict[str, Any], hosts: list[Host]) -> list[Host]:
    """Hosts that receive a channel: S3DataSource.InstanceGroupNames limits it to those groups."""
    groups = channel["DataSource"].get("S3DataSource", {}).get("InstanceGroupNames")
    return [h for h in hosts if not groups or h.group in groups]
