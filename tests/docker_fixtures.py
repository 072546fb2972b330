"""Session fixtures for tests that run real containers: the engine and the offline base image."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from emulator.docker_runtime import DockerRuntime

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "sagemaker-emulator-base:py311"


@pytest.fixture(scope="session")
def docker_ready() -> str:
    """Engine up and base image built (scripts/setup is idempotent and quick when both exist)."""
    subprocess.run([str(ROOT / "scripts" / "setup")], check=True, timeout=900)
    return BASE_IMAGE


@pytest.fixture
def runtime(docker_ready):
    rt = DockerRuntime(owner="test-" + uuid.uuid4().hex[:8])
    yield rt
    leftovers = [h.name for h in rt.list_managed(rt.owner)] + rt.list_networks(rt.owner)
    rt.cleanup(rt.owner)
    assert not leftovers, f"the test left containers/networks behind: {leftovers}"


def build_image(tag: str, context: Path, base: str = BASE_IMAGE) -> str:
    """docker build a test image on the base image (only when missing)."""
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        subprocess.run(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context)],
                       check=True, timeout=600, capture_output=True)
    return tag


@pytest.fixture(scope="session")
def training_image(docker_ready) -> str:
    """A bring-your-own training image built on the base image (tests/images/training)."""
    return build_image("sm-test-training:1", ROOT / "tests" / "images" / "training")


@pytest.fixture(scope="session")
def serving_image(docker_ready) -> str:
    """A bring-your-own serving image built on the base image (tests/images/serving)."""
    return build_image("sm-test-serving:1", ROOT / "tests" / "images" / "serving")
