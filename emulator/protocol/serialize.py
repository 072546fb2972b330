"""Serialise handler results through the operation's output shape.

Handlers return plain dicts (timestamps as epoch floats or datetimes); only members the output
shape declares are emitted, so the wire never carries internal fields, and timestamps go out as
epoch seconds with millisecond precision, as SageMaker sends them.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from botocore.model import Shape


def _timestamp(value: Any) -> float | str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.timestamp()
    if isinstance(value, (int, float)):
        return round(float(value), 3)
    return value


def to_wire(shape: Shape | None, value: Any) -> Any:
    """Convert `value` to JSON-ready data following `shape`; unknown members are dropped."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[name] = to_wire(member, item)
        return out
    if kind == "list":
        return [to_wire(shape.member, item) for item in value]
    if kind == "map":
        return {key: to_wire(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else value
        return base64.b64encode(raw).decode()
    return value
