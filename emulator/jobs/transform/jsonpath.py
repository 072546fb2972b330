"""Batch transform `DataProcessing` (spec §4.3): the JSONPath subset, joins, and CSV/JSON records. Pure.

Supported JSONPath: `$`, `.name`, `.*`/`[*]`, `['a','b']` (a single name selects the value, several
build an object of those members), `[i,j]` (negative allowed; one index selects the element, several
a list), `[start:end]`, and unions mixing indices and slices (`$[0,5:]`). CSV rows are JSON arrays of
their fields. `JoinSource: Input` joins the *original* input record (not the filtered one) with the
output: CSV -> input columns then output columns; JSON object -> output added as `SageMakerOutput`;
any other JSON -> `{"SageMakerInput": ..., "SageMakerOutput": ...}`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CSV, JSON, JSONLINES = "csv", "json", "jsonlines"


class FilterError(Exception):
    """A filter does not parse, or does not apply to a record; the message says which and why."""


# -- JSONPath --------------------------------------------------------------------------------------
Step = Callable[[Any], Any]
_TOKEN = re.compile(r"""\.\*|\.([A-Za-z_][\w-]*)|\[([^\]]*)\]""")
_ITEM = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(\*)|(-?\d*)\s*:\s*(-?\d*)|(-?\d+))\s*$""")


@dataclass(frozen=True)
class JsonPath:
    expression: str
    steps: tuple[Step, ...]

    @property
    def identity(self) -> bool:
        return not self.steps

    def apply(self, value: Any) -> Any:
        for step in self.steps:
            value = step(value)
        return value


def parse(expression: str | None) -> JsonPath:
    """Parse a filter expression; `FilterError` for anything outside the supported subset."""
    text = (expression or "$").strip()
    if not text.startswith("$"):
        raise FilterError(f"JSONPath expression {expression!r} must start with '$'")
    steps: list[Step] = []
    position = 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(f"Unsupported JSONPath expression {expression!r} at position {position}: "
                              f"{text[position:]!r}")
        if match.group(0) == ".*":
            steps.append(_wildcard)
        elif match.group(1) is not None:
            steps.append(_field(match.group(1)))
        else:
            steps.append(_bracket(match.group(2), expression or ""))
        position = match.end()
    return JsonPath(text, tuple(steps))


def _split_items(inner: str) -> list[str]:
    items, current, quote = [], "", None
    for char in inner:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            current += char
        elif char == ",":
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return items


def _bracket(inner: str, expression: str) -> Step:
    keys: list[str] = []
    indices: list[int | slice] = []
    for raw in _split_items(inner):
        match = _ITEM.match(raw)
        if match is None:
            raise FilterError(f"Unsupported JSONPath selector [{inner}] in {expression!r}")
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        if quoted is not None:
            keys.append(quoted.replace("\\'", "'").replace('\\"', '"'))
        elif match.group(3):
            if len(_split_items(inner)) > 1:
                raise FilterError(f"'*' cannot be combined with other selectors in {expression!r}")
            return _wildcard
        elif match.group(6) is not None:
            indices.append(int(match.group(6)))
        else:
            start, end = match.group(4), match.group(5)
            indices.append(slice(int(start) if start else None, int(end) if end else None))
    if keys and indices:
        raise FilterError(f"JSONPath selector [{inner}] in {expression!r} mixes names and indices")
    if keys:
        return _field(keys[0]) if len(keys) == 1 else _fields(keys)
    if len(indices) == 1 and isinstance(indices[0], int):
        return _index(indices[0])
    return _indices(indices)


def _field(name: str) -> Step:
    def step(value: Any) -> Any:
        if not isinstance(value, dict):
            raise FilterError(f"cannot select member '{name}' of {_kind(value)}")
        if name not in value:
            raise FilterError(f"the record has no member '{name}'")
        return value[name]
    return step


def _fields(names: list[str]) -> Step:
    def step(value: Any) -> Any:
        if not isinstance(value, dict):
            raise FilterError(f"cannot select members {names} of {_kind(value)}")
        return {name: value[name] for name in names if name in value}
    return step


def _index(index: int) -> Step:
    def step(value: Any) -> Any:
        if not isinstance(value, list):
            raise FilterError(f"cannot select index {index} of {_kind(value)}")
        if not -len(value) <= index < len(value):
            raise FilterError(f"index {index} is out of range for a record of {len(value)} element(s)")
        return value[index]
    return step


def _indices(selectors: list[int | slice]) -> Step:
    def step(value: Any) -> Any:
        if not isinstance(value, list):
            raise FilterError(f"cannot select indices of {_kind(value)}")
        out: list[Any] = []
        for selector in selectors:
            if isinstance(selector, slice):
                out.extend(value[selector])
            elif -len(value) <= selector < len(value):
                out.append(value[selector])
        return out
    return step


def _wildcard(value: Any) -> Any:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    raise FilterError(f"cannot apply '*' to {_kind(value)}")


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return kinds.get(type(value), f"a {type(value).__name__}")


# -- record formats --------------------------------------------------------------------------------
def format_of(content_type: str | None) -> str | None:
    """csv, json, jsonlines from a MIME type (parameters ignored); None for anything else."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base.endswith("csv"):
        return CSV
    if "jsonlines" in base or base.endswith("jsonl") or base.endswith("x-ndjson"):
        return JSONLINES
    if base.endswith("json"):
        return JSON
    return None


def parse_unit(text: str, fmt: str) -> Any:
    if fmt == CSV:
        rows = list(csv.reader([text]))
        return rows[0] if rows else []
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FilterError(f"not valid JSON: {exc}: {text[:100]!r}") from None


def serialize_unit(value: Any, fmt: str) -> str:
    if fmt == CSV:
        row = value if isinstance(value, list) else [value]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(
            [json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list)) else v for v in row])
        return out.getvalue()
    return json.dumps(value, separators=(",", ":"))


def join(input_value: Any, output_value: Any, fmt: str) -> Any:
    """JoinSource Input (spec §4.3)."""
    if fmt == CSV:
        inputs = input_value if isinstance(input_value, list) else [input_value]
        outputs = output_value if isinstance(output_value, list) else [output_value]
        return inputs + outputs
    if isinstance(input_value, dict):
        return {**input_value, "SageMakerOutput": output_value}
    return {"SageMakerInput": input_value, "SageMakerOutput": output_value}


# -- per-request processing ------------------------------------------------------------------------
def is_active(config: dict[str, Any] | None) -> bool:
    config = config or {}
    return (config.get("InputFilter") or "$").strip() != "$" or (config.get("OutputFilter") or "$").strip() != "$" \
        or config.get("JoinSource", "None") == "Input"


class DataProcessor:
    """Applies InputFilter to the records of a request and JoinSource/OutputFilter to its reply.

    Records are line-based for CSV and JSON Lines (and for JSON split by Line): each line is one
    record, and the reply must have one line per record. JSON not split by line is one record.
    """

    def __init__(self, config: dict[str, Any] | None, content_type: str | None, accept: str | None,
                 split_type: str) -> None:
        config = config or {}
        self.active = is_active(config)
        self.input_filter = parse(config.get("InputFilter"))
        self.output_filter = parse(config.get("OutputFilter"))
        self.join_input = config.get("JoinSource", "None") == "Input"
        self.input_format = format_of(content_type)
        self.output_format = format_of(accept)
        if self.active and self.input_format is None:
            raise FilterError(f"DataProcessing needs ContentType text/csv, application/json or "
                              f"application/jsonlines, not {content_type!r}")
        self.line_based = self.input_format in (CSV, JSONLINES) or split_type == "Line"

    def units(self, records: list[bytes]) -> list[str]:
        """The records of one request as text units (lines, or whole JSON documents)."""
        units: list[str] = []
        for record in records:
            text = record.decode("utf-8")
            if self.line_based:
                units.extend(line for line in text.splitlines() if line.strip())
            else:
                units.append(text)
        return units

    def request(self, units: list[str]) -> bytes:
        fmt = self.input_format or JSON
        if self.input_filter.identity:
            filtered = units
        else:
            filtered = [serialize_unit(self.input_filter.apply(parse_unit(u, fmt)), fmt) for u in units]
        if self.line_based:
            return ("\n".join(filtered) + "\n").encode()
        return filtered[0].encode() if filtered else b""

    def response(self, units: list[str], body: bytes, reply_type: str | None) -> bytes:
        """The reply for `units` after JoinSource and OutputFilter, one line per record."""
        if not self.join_input and self.output_filter.identity:
            return body
        in_fmt = self.input_format or JSON
        out_fmt = self.output_format or format_of(reply_type) or in_fmt
        text = body.decode("utf-8")
        if len(units) == 1:
            outputs = [text.strip()]
        else:
            outputs = [line for line in text.splitlines() if line.strip()]
            if len(outputs) != len(units):
                raise FilterError(f"the container returned {len(outputs)} line(s) for {len(units)} record(s), "
                                  "so outputs cannot be matched with their input records")
        results = []
        for unit, output in zip(units, outputs, strict=True):
            value = parse_unit(output, out_fmt)
            if self.join_input:
                value = join(parse_unit(unit, in_fmt), value, in_fmt)
                fmt = in_fmt
            else:
                fmt = out_fmt
            results.append(serialize_unit(self.output_filter.apply(value), fmt))
        return "\n".join(results).encode()
