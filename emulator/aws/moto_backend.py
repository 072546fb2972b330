"""Every AWS call that is not SageMaker's (S3, STS, IAM, ECR, CloudWatch, ...) goes to moto.

moto's own server dispatcher runs in this process as a WSGI app, so its services share our port;
their state is snapshotted to the data dir (moto_state.py) and survives restarts. The few operations that SageMaker
clients need and moto lacks are added to moto's response classes here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import moto_logs

if TYPE_CHECKING:
    from .moto_state import MotoState


def _simulate_principal_policy(self: Any) -> Any:
    """IAM SimulatePrincipalPolicy (the SageMaker SDK v3 checks its execution role with it).

    Nothing here enforces IAM policies, so every action is `allowed` for a principal that exists;
    an unknown role is `NoSuchEntity`, as on AWS.
    """
    from moto.core.responses import ActionResult

    source = self._get_param("PolicySourceArn") or ""
    if ":role/" in source:
        self.backend.get_role_by_arn(source)
    resources = self._get_param("ResourceArns", []) or ["*"]
    return ActionResult({"IsTruncated": False, "EvaluationResults": [
        {"EvalActionName": action, "EvalResourceName": resources[0], "EvalDecision": "allowed",
         "MatchedStatements": [], "MissingContextValues": []}
        for action in self._get_param("ActionNames", [])]})


def moto_wsgi_app(state: MotoState | None = None) -> Callable[[dict, Callable], Iterable[bytes]]:
    """moto's dispatcher; with `state`, every service's app marks its service dirty after a write
    (aws/moto_state.py snapshots what changed)."""
    from moto.iam.responses import IamResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_logs.install()
    if not hasattr(IamResponse, "simulate_principal_policy"):
        IamResponse.simulate_principal_policy = _simulate_principal_policy  # type: ignore[attr-defined]
    if state is None:
        return DomainDispatcherApplication(create_backend_app)
    return DomainDispatcherApplication(
        lambda service: state.wrap(service, create_backend_app(service)))  # type: ignore[arg-type, return-value]
