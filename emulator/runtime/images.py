"""Resolve the image a request names to an image the local Docker engine has.

Requests name ECR URIs (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`, AWS's own
algorithm and framework images among them) or plain names. No registry is needed: we look, in
order, at an explicit mapping table, the name as given, and the ECR URI's `<repo>:<tag>`; a pull is
tried only when enabled. A missing image fails at once with a reason that says how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_ECR = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<rest>.+)$")


class ImageUnavailable(Exception):
    """No local image matches; the message is a FailureReason a user can act on."""


@dataclass
class Resolution:
    specified: str
    local: str


def candidates(image: str, mapping: dict[str, str]) -> list[str]:
    """Local names to try for `image`, best first."""
    names: list[str] = []
    if image in mapping:
        names.append(mapping[image])
    untagged = image.split("@", 1)[0]
    if untagged != image and untagged in mapping:
        names.append(mapping[untagged])
    names.append(image)
    match = _ECR.match(untagged)
    if match:
        rest = match.group("rest")
        if rest in mapping:
            names.append(mapping[rest])
        names.append(rest if ":" in rest.rsplit("/", 1)[-1] else rest + ":latest")
    return list(dict.fromkeys(names))


def resolve(image: str, mapping: dict[str, str], exists: Callable[[str], bool],
            pull: Callable[[str], bool] | None = None) -> Resolution:
    """Return the local image to run for `image`, or raise ImageUnavailable."""
    tried = candidates(image, mapping)
    for name in tried:
        if exists(name):
            return Resolution(image, name)
    if pull is not None:
        for name in tried:
            if pull(name):
                return Resolution(image, name)
    suggestion = tried[-1]
    raise ImageUnavailable(
        f"ClientError: The image '{image}' is not available to the local Docker engine "
        f"(tried {', '.join(repr(t) for t in tried)}). Build or tag it locally, e.g. "
        f"`docker build -t {suggestion} .` or `docker tag <your-image> {suggestion}`, or map it to a local "
        "image in the emulator's image map (--image-map / SAGEMAKER_EMULATOR_IMAGE_MAP).")
