"""The coverage guard: every operation of botocore's SageMaker model is served, or refused on purpose
with a reason (emulator/resources/refused.py), or belongs to an area being built; a refused one
answers an AWS-shaped error; the declarative layer never replaces a hand-written handler; and the
README's "What is implemented" table is the one the code generates.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from sagemaker_emulator.protocol.service import service_model
from sagemaker_emulator.resources import coverage, derived_operations
from sagemaker_emulator.resources.refused import IN_PROGRESS, REFUSED
from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer

from .readme import README

OPERATIONS = service_model("sagemaker").operation_names


def test_every_operation_is_served_or_refused_with_a_reason():
    served = coverage.served_sagemaker()
    unaccounted = [op for op in OPERATIONS if op not in served and op not in REFUSED and not IN_PROGRESS.search(op)]
    assert unaccounted == [], f"neither served nor refused: {unaccounted}"
    assert [op for op in REFUSED if op in served] == [], "refused yet served: take them off the list"
    assert [op for op in REFUSED if op not in OPERATIONS] == [], "refused operations botocore does not know"
    assert all(len(reason) > 20 for reason in REFUSED.values())
    assert len(served) >= 300


def test_the_layer_never_replaces_a_hand_written_handler():
    served = coverage.served_sagemaker()
    hand_written = {op for op, func in served.items() if func.__module__.startswith("sagemaker_emulator.handlers")}
    derived = {op for op, func in served.items() if func.__module__.startswith("sagemaker_emulator.resources")}
    assert hand_written and derived and not hand_written & derived
    for op in hand_written & set(derived_operations()):  # declared, yet the hand-written one answers
        assert served[op].__module__.startswith("sagemaker_emulator.handlers")


def test_readme_table_is_generated():
    text = README.read_text()
    start, end = text.index(coverage.BEGIN), text.index(coverage.END) + len(coverage.END)
    assert text[start:end] == coverage.markdown(), "run `sagemaker-emulator coverage --markdown` into the README"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with InProcessServer(FakeRuntime(), data_dir=tmp_path_factory.mktemp("coverage")) as srv:
        yield srv


def test_refused_operations_answer_an_aws_error_with_their_reason(server):
    for op in sorted(REFUSED):
        request = urllib.request.Request(server.endpoint_url + "/", data=b"{}", method="POST", headers={
            "X-Amz-Target": f"SageMaker.{op}", "Content-Type": "application/x-amz-json-1.1"})
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{op} answered 200")
        except urllib.error.HTTPError as err:
            body = json.loads(err.read())
            assert err.code == 400 and body["__type"] == "NotImplementedException", (op, body)
            assert REFUSED[op] in body["message"]
