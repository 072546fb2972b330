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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `docker` every test whose fixtures (transitively) include docker_ready: the engine and the
    base image. `pytest -m "not docker"` then selects what runs without an engine."""
    for item in items:
        if "docker_ready" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture
def name() -> str:
    return unique("t")


@pytest.fixture(scope="module")
def bucket(s3_client, request) -> str:
    """A fresh bucket of the session server for the test module (named after it)."""
    name = unique(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-"))
    s3_client.create_bucket(Bucket=name)
    return name
