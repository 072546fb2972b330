"""A batch transform resumes after a kill -9 of the emulator (docs/decisions.md, "A batch transform resumes").

AWS never loses a transform to a control-plane restart, so neither do we. The interrupted run's serving
containers (with their isolation gateways and socket volumes) are removed and the job starts again on
fresh ones, transforming only the input objects whose output this job had not yet committed: an object
is done when `<S3OutputPath>/<relative path>.out` exists and was last written at or after the job's
TransformStartTime (so an output another job left at the same path never counts). An output is one
PutObject or one completed multipart upload, atomic in our S3, so a partly uploaded output never exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sagemaker_emulator import staging
from sagemaker_emulator.hosting import isolation
from sagemaker_emulator.runtime.interface import HOST_LABEL, RESOURCE_LABEL, ContainerRuntime

log = logging.getLogger(__name__)


def output_uri(output_path: str, obj: staging.DataObject) -> str:
    """Where the output of one input object goes: `<S3OutputPath>/<relative path>.out`."""
    return staging.join_uri(output_path, obj.relative_path + ".out")


def committed(store: staging.ObjectStore, output_path: str, objects: Iterable[staging.DataObject],
              since: float) -> set[str]:
    """URIs of the input objects whose output was written at or after `since` (the job's start).

    One listing of the output prefix; an object whose output time is unknown (or a listing that fails)
    counts as not done: transforming it again only rewrites the same key.
    """
    try:
        written = {info.uri: info.mtime for info in store.list(output_path)}
    except staging.StagingError as exc:
        log.info("cannot list %s to resume a transform: %s", output_path, exc)
        return set()
    done = set()
    for obj in objects:
        mtime = written.get(output_uri(output_path, obj))
        if mtime is not None and mtime >= since:
            done.add(obj.uri)
    return done


def remove_leftovers(runtime: ContainerRuntime, arn: str) -> None:
    """The containers a killed run left behind (serving containers, isolation gateways), then the socket
    volumes of its isolated instances (named after the instance id in each serving container's host label,
    `<job>/<instance-id>/<container>`)."""
    instances = set()
    for handle in runtime.find_containers({RESOURCE_LABEL: arn}).values():
        host = handle.labels.get(HOST_LABEL, "").split("/")
        if len(host) == 3:
            instances.add(host[1])
        runtime.remove(handle)
    for instance_id in instances:
        runtime.remove_volume(isolation.for_instance(instance_id).volume)
