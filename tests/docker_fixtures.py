"""Session fixtures for tests that run real containers: the engine and the offline base image."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from sagemaker_emulator.runtime.docker_engine import DockerRuntime
from sagemaker_emulator.testing import BASE_IMAGE, build_test_image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def docker_ready() -> str:
    """Engine up and base image built (scripts/setup is idempotent and quick when both exist)."""
    subprocess.run([str(ROOT / "scripts" / "setup")], check=True, timeout=900)
    return BASE_IMAGE


@pytest.fixture
def runtime(docker_ready):
    rt = DockerRuntime(owner="test-" + uuid.uuid4().hex[:8])
    yield rt
    leftovers = [h.name for h in rt.list_managed(rt.owner)] + rt.list_networks(rt.owner) + rt.list_volumes(rt.owner)
    rt.cleanup(rt.owner)
    assert not leftovers, f"the test left containers/networks/volumes behind: {leftovers}"


@pytest.fixture(scope="session")
def training_image(docker_ready) -> str:
    """A bring-your-own training image built on the base image (tests/images/training)."""
    return build_test_image("sm-test-training", ROOT / "tests" / "images" / "training")


@pytest.fixture(scope="session")
def serving_image(docker_ready) -> str:
    """A bring-your-own serving image built on the base image (tests/images/serving)."""
    return build_test_image("sm-test-serving", ROOT / "tests" / "images" / "serving")


@pytest.fixture(scope="session")
def processing_image(docker_ready) -> str:
    """A bring-your-own processing image built on the base image (tests/images/processing)."""
    return build_test_image("sm-test-processing", ROOT / "tests" / "images" / "processing")


def build_toolkit_image(name: str, context: Path, base: str = BASE_IMAGE) -> str:
    """A toolkit image: its pinned wheels fetched on the host once (scripts/toolkit-wheels, into the
    git-ignored <context>/wheels/), then built offline like the other test images."""
    import os
    import sys

    subprocess.run([str(ROOT / "scripts" / "toolkit-wheels"), str(context)], check=True, timeout=600,
                   env={**os.environ, "PYTHON": sys.executable})
    return build_test_image(name, context, base)


@pytest.fixture(scope="session")
def toolkit_training_image(docker_ready) -> str:
    """AWS's training toolkit (PyPI sagemaker-training) on the base image (tests/images/toolkit-training)."""
    return build_toolkit_image("sm-test-toolkit-training", ROOT / "tests" / "images" / "toolkit-training")


@pytest.fixture(scope="session")
def toolkit_serving_image(docker_ready) -> str:
    """AWS's inference toolkit (PyPI sagemaker-inference) on the base image (tests/images/toolkit-serving)."""
    import shutil

    context = ROOT / "tests" / "images" / "toolkit-serving"
    # the model-server stand-in is the one the framework stand-ins carry (one copy, in the package)
    shutil.copy2(ROOT / "emulator" / "runtime" / "standins" / "common" / "multi-model-server", context)
    return build_toolkit_image("sm-test-toolkit-serving", context)


@pytest.fixture(scope="session")
def sdk_training_image(docker_ready) -> str:
    """The sklearn 1.2-1 stand-in with the SageMaker Python SDK v2 installed (tests/images/sdk-training):
    training scripts that call `sagemaker.experiments.load_run()` inside the job. (1.2-1: the stand-in
    test_framework_sdk builds too, and one no test removes.)"""
    import sys

    subprocess.run([sys.executable, "-m", "sagemaker_emulator", "images", "build", "sklearn:1.2-1"], check=True,
                   timeout=1800)
    return build_toolkit_image("sm-test-sdk-training", ROOT / "tests" / "images" / "sdk-training",
                               base="sagemaker-emulator/sklearn:1.2-1")
