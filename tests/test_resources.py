"""The declarative resource layer (emulator/resources) over HTTP with boto3: every declared resource's
lifecycle from its smallest valid Create, then the shared behaviours (filters, sorting, pages, tags,
errors, parents, versions, settling) on a few resources.

The server runs in this process on a FakeRuntime: declared resources start no container.
"""

from __future__ import annotations

import time

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from sagemaker_emulator.resources.catalog import MODELS
from sagemaker_emulator.resources.engine import TERMINAL
from sagemaker_emulator.resources.spec import Model
from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer

from .minimal_requests import minimal


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with InProcessServer(FakeRuntime(), data_dir=tmp_path_factory.mktemp("resources")) as srv:
        yield srv


@pytest.fixture(scope="module")
def sm(server):
    return server.client("sagemaker")


def call(sm, operation: str, params: dict):
    return getattr(sm, xform_name(operation))(**params)


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def make(sm, model: Model, seed: str) -> dict:
    """Create one resource (and its parents first); the values that name it (request + answer)."""
    op = model.op("Create")
    params = minimal(op.input_shape, seed=seed)
    for alternatives in model.spec.parents:
        parent = MODELS[alternatives.split("|")[0]]
        known = make(sm, parent, seed)
        params.update({m: known[m] for alt in parent.path for m in alt.split("|") if m in known})
    params["Tags"] = [{"Key": "seed", "Value": seed}] if "Tags" in op.input_shape.members else None
    params = {k: v for k, v in params.items() if v is not None}
    answer = call(sm, op.name, params)
    known = {**params, **answer}
    arn = answer.get(model.arn_member) if model.arn_member else None
    known.update({"Arn": arn, "Identifier": arn, f"{model.spec.noun}Arn": arn} if arn else {})
    return known


def request(model: Model, verb: str, known: dict, seed: str) -> dict:
    shape = model.op(verb).input_shape
    params = minimal(shape, seed=seed)
    params.update({m: known[m] for m in shape.members
                   if m in known and shape.members[m].type_name in ("string", "integer")})
    return params


DECLARED = sorted(noun for noun, model in MODELS.items() if "Create" in model.operations)


@pytest.mark.parametrize("noun", DECLARED)
def test_declared_lifecycle(sm, noun):
    """Create -> Describe (AWS's end status, ARN, times, echoed members) -> List -> tags -> Update ->
    Stop/Start -> Delete -> Describe answers the not-found error the operation declares."""
    model = MODELS[noun]
    seed = f"{noun.lower()[:20]}{int(time.time() * 1000) % 100000}"
    known = make(sm, model, seed)
    described = call(sm, model.operations["Describe"], request(model, "Describe", known, seed))
    document = described[model.spec.wrapped] if model.spec.wrapped else described
    if model.arn_member in model.describe_members:
        assert document[model.arn_member] == known.get(model.create_arn_member, document[model.arn_member])
        if "Tags" in model.op("Create").input_shape.members:
            assert {"Key": "seed", "Value": seed} in sm.list_tags(ResourceArn=document[model.arn_member])["Tags"]
    if model.status_member:
        _during, after, _gone = model.step("Create")
        assert document[model.status_member] == (after or document[model.status_member])
    created = model.time_member(("CreationTime", "CreatedTime", "CreateTime", "CreationTimestamp", "CreateDate"))
    if created:
        assert abs(document[created].timestamp() - time.time()) < 60
    for member in model.path:  # the members that name it are echoed
        name = next((m for m in member.split("|") if m in known), None)
        if name and name in model.describe_members:
            assert str(document[name]) == str(known[name])
    if "List" in model.operations and model.list_key:
        listing = call(sm, model.operations["List"], request(model, "List", known, seed))
        assert len(listing[model.list_key[0]]) >= 1
    if "Update" in model.operations:
        call(sm, model.operations["Update"], request(model, "Update", known, seed))
    status = document.get(model.status_member or "")
    stoppable = model.status(model.spec.stop_when[0]) == status if model.spec.stop_when else (
        str(status).lower() not in TERMINAL)
    if "Stop" in model.operations and model.step("Stop")[1] and stoppable:
        call(sm, model.operations["Stop"], request(model, "Stop", known, seed))
    if "Delete" in model.operations:
        call(sm, model.operations["Delete"], request(model, "Delete", known, seed))
        with pytest.raises(ClientError) as exc:
            call(sm, model.operations["Describe"], request(model, "Describe", known, seed))
        assert code_of(exc) == ("ResourceNotFound" if model.declares("Describe", "ResourceNotFound")
                                else "ValidationException")
