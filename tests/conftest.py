"""Fixtures, and the `docker` marker. Shared helper functions are in helpers.py; the server fixtures come from
our own pytest plugin (testing.pytest_plugin)."""

from __future__ import annotations

import pytest

from .docker_fixtures import (  # noqa: F401  (fixtures)
    docker_ready,
    processing_image,
    runtime,
    sdk_training_image,
    serving_image,
    toolkit_serving_image,
    toolkit_training_image,
    training_image,
)
from .helpers import unique
from .second_engine import second_engine  # noqa: F401  (fixture)

# Modules of minutes each (the SDK flows on AWS's framework stand-ins, the compose stack, the SDK v3
# venv's clients, the crash loop): marked `expensive`, which `scripts/test` leaves out unless asked
# for (`.ci/run` runs them; `scripts/test -m ""` too).
EXPENSIVE_MODULES = frozenset({
    "test_crash_loop", "test_compose", "test_framework_sdk", "test_sdk_v3", "test_pipelines_sdk",
    "test_pipelines_step_decorator", "test_experiments_in_jobs", "test_sdk_v2_tuner", "test_model_monitor_sdk",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `docker` every test whose fixtures (transitively) include docker_ready: the engine and the
    base image. `pytest -m "not docker"` then selects what runs without an engine. Mark `expensive`
    the tests of EXPENSIVE_MODULES."""
    for item in items:
        if "docker_ready" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in EXPENSIVE_MODULES:
            item.add_marker(pytest.mark.expensive)


@pytest.fixture
def name() -> str:
    return unique("t")


@pytest.fixture(scope="module")
def bucket(s3_client, request) -> str:
    """A fresh bucket of the session server for the test module (named after it)."""
    name = unique(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-"))
    s3_client.create_bucket(Bucket=name)
    return name
