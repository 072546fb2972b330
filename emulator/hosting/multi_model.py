"""Multi-model endpoints: SageMaker's side of the container `/models` contract (spec §3.5).

On an invocation with TargetModel, the artifact `<ModelDataUrl prefix>/<TargetModel>` is fetched
once per model fleet and extracted under `/opt/ml/models/<id>/model` (`<id>` is an opaque name, as
on SageMaker; the workspace makes it appear in each container), loaded into the container with
`POST /models` if it is not loaded there yet (409 = already loaded; 507 = out of memory: the least
recently used model is unloaded and the load tried again), then invoked with
`POST /models/<id>/invoke`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sagemaker_emulator import staging

if TYPE_CHECKING:
    from sagemaker_emulator.hosting.fleet import ModelContainer, ModelFleet, Reply, RunningContainer

_download_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def model_id(target_model: str) -> str:
    return hashlib.sha256(target_model.encode()).hexdigest()[:20]


def _models_root(container: ModelContainer) -> Path:
    """Where a multi-model container's models are staged (always set for MultiModel containers)."""
    assert container.model_dir is not None
    return container.model_dir


def _fetch(fleet: ModelFleet, container: ModelContainer, target_model: str, mid: str) -> None:
    from sagemaker_emulator.hosting.fleet import TargetModelError

    dest = _models_root(container) / mid / "model"
    key = str(dest)
    with _guard:
        lock = _download_locks.setdefault(key, threading.Lock())
    with lock:
        if (_models_root(container) / mid / ".ready").exists():
            return
        definition = next(d for d in fleet.definitions if d.get("Mode") == "MultiModel")
        prefix = staging.as_folder(definition["ModelDataUrl"])
        uri = staging.join_uri(prefix, staging.check_relative_path(target_model))
        try:
            staging.stage_model_data(fleet.data.store, uri, dest)
        except staging.StagingError as exc:
            raise TargetModelError(f"Failed to download model data ({uri}): {exc}. Please ensure that there is an "
                                   "object located at the URL.") from None
        (_models_root(container) / mid / ".ready").write_text(target_model)


def invoke_target_model(fleet: ModelFleet, container: ModelContainer, running: RunningContainer, body: bytes,
                        headers: dict[str, str], timeout: float, target_model: str) -> Reply:
    from sagemaker_emulator.hosting.fleet import ContainerReplyError, post, post_checked

    try:
        mid = model_id(target_model)
    except ValueError as exc:
        from sagemaker_emulator.hosting.fleet import TargetModelError

        raise TargetModelError(str(exc)) from None
    _fetch(fleet, container, target_model, mid)
    with running.lock:
        if mid not in running.loaded_models:
            # the copy workspace copies what the bind workspace shares: the fetched model into this container
            fleet.services.workspace.push(running.handle, _models_root(container) / mid, f"/opt/ml/models/{mid}")
            request = json.dumps({"model_name": mid, "url": f"/opt/ml/models/{mid}/model"}).encode()
            for _attempt in range(3):
                reply = post(running.address, "/models", request, {"Content-Type": "application/json"}, timeout)
                if reply.status in (200, 201, 409):
                    break
                if reply.status == 507 and running.loaded_models:  # evict the least recently used and retry
                    victim = min(running.loaded_models, key=running.loaded_models.__getitem__)
                    post(running.address, f"/models/{victim}", b"", {}, timeout, method="DELETE")
                    running.loaded_models.pop(victim, None)
                    continue
                raise ContainerReplyError(running.name, reply.status, reply.body.decode(errors="replace"))
            else:
                raise ContainerReplyError(running.name, 507, "The model could not be loaded: out of memory.")
        running.loaded_models[mid] = time.time()
    return post_checked(running, f"/models/{mid}/invoke", body, headers, timeout)
