"""Building the stand-ins for AWS's framework images, offline, once per recipe, on first use.

A stand-in's recipe is `standins/common/` (Dockerfile, toolkit pins, the container-side code) plus
`standins/<framework>/` (its pins, `<version>.txt`, and any files of its own, a Dockerfile among them
to replace the common one). Wheels are downloaded on the host with pip, for the base image's
platform (CPython 3.11 manylinux x86_64), into a cache that outlives data dirs; containers never
reach a package index. The image carries the recipe's hash as a label, so an edited recipe
rebuilds instead of running a stale image.

One build per image at a time, process-wide: a second job that needs the same missing image waits
for the first one's build (and hears its progress) instead of starting another.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import framework_images, images
from .framework_images import BuildObserver, Standin

log = logging.getLogger(__name__)

HASH_LABEL = "sagemaker-emulator.recipe-hash"
STANDIN_LABEL = "sagemaker-emulator.standin"
BASE_IMAGE = os.environ.get("SAGEMAKER_EMULATOR_BASE_IMAGE", "sagemaker-emulator-base:py311")
PLATFORMS = ("manylinux1", "manylinux2010", "manylinux2014", "manylinux_2_17", "manylinux_2_24", "manylinux_2_27",
             "manylinux_2_28", "manylinux_2_31", "manylinux_2_34", "manylinux_2_35", "manylinux_2_36")
BUILD_TIMEOUT = 3600


def cache_dir() -> Path:
    """Where downloaded wheels live (env SAGEMAKER_EMULATOR_CACHE_DIR, default ~/.cache/sagemaker-emulator)."""
    return Path(os.environ.get("SAGEMAKER_EMULATOR_CACHE_DIR") or Path.home() / ".cache" / "sagemaker-emulator")


def recipe_files(standin: Standin) -> dict[str, Path]:
    """Build-context name -> file: common/ first, the framework's own files over it (its other pins left out)."""
    files: dict[str, Path] = {}
    for root in (framework_images.STANDINS_DIR / "common", standin.recipe_dir):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            rel = path.relative_to(root).as_posix()
            if root == standin.recipe_dir and rel.endswith(".txt") and path != standin.pins:
                continue
            files[rel] = path
    return files


def recipe_hash(standin: Standin) -> str:
    digest = hashlib.sha256(BASE_IMAGE.encode())
    for rel, path in sorted(recipe_files(standin).items()):
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def merged_pins(common: list[str], own: list[str]) -> list[str]:
    """The toolkit closure with the stand-in's own pins replacing it where both name a package."""
    def name(line: str) -> str:
        return re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-")

    merged = {name(line): line for line in common}
    merged.update({name(line): line for line in own})
    return list(merged.values())


def download_wheels(standin: Standin, observer: BuildObserver) -> Path:
    """The stand-in's wheels (and sdists under sdist/) in the host cache; pip runs only when they are missing."""
    common = framework_images.STANDINS_DIR / "common"
    wheels = merged_pins(requirement_lines(common / "toolkit-wheels.txt"), requirement_lines(standin.pins))
    sdists = requirement_lines(common / "sdists.txt")
    key = hashlib.sha256("\n".join(wheels + ["--"] + sdists).encode()).hexdigest()[:16]
    target = cache_dir() / "wheels" / f"{standin.framework}-{standin.version}-{key}"
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        (partial / "sdist").mkdir()
        (partial / "requirements.txt").write_text("\n".join(wheels) + "\n")
        (partial / "sdists.txt").write_text("\n".join(sdists) + "\n")
        observer.line(f"downloading {len(wheels)} wheels and {len(sdists)} sources for {standin.image} on the host")
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"]
        platform_args = [arg for tag in PLATFORMS for arg in ("--platform", f"{tag}_x86_64")]
        if wheels:
            _run(pip + ["--only-binary=:all:", *platform_args, "--python-version", "3.11", "--implementation", "cp",
                        "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-d", str(partial),
                        "-r", str(partial / "requirements.txt")])
        if sdists:
            _run(pip + ["--no-binary=:all:", "-d", str(partial / "sdist"), "-r", str(partial / "sdists.txt")])
        (partial / ".complete").write_text(key + "\n")
        if target.exists():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.rename(target)
        return target
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        detail = [line for line in (result.stderr or result.stdout).splitlines() if "WARNING: Location" not in line]
        raise RuntimeError("pip download failed: " + " | ".join(detail[-5:]))


@dataclass
class _Build:
    standin: Standin
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    observers: list[BuildObserver] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, text: str) -> None:
        log.info("stand-in build %s: %s", self.standin.image, text)
        with self.lock:
            observers = list(self.observers)
        for observer in observers:
            try:
                observer.line(text)
            except Exception:  # a listener going away must not break the build
                log.exception("stand-in build observer failed")


class StandinBuilder:
    """Builds stand-ins with one Docker engine; one build per image at a time."""

    def __init__(self, client_factory: Any) -> None:
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._builds: dict[str, _Build] = {}
        self.builds_started = 0  # how many builds this process ran (tests check that concurrent jobs share one)

    @property
    def client(self) -> Any:
        return self._client_factory()

    def image_labels(self, name: str) -> dict[str, str] | None:
        """The labels of a local image, None when it does not exist."""
        from docker.errors import ImageNotFound, NotFound

        try:
            return dict(self.client.images.get(name).labels or {})
        except (ImageNotFound, NotFound):
            return None

    def is_current(self, standin: Standin) -> bool:
        labels = self.image_labels(standin.image)
        return labels is not None and labels.get(HASH_LABEL) == recipe_hash(standin)

    def ensure(self, standin: Standin, observer: BuildObserver | None = None, uri: str | None = None,
               deadline: float | None = None, cancel: threading.Event | None = None) -> str:
        """The stand-in's image, built first when missing or stale; ImageUnavailable when that fails.

        Waits for the build (its own, or one already running) until `deadline` or `cancel`.
        """
        observer = observer or BuildObserver()
        with self._lock:
            build = self._builds.get(standin.image)
            if build is None:
                if self.is_current(standin):
                    return standin.image
                build = self._builds[standin.image] = _Build(standin)
                self.builds_started += 1
                threading.Thread(target=self._build, args=(build,), name=f"build:{standin.image}",
                                 daemon=True).start()
            with build.lock:
                build.observers.append(observer)
        observer.building(uri or standin.image, standin.image)
        try:
            while not build.done.wait(0.5):
                if cancel is not None and cancel.is_set():
                    raise images.ImageUnavailable(
                        f"ClientError: Stopped while the local stand-in {standin.image} was being built "
                        "(the build goes on for later jobs).")
                if deadline is not None and time.time() > deadline:
                    raise images.ImageUnavailable(
                        f"ClientError: The stopping condition's MaxRuntimeInSeconds ran out while the local "
                        f"stand-in {standin.image} for {uri or standin.image} was being built (the build goes "
                        "on; prebuild with `sagemaker-emulator images build`).")
        finally:
            with build.lock:
                if observer in build.observers:
                    build.observers.remove(observer)
        if build.error:
            raise images.ImageUnavailable(
                f"ClientError: Could not build the local stand-in {standin.image} for {uri or standin.image}: "
                f"{build.error}")
        return standin.image

    def _build(self, build: _Build) -> None:
        started = time.time()
        try:
            self.build_now(build.standin, build.line)
            build.line(f"built {build.standin.image} in {time.time() - started:.0f} s")
        except Exception as exc:
            log.exception("building %s failed", build.standin.image)
            build.error = str(exc)[-800:] or type(exc).__name__
        finally:
            with self._lock:
                self._builds.pop(build.standin.image, None)
            build.done.set()

    def build_now(self, standin: Standin, line: Any) -> None:
        """Download the wheels, assemble the context and `docker build` it, streaming its output to `line`."""
        if self.image_labels(BASE_IMAGE) is None:
            raise RuntimeError(f"the base image {BASE_IMAGE} is missing: build it with scripts/build-base-image "
                               "(offline) or set SAGEMAKER_EMULATOR_BASE_IMAGE=python:3.11-slim where a registry "
                               "is reachable")

        class Relay(BuildObserver):
            def line(self, text: str) -> None:
                line(text)

        wheels = download_wheels(standin, Relay())
        previous = self.image_labels(standin.image) is not None and self.client.images.get(standin.image).id
        with tempfile.TemporaryDirectory(prefix="sm-standin-") as context:
            root = Path(context)
            for rel, path in recipe_files(standin).items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, root / rel)
            shutil.copytree(wheels, root / "wheels", copy_function=os.link if _same_fs(wheels, root) else shutil.copy2)
            line(f"docker build {standin.image} on {BASE_IMAGE}")
            api = self._api()
            labels = {HASH_LABEL: recipe_hash(standin), STANDIN_LABEL: f"{standin.framework}:{standin.version}"}
            for chunk in api.build(path=str(root), tag=standin.image, rm=True, forcerm=True, pull=False,
                                   decode=True, labels=labels,
                                   buildargs={"BASE_IMAGE": BASE_IMAGE, "STANDIN_FRAMEWORK": standin.framework}):
                if "error" in chunk:
                    raise RuntimeError(chunk["error"].strip())
                text = (chunk.get("stream") or "").strip()
                if text and not text.startswith("--->"):
                    line(text)
        if previous and self.client.images.get(standin.image).id != previous:
            try:  # the stale build is now untagged: drop it unless something still uses it
                self.client.images.remove(previous)
            except Exception as exc:
                log.info("kept the previous %s image (%s)", standin.image, exc)

    def _api(self) -> Any:
        import docker

        return docker.from_env(timeout=BUILD_TIMEOUT).api

    def remove(self, standin: Standin) -> bool:
        from docker.errors import ImageNotFound, NotFound

        try:
            self.client.images.remove(standin.image, force=True)
            return True
        except (ImageNotFound, NotFound):
            return False

    def size(self, standin: Standin) -> int | None:
        from docker.errors import ImageNotFound, NotFound

        try:
            return int(self.client.images.get(standin.image).attrs.get("Size") or 0)
        except (ImageNotFound, NotFound):
            return None


def _same_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


_BUILDER: StandinBuilder | None = None
_BUILDER_LOCK = threading.Lock()


def builder_for(runtime: Any) -> StandinBuilder:
    """The process's one builder (one Docker engine per process, so one lock table for its images)."""
    global _BUILDER
    with _BUILDER_LOCK:
        if _BUILDER is None:
            _BUILDER = StandinBuilder(lambda: runtime.client)
        return _BUILDER
