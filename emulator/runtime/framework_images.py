"""AWS's own framework and algorithm images, resolved to local stand-ins the emulator builds itself.

`sagemaker.image_uris.retrieve("sklearn", region, "1.2-1")` and the framework estimators name images
such as `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3`. They live
in AWS's private ECR accounts, which no offline machine can pull from, so such a URI maps to a stand-in
(`sagemaker-emulator/sklearn:1.2-1`) built from a recipe under `standins/` with PyPI wheels (see
standin_builder). Which URIs are AWS's comes from standins/registries.json, derived from the SDK's own
image config (scripts/derive-image-table): the repository, a version the SDK knows, and the account
the SDK uses for that region. Anything else is not ours to interpret and goes to plain resolution.

What cannot be matched exactly is said, not hidden: a GPU tag runs the CPU build, a version with no
Python 3.11 wheels on PyPI runs the nearest buildable one (one note each, for the job's log), and a
framework or version without a stand-in fails at once, listing what is supported.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import images

log = logging.getLogger(__name__)

STANDINS_DIR = Path(__file__).resolve().parent / "standins"
IMAGE_PREFIX = "sagemaker-emulator/"
_ECR = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[a-z0-9.-]+/(?P<repo>[^:@]+)"
                  r"(?::(?P<tag>[^@]+))?(?:@.*)?$")


@dataclass(frozen=True)
class Standin:
    """One buildable stand-in: `standins/<framework>/` (shared recipe) plus `<version>.txt` (its pins)."""

    framework: str
    version: str

    @property
    def image(self) -> str:
        return f"{IMAGE_PREFIX}{self.framework}:{self.version}"

    @property
    def recipe_dir(self) -> Path:
        return STANDINS_DIR / self.framework

    @property
    def pins(self) -> Path:
        return self.recipe_dir / f"{self.version}.txt"


# What each framework's stand-ins are, and which AWS versions they serve. The SDK versions with no
# Python 3.11 wheels on PyPI (scikit-learn < 1.1, the xgboost 0.90/1.0-1.5 containers' pins with numpy 1.x
# builds) run the nearest stand-in; `_nearest` picks it and the job's log says so.
BUILDABLE: dict[str, tuple[str, ...]] = {
    "sklearn": ("1.2-1", "1.4-2"),
    "xgboost": ("1.7-1", "3.0-5"),
    "pytorch": ("2.13.0",),  # every PyTorch 2.x: the one CPU build of torch available offline
    "tensorflow": ("2.19.0",),  # every TensorFlow 2.x: tensorflow-cpu 2.19.0
    "model-monitor": ("latest",),  # the analyzer's one (untagged) image: standins/model-monitor/analyzer.py
}
# Versions older than this (major) have no stand-in: their APIs differ too much to substitute silently.
OLDEST_MAJOR = {"pytorch": 2, "tensorflow": 2}
FRAMEWORK_NAMES = {"sklearn": "scikit-learn", "xgboost": "XGBoost", "pytorch": "PyTorch", "tensorflow": "TensorFlow",
                   "model-monitor": "Model Monitor analyzer"}


class UnsupportedImage(images.ImageUnavailable):
    """An AWS framework image the emulator has no stand-in for; the message lists what it supports."""


@dataclass
class Match:
    """An AWS image URI and the stand-in that runs it; `notes` say where the two differ."""

    uri: str
    framework: str
    repository: str
    requested: str
    standin: Standin
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def registries() -> dict[str, Any]:
    data = json.loads((STANDINS_DIR / "registries.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _requested_version(tag: str, row: dict[str, Any]) -> str | None:
    """The SDK version a tag starts with (`1.2-1-cpu-py3` -> `1.2-1`), the longest that fits."""
    known = list(row["versions"]) + list(row.get("aliases") or {})
    fits = [v for v in known if tag == v or tag.startswith(v + "-")]
    if not fits:
        return None
    best = max(fits, key=len)
    return (row.get("aliases") or {}).get(best, best)


def supported() -> str:
    """Every stand-in, for error messages and `images list`."""
    def served(fw: str) -> str:
        oldest = OLDEST_MAJOR.get(fw)
        return f" (serving every {oldest}.x)" if oldest else ""

    return "; ".join(f"{FRAMEWORK_NAMES[fw]}: {', '.join(versions)}{served(fw)}" for fw, versions in BUILDABLE.items())


def _nearest(framework: str, version: str) -> str:
    choices = BUILDABLE[framework]
    if version in choices:
        return version
    wanted = _version_key(version)
    newer = [c for c in choices if _version_key(c) >= wanted]
    return min(newer, key=_version_key) if newer else max(choices, key=_version_key)


def match(uri: str) -> Match | None:
    """The stand-in for an AWS framework image URI; None when `uri` is not one (plain resolution then).

    Raises UnsupportedImage for an AWS framework image the emulator cannot stand in for.
    """
    found = _ECR.match(uri)
    if not found:
        return None
    row = registries().get(found.group("repo"))
    if row is None or found.group("account") not in row["accounts"].get(found.group("region"), []):
        return None
    framework = row["framework"]
    tag = found.group("tag") or "latest"
    requested = _requested_version(tag, row)
    name = FRAMEWORK_NAMES[framework]
    if framework not in BUILDABLE:
        raise UnsupportedImage(
            f"ClientError: The emulator has no local stand-in for {name} images yet ('{uri}'). "
            f"Supported AWS images: {supported()}. Map the URI to an image of your own with --image-map.")
    if requested is None:
        raise UnsupportedImage(
            f"ClientError: '{uri}' names no {name} version the SageMaker SDK knows. "
            f"Supported AWS images: {supported()}.")
    if framework in OLDEST_MAJOR and _version_key(requested)[:1] < (OLDEST_MAJOR[framework],):
        raise UnsupportedImage(
            f"ClientError: The emulator has no local stand-in for {name} {requested} ('{uri}'). "
            f"Supported AWS images: {supported()}.")
    chosen = _nearest(framework, requested)
    result = Match(uri, framework, found.group("repo"), requested, Standin(framework, chosen))
    if chosen != requested:
        result.notes.append(f"{name} {requested} has no stand-in (it cannot be built offline for Python 3.11); "
                            f"running the nearest buildable one, {name} {chosen} ({result.standin.image}).")
    if re.search(r"(^|-)gpu(-|$)", tag):
        result.notes.append(f"'{uri}' is a GPU image; running the CPU build {result.standin.image} "
                            "(the emulator has no GPUs).")
    if "arm64" in tag or found.group("repo").endswith("-graviton"):
        result.notes.append(f"'{uri}' is a Graviton (arm64) image; running the x86_64 build {result.standin.image}.")
    return result


def all_standins() -> list[Standin]:
    return [Standin(fw, v) for fw, versions in BUILDABLE.items() for v in versions]


def standin_named(name: str) -> Standin:
    """`sklearn:1.2-1`, `sagemaker-emulator/sklearn:1.2-1` or an AWS URI -> its Standin (KeyError if none)."""
    short = name[len(IMAGE_PREFIX):] if name.startswith(IMAGE_PREFIX) else name
    for standin in all_standins():
        if short == f"{standin.framework}:{standin.version}":
            return standin
    found = match(name)
    if found is None:
        raise KeyError(f"{name!r} is no stand-in; known: {', '.join(s.image for s in all_standins())}")
    return found.standin


def is_standin(local: str) -> Standin | None:
    try:
        return standin_named(local) if local.startswith(IMAGE_PREFIX) else None
    except KeyError:
        return None


class BuildObserver:
    """What a waiting job or endpoint hears about a stand-in build; the default logs to the server log."""

    def note(self, text: str) -> None:
        log.info("%s", text)

    def building(self, uri: str, image: str) -> None:
        log.info("building the local stand-in %s for %s", image, uri)

    def line(self, text: str) -> None:
        """One line of build output (the builder already logs each line once to the server log)."""


def resolve(image: str, mapping: dict[str, str], runtime: Any, pull: Callable[[str], bool] | None = None,
            observer: BuildObserver | None = None, deadline: float | None = None,
            cancel: threading.Event | None = None) -> images.Resolution:
    """images.resolve, and for AWS's framework images their stand-in, built on first use.

    A mapping, a local image of the requested name or (with --pull-images) a pull still wins. `deadline`
    (epoch seconds) bounds the wait for a build another job may have started; ImageUnavailable then.
    """
    observer = observer or BuildObserver()
    found = match(image)
    if found is None:
        return images.resolve(image, mapping, runtime.image_exists, pull)
    try:  # the user's own copy (mapped, tagged, or pulled with their registry login) comes first
        return images.resolve(image, mapping, runtime.image_exists, pull)
    except images.ImageUnavailable:
        pass
    for note in found.notes:
        observer.note(note)
    from .standin_builder import builder_for

    builder_for(runtime).ensure(found.standin, observer, uri=image, deadline=deadline, cancel=cancel)
    return images.Resolution(image, found.standin.image)


def implied_metric_definitions(image: str, hyperparameters: dict[str, str]) -> list[dict[str, str]]:
    """The metric definitions SageMaker adds for a built-in algorithm (XGBoost without an entry point).

    The service knows them from the algorithm, so jobs need no MetricDefinitions for
    `validation:rmse` & co. to reach FinalMetricDataList and CloudWatch. Same form as AWS's
    (`#011` is the TAB of the log line, as CloudWatch shows it).
    """
    try:
        found = match(image)
    except images.ImageUnavailable:
        return []
    if found is None or found.framework != "xgboost" or "sagemaker_program" in hyperparameters:
        return []
    number = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    return [{"Name": f"{channel}:{metric}", "Regex": f".*\\[[0-9]+\\].*#011{channel}-{metric}:{number}.*"}
            for channel in ("train", "validation") for metric in XGBOOST_METRICS]


XGBOOST_METRICS = ("rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "merror", "mlogloss", "auc",
                   "aucpr", "ndcg", "map", "poisson-nloglik", "gamma-nloglik", "gamma-deviance", "cox-nloglik",
                   "tweedie-nloglik", "aft-nloglik", "interval-regression-accuracy", "f1", "accuracy",
                   "balanced_accuracy", "precision", "recall", "r2", "mse")
