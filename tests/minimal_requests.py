"""The smallest valid request of an operation, built from its botocore input shape: required members
only, each the first of a few plausible values that satisfies the member's pattern, length and enum.
What the declared-resource tests send to every Create the layer derives."""

from __future__ import annotations

import re._parser as sre_parse  # type: ignore[import-not-found]
from functools import cache
from typing import Any

import regex
from botocore.model import Shape

ROLE = "arn:aws:iam::123456789012:role/sm-role"
CANDIDATES = ["lt-{seed}", "lt{seed}", ROLE, "s3://sm-lt-bucket/prefix", "https://example.com/x",
              "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1", "arn:aws:sagemaker:us-east-1:123456789012:x/lt",
              "ml.m5.xlarge", "us-east-1_abcdef", "abcdefghij", "token-{seed}", "1.0.0", "1", "a", "{{}}", "x"]


def _string(shape: Shape, member: str, seed: str) -> str:
    if shape.enum:
        return shape.enum[0]
    meta = shape.metadata
    low, high = meta.get("min", 0), meta.get("max", 1024)
    pattern = meta.get("pattern")
    lowered = member.lower()
    ordered = list(CANDIDATES)
    if "role" in lowered:
        ordered.insert(0, ROLE)
    if "uri" in lowered or "s3" in lowered or "location" in lowered:
        ordered.insert(0, "s3://sm-lt-bucket/prefix")
    if "url" in lowered:
        ordered.insert(0, "https://example.com/x")
    if "image" in lowered:
        ordered.insert(0, "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1")
    for template in ordered:
        value = template.format(seed=seed)
        if low <= len(value) <= high and (pattern is None or regex.fullmatch(pattern, value)):
            return value
    return _from_pattern(pattern, low, high)


@cache
def _from_pattern(pattern: str, low: int, high: int) -> str:
    """The shortest string of `pattern`'s parse tree: first alternatives, fewest repeats, first characters
    (botocore's patterns are Java regexes that Python's parser reads); checked against the pattern."""
    value = _walk(sre_parse.parse(pattern))
    if len(value) < low:
        value += "a" * (low - len(value))
    if not regex.fullmatch(pattern, value):
        raise AssertionError(f"no simple value fits {pattern!r}")
    return value


_CATEGORY = {"CATEGORY_DIGIT": "0", "CATEGORY_WORD": "a", "CATEGORY_NOT_SPACE": "a", "CATEGORY_SPACE": " ",
             "CATEGORY_NOT_DIGIT": "a", "CATEGORY_NOT_WORD": "-"}


def _walk(items: Any) -> str:
    out = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_first_of(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            out.append(_walk(sub) * low)
        elif name == "SUBPATTERN":
            out.append(_walk(arg[-1]))
        elif name == "BRANCH":
            out.append(_walk(arg[1][0]))
        elif name == "CATEGORY":
            out.append(_CATEGORY.get(str(arg), "a"))
    return "".join(out)


def _first_of(items: Any) -> str:
    if items and str(items[0][0]) == "NEGATE":
        return "a" if not any(str(op) == "LITERAL" and arg == ord("a") for op, arg in items[1:]) else "b"
    op, arg = items[0]
    name = str(op)
    if name == "LITERAL":
        return chr(arg)
    if name == "RANGE":
        return chr(arg[0])
    if name == "CATEGORY":
        return _CATEGORY.get(str(arg), "a")
    return "a"


def minimal(shape: Shape, member: str = "", seed: str = "a", depth: int = 0) -> Any:
    kind = shape.type_name
    if kind == "string":
        return _string(shape, member, seed)
    if kind in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if kind in ("float", "double"):
        return float(max(shape.metadata.get("min", 1), 1))
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return 1_700_000_000
    if kind == "blob":
        return b"x"
    if kind == "list":
        count = max(shape.metadata.get("min", 1), 1)
        return [minimal(shape.member, member, seed, depth + 1) for _ in range(count)]
    if kind == "map":
        return {"k": minimal(shape.value, "value", seed, depth + 1)}
    required = list(shape.required_members)
    if not required and depth and shape.members:  # a union or all-optional structure: its first member
        required = [next(iter(shape.members))]
    return {name: minimal(shape.members[name], name, seed, depth + 1) for name in required}
