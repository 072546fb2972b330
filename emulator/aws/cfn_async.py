"""Stack operations that involve `AWS::SageMaker::*` resources run in the background, as on AWS.

Why: CloudFormation answers CreateStack/UpdateStack/DeleteStack at once (StackId, *_IN_PROGRESS) and
does the work afterwards; clients wait with DescribeStacks (boto3's `stack_*_complete` waiters). moto
runs the work inside the request, so a stack whose endpoint takes a minute to start outlives boto3's
60 s read timeout. Here every such stack has one worker thread that runs its operations in order (a
DeleteStack sent during a create runs once the create has ended).

While a worker works on a stack, other threads see the resources it has made so far and no outputs:
moto's ResourceMap is lazy (reading an entry creates the resource), so a DescribeStackResources from a
request thread must not create what the worker has not reached yet (`foreign`, used by cfn_stacks).

At shutdown the workers stop where they are (`Interrupted`); the stack stays *_IN_PROGRESS in moto's
snapshot and `recover` settles it at the next start (see cfn_stacks.recover).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sagemaker_emulator.aws import moto_state
from sagemaker_emulator.aws.cfn_types import TYPES

log = logging.getLogger(__name__)

_lock = threading.Lock()
_queues: dict[str, deque[Callable[[], None]]] = {}
_workers: dict[str, threading.Thread] = {}
_closing = threading.Event()
_local = threading.local()  # .stack: the stack this worker thread works on


class Interrupted(BaseException):
    """The emulator is shutting down: the operation stops where it is. A BaseException, so that moto's
    retry loops (`except Exception`) and the rollback paths let it through."""


def involves_ours(*templates: dict[str, Any] | None) -> bool:
    """Whether any of the templates has a resource of ours (only those stacks run in the background)."""
    for template in templates:
        resources = (template or {}).get("Resources") if isinstance(template, dict) else None
        if isinstance(resources, dict) and any(isinstance(body, dict) and body.get("Type") in TYPES
                                               for body in resources.values()):
            return True
    return False


def busy(stack_id: str) -> bool:
    return stack_id in _workers


def foreign(stack_id: str) -> bool:
    """A thread other than the stack's worker, while the worker works on it."""
    worker = _workers.get(stack_id)
    return worker is not None and worker is not threading.current_thread()


def current_stack() -> Any:
    """The stack the calling worker thread works on (None outside a worker)."""
    return getattr(_local, "stack", None)


def note_made(logical_id: str, resource: Any) -> None:
    """A resource the worker has created and still waits for goes into the stack's map at once, so the
    rollback (also the one after a restart) deletes it, and DescribeStackResources lists it."""
    stack = current_stack()
    if stack is not None:
        stack.resource_map._parsed_resources[logical_id] = resource
        moto_state.changed("cloudformation")


def check_interrupt() -> None:
    """Called by long waits of a worker: raise Interrupted once the emulator is shutting down."""
    if _closing.is_set() and current_stack() is not None:
        raise Interrupted()


def submit(stack: Any, work: Callable[[], None], wait_seconds: float = 0.0) -> None:
    """Queue `work` for the stack's worker (started if none runs). `wait_seconds` > 0: wait up to that long
    for it to end before returning (SAGEMAKER_EMULATOR_CFN_SYNC_SECONDS; AWS does not wait)."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    with _lock:
        _queues.setdefault(stack.stack_id, deque()).append(run)
        if stack.stack_id not in _workers:
            thread = threading.Thread(target=_drain, args=(stack,), name=f"cfn-{stack.name}", daemon=True)
            _workers[stack.stack_id] = thread
            thread.start()
    if wait_seconds > 0:
        done.wait(wait_seconds)


def _drain(stack: Any) -> None:
    _local.stack = stack
    while True:
        with _lock:
            queue = _queues.get(stack.stack_id)
            if not queue or _closing.is_set():
                _queues.pop(stack.stack_id, None)
                _workers.pop(stack.stack_id, None)
                return
            work = queue.popleft()
        try:
            work()
        except Interrupted:
            log.info("stack %s: interrupted by shutdown in %s", stack.name, stack.status)
        except Exception as exc:  # the operations turn failures into stack statuses; this is a bug's last resort
            log.exception("stack %s: operation failed unexpectedly", stack.name)
            _fail(stack, exc)
        finally:
            moto_state.changed("cloudformation")


_FAILED = {"CREATE_IN_PROGRESS": "CREATE_FAILED", "ROLLBACK_IN_PROGRESS": "ROLLBACK_FAILED",
           "DELETE_IN_PROGRESS": "DELETE_FAILED"}


def _fail(stack: Any, exc: Exception) -> None:
    """A stack never stays *_IN_PROGRESS after its worker gave up: the matching *_FAILED, with the reason."""
    status = str(stack.status)
    if status.endswith("_IN_PROGRESS"):
        stack.status = _FAILED.get(status, "UPDATE_ROLLBACK_FAILED")
        stack.stack_status_reason = f"Internal failure: {exc}"
        stack._add_stack_event(stack.status, resource_status_reason=stack.stack_status_reason)


def shutdown(timeout: float = 10.0) -> None:
    """Stop every worker at its next wait and give them `timeout` seconds in all to get there."""
    _closing.set()
    with _lock:
        threads = list(_workers.values())
    for thread in threads:
        thread.join(timeout / max(len(threads), 1))


def reopen() -> None:
    """A new Services installs: workers may run again."""
    _closing.clear()
