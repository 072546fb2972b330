"""A tuning job's search space: its HyperParameterRanges, checked as AWS checks them, and turned
into values (a point of the space is a dict name -> value; children get them as strings).

Scaling follows the AWS guide ("Define Hyperparameter Ranges"): Linear samples uniformly, Logarithmic
uniformly in log space (needs MinValue > 0), ReverseLogarithmic uniformly in log(1 - x) (continuous
only, needs 0 <= MinValue < MaxValue < 1); Auto is Linear here (see docs/decisions.md).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

MAX_RANGES = 30  # across the three range lists (API_ParameterRanges)


class SpaceError(ValueError):
    """A range AWS would refuse; the message is the ValidationException's."""


@dataclass(frozen=True)
class Range:
    name: str
    kind: str  # Integer | Continuous | Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    def sample(self, rng: random.Random) -> Any:
        """One value drawn as the scaling says."""
        if self.kind == "Categorical":
            return rng.choice(self.values)
        return self.from_unit(rng.random())

    def from_unit(self, u: float) -> Any:
        """The value at `u` in [0, 1] of this range's scale (what samplers move in)."""
        if self.kind == "Categorical":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        low, high = self.low, self.high
        if self.scaling == "Logarithmic":
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        elif self.scaling == "ReverseLogarithmic":
            value = 1 - math.exp(math.log(1 - low) + u * (math.log(1 - high) - math.log(1 - low)))
        else:
            value = low + u * (high - low)
        if self.kind == "Integer":
            return max(int(low), min(int(high), int(round(value))))
        return max(low, min(high, value))


    def contains(self, value: Any) -> bool:
        if self.kind == "Categorical":
            return value in self.values
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def to_unit(self, value: Any) -> float:
        """The inverse of `from_unit` (numeric ranges): where a stored value lies on the scale."""
        low, high, x = self.low, self.high, float(value)
        if high == low:
            return 0.0
        if self.scaling == "Logarithmic":
            u = (math.log(x) - math.log(low)) / (math.log(high) - math.log(low))
        elif self.scaling == "ReverseLogarithmic":
            u = (math.log(1 - x) - math.log(1 - low)) / (math.log(1 - high) - math.log(1 - low))
        else:
            u = (x - low) / (high - low)
        return max(0.0, min(1.0, u))


def text(value: Any) -> str:
    """A tuned value as the child's HyperParameters string."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _number(raw: str, name: str, field: str, integer: bool) -> float:
    try:
        return float(int(raw)) if integer else float(raw)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise SpaceError(f"The {field} '{raw}' for hyperparameter '{name}' is not {kind}.") from None


def parse(ranges: dict[str, Any] | None, static: dict[str, str] | None = None) -> list[Range]:
    """The ranges of one definition, or SpaceError with AWS's reason."""
    ranges = ranges or {}
    out: list[Range] = []
    for key, kind in (("IntegerParameterRanges", "Integer"), ("ContinuousParameterRanges", "Continuous")):
        for item in ranges.get(key) or []:
            name, scaling = item["Name"], item.get("ScalingType") or "Auto"
            low = _number(item["MinValue"], name, "MinValue", kind == "Integer")
            high = _number(item["MaxValue"], name, "MaxValue", kind == "Integer")
            if not (math.isfinite(low) and math.isfinite(high)):
                raise SpaceError(f"The range of hyperparameter '{name}' must be finite.")
            if low > high:
                raise SpaceError(f"The MinValue of hyperparameter '{name}' must be less than or equal to its "
                                 "MaxValue.")
            if scaling == "Logarithmic" and low <= 0:
                raise SpaceError(f"Hyperparameter '{name}' uses Logarithmic scaling, which requires MinValue "
                                 "greater than 0.")
            if scaling == "ReverseLogarithmic":
                if kind == "Integer":
                    raise SpaceError(f"ReverseLogarithmic scaling is not supported for integer hyperparameter "
                                     f"'{name}'.")
                if not (0 <= low < high < 1):
                    raise SpaceError(f"Hyperparameter '{name}' uses ReverseLogarithmic scaling, which requires "
                                     "0 <= MinValue < MaxValue < 1.")
            out.append(Range(name, kind, low, high, scaling))
    for item in ranges.get("CategoricalParameterRanges") or []:
        values = tuple(item["Values"])
        if len(set(values)) != len(values):
            raise SpaceError(f"The values of categorical hyperparameter '{item['Name']}' must be unique.")
        out.append(Range(item["Name"], "Categorical", values=values))
    if ranges.get("AutoParameters"):
        raise SpaceError("AutoParameters (Autotune) is not supported by sagemaker-emulator; give explicit ranges.")
    if not out:
        raise SpaceError("The tuning job must specify at least one hyperparameter range.")
    if len(out) > MAX_RANGES:
        raise SpaceError(f"The tuning job can tune at most {MAX_RANGES} hyperparameters; it has {len(out)}.")
    names = [r.name for r in out]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SpaceError(f"Hyperparameters {duplicated} appear in more than one range.")
    both = sorted(set(names) & set(static or {}))
    if both:
        raise SpaceError(f"Hyperparameters {both} cannot be both static and tunable.")
    return out


def grid_points(space: list[Range]) -> list[dict[str, Any]]:
    """Every combination, in a stable order: Grid requires categorical ranges only."""
    if any(r.kind != "Categorical" for r in space):
        raise SpaceError("The Grid strategy supports only CategoricalParameterRanges.")
    names = [r.name for r in space]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*[r.values for r in space])]


def grid_size(space: list[Range]) -> int:
    return math.prod(len(r.values) for r in space)
