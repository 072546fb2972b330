"""Parse and validate a request document against a botocore input shape.

botocore checks only `required`, types and `min` on the client side; the service enforces `max`,
`pattern` and `enum`. We enforce all of them, server side, with SageMaker's (Coral) wording:

    1 validation error detected: Value 'my_job' at 'trainingJobName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

Parsing and validation are one walk: wrong JSON types are a SerializationException (what awsJson
services answer), constraint failures are collected and raised together as a ValidationException.
Members the shape does not know are dropped, so nothing unmodelled reaches storage.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from functools import lru_cache
from typing import Any

import regex
from botocore.model import Shape

from .errors import SerializationError, ValidationError
from .service import camel

_MAX_REPORTED = 10


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> regex.Pattern | None:
    """Java-style patterns (\\p{L}, possessive quantifiers) need the `regex` module, not `re`."""
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


def _java_repr(value: Any) -> str:
    """How Coral prints the offending value: lists as [a, b], maps as {k=v}."""
    if isinstance(value, list):
        return "[" + ", ".join(_java_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_error(path: str, expected: str, value: Any) -> SerializationError:
    found = type(value).__name__
    where = path or "request body"
    return SerializationError(f"Expected {expected} at '{where}' but found a JSON {found}.")


def _parse_timestamp(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise _type_error(path, "a timestamp", value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise _type_error(path, "a finite timestamp", value)
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SerializationError(f"Value '{value}' at '{path}' is not a valid timestamp.") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    raise _type_error(path, "a timestamp", value)


class _Walker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{_java_repr(value)}'"
        self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def length(self, value: Any, size: int, shape: Shape, path: str, noun: str = "length") -> None:
        meta = shape.metadata
        if "min" in meta and size < meta["min"]:
            self.fail(value, path, f"Member must have {noun} greater than or equal to {meta['min']}")
        if "max" in meta and size > meta["max"]:
            self.fail(value, path, f"Member must have {noun} less than or equal to {meta['max']}")

    def walk(self, shape: Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                raise _type_error(path, "a list", value)
            self.length(value, len(value), shape, path)
            return [self.walk(shape.member, item, f"{path}.{i}.member") for i, item in enumerate(value, 1)]
        if kind == "map":
            if not isinstance(value, dict):
                raise _type_error(path, "a map", value)
            self.length(value, len(value), shape, path)
            out = {}
            for key, item in value.items():
                out[self.walk(shape.key, key, f"{path}.key")] = self.walk(shape.value, item, f"{path}.{key}")
            return out
        if kind == "string":
            if not isinstance(value, str):
                raise _type_error(path, "a string", value)
            self.string(shape, value, path)
            return value
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    isinstance(value, float) and not value.is_integer()):
                raise _type_error(path, "an integer", value)
            value = int(value)
            self.number(shape, value, path)
            return value
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _type_error(path, "a number", value)
            self.number(shape, value, path)
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _type_error(path, "a boolean", value)
            return value
        if kind == "timestamp":
            return _parse_timestamp(value, path)
        if kind == "blob":
            if not isinstance(value, str):
                raise _type_error(path, "a base64 string", value)
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise SerializationError(f"Value at '{path}' is not valid base64.") from exc
            self.length(value, len(raw), shape, path)
            return raw
        return value

    def structure(self, shape: Shape, value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise _type_error(path, "a structure", value)
        out: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(None, _join(path, camel(name)), "Member must not be null")
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[name] = self.walk(member, item, _join(path, camel(name)))
        if getattr(shape, "is_tagged_union", False) and len(out) != 1:  # a union sets exactly one member
            self.errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have exactly one "
                               f"of its members set ({', '.join(shape.members)}); {len(out)} are set")
        return out

    def string(self, shape: Shape, value: str, path: str) -> None:
        self.length(value, len(value), shape, path)
        if shape.enum and value not in shape.enum:
            self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and value.startswith("file://") and "s3)://" in pattern:
            return  # local data, as the SDK's local mode allows (docs/decisions.md)
        if pattern:
            compiled = _compiled(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                self.fail(value, path, f"Member must satisfy regular expression pattern: {pattern}")

    def number(self, shape: Shape, value: float, path: str) -> None:
        meta = shape.metadata
        if "min" in meta and value < meta["min"]:
            self.fail(value, path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            self.fail(value, path, f"Member must have value less than or equal to {meta['max']}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def parse_and_validate(shape: Shape | None, document: Any) -> dict:
    """Return the request as plain Python values (timestamps as epoch floats, blobs as bytes).

    Raises SerializationError for wrong JSON types and ValidationError listing every constraint
    failure, as SageMaker does.
    """
    if shape is None:
        return {}
    walker = _Walker()
    parsed = walker.structure(shape, document, "")
    if walker.errors:
        count = len(walker.errors)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(walker.errors[:_MAX_REPORTED])
        raise ValidationError(f"{count} validation {noun} detected: {shown}")
    return parsed
