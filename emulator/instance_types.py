"""vCPUs and memory of common ML instance types, for the optional resource caps."""

from __future__ import annotations

_FAMILY_SIZES = {  # size -> (vCPU, GiB) for the general-purpose families (m5, m6i, ...)
    "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "8xlarge": (32, 128),
    "12xlarge": (48, 192), "16xlarge": (64, 256), "24xlarge": (96, 384),
}
_MEMORY_PER_VCPU = {"c": 2, "m": 4, "r": 8, "t": 4, "g": 4, "p": 7.6, "inf": 2, "trn": 16}


def size_of(instance_type: str) -> tuple[float, float] | None:
    """(vCPUs, GiB) for `ml.<family>.<size>`, or None when unknown (no cap is applied)."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[0] != "ml":
        return None
    family, size = parts[1], parts[2]
    if size == "medium":
        return (1, 4)
    if size not in _FAMILY_SIZES:
        return None
    vcpus, _ = _FAMILY_SIZES[size]
    letters = "".join(ch for ch in family if ch.isalpha())
    for prefix in sorted(_MEMORY_PER_VCPU, key=len, reverse=True):
        if letters.startswith(prefix):
            return (vcpus, vcpus * _MEMORY_PER_VCPU[prefix])
    return (vcpus, vcpus * 4)
