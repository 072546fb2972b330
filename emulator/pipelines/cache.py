"""Step caching: AWS's cache key attributes per step type and CacheConfig's ExpireAfter.

A step with `CacheConfig.Enabled` is a hit when the same step of the same pipeline succeeded in an
earlier execution with the same key attributes (of its *evaluated* arguments) within ExpireAfter;
the hit reuses that run's properties (docs "Default cache key attributes by pipeline step type").
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": ("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
                 "Environment", "HyperParameters", "InputDataConfig"),
    "Tuning": ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
}
_TUNING_CHILDREN = ("AlgorithmSpecification", "HyperParameterRanges", "InputDataConfig", "StaticHyperParameters",
                    "TuningObjective")
_ISO = re.compile(r"^P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$",
                  re.IGNORECASE)


def parse_duration(text: Any) -> float:
    """Seconds of an ISO 8601 duration (`P30D`, `PT1H`) or the docs' short forms (`30d`, `T16m`, `30dT5h`)."""
    if not isinstance(text, str):
        raise ValueError(text)
    match = _ISO.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(text)
    years, months, weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((years * 365 + months * 30 + weeks * 7 + days) * 86400 + hours * 3600 + minutes * 60 + seconds)


def cache_key(step_type: str, arguments: dict[str, Any]) -> str | None:
    """The digest of the step's key attributes; None for step types that are never cached."""
    keys = KEY_ATTRIBUTES.get(step_type)
    if keys is None:
        return None
    picked: dict[str, Any] = {key: arguments.get(key) for key in keys}
    if step_type == "Tuning":
        for key in ("TrainingJobDefinition", "TrainingJobDefinitions"):
            value = picked.get(key)
            items = value if isinstance(value, list) else [value] if value else []
            picked[key] = [{k: d.get(k) for k in _TUNING_CHILDREN} for d in items]
    text = json.dumps([step_type, picked], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
