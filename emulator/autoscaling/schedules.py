"""Scheduled actions' Schedule: `at(yyyy-mm-ddThh:mm:ss)`, `rate(N minute|minutes|hour|hours|day|days)` and
six-field `cron(Minutes Hours Day-of-month Month Day-of-week Year)` with `*`, `?`, lists, ranges,
steps and the names JAN-DEC / SUN-SAT, in the action's Timezone (default UTC), as Application Auto
Scaling documents them. `L`, `W` and `#` are refused with a ValidationException.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sagemaker_emulator.protocol.errors import ValidationError

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\(([^)]*)\)$")
MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}  # cron's 1 = Sunday
FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (1, 7, DAYS), (1970, 2199, {}))
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _invalid(schedule: str) -> ValidationError:
    return ValidationError(f"Schedule {schedule!r} is not valid: use at(yyyy-mm-ddThh:mm:ss), rate(value unit) or "
                           "cron(Minutes Hours Day-of-month Month Day-of-week Year).")


def _values(text: str, low: int, high: int, names: dict[str, int], schedule: str) -> set[int] | None:
    """The values one cron field allows (None: any)."""
    if text in ("*", "?"):
        return None
    out: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|[A-Z0-9]+)(?:-([A-Z0-9]+))?(?:/(\d+))?", part.upper())
        if match is None:
            raise _invalid(schedule)

        def number(token: str) -> int:
            value = names.get(token) if token in names else (int(token) if token.isdigit() else None)
            if value is None or not low <= value <= high:
                raise _invalid(schedule)
            return value
        start = low if match.group(1) == "*" else number(match.group(1))
        end = number(match.group(2)) if match.group(2) else (high if match.group(3) or match.group(1) == "*"
                                                             else start)
        out.update(range(start, end + 1, int(match.group(3) or 1)))
    return out


def check(schedule: str) -> None:
    """ValidationException unless `schedule` is one of the three forms."""
    text = schedule.strip()
    if _AT.match(text):
        datetime.strptime(_AT.match(text).group(1), "%Y-%m-%dT%H:%M:%S")  # type: ignore[union-attr]
        return
    if _RATE.match(text):
        if int(_RATE.match(text).group(1)) < 1:  # type: ignore[union-attr]
            raise _invalid(schedule)
        return
    cron = _CRON.match(text)
    fields = cron.group(1).split() if cron else []
    if len(fields) != 6:
        raise _invalid(schedule)
    for value, (low, high, names) in zip(fields, FIELDS, strict=True):
        _values(value, low, high, names, schedule)


def fires(action: dict[str, Any], after: float, until: float) -> bool:
    """Whether the action's schedule has a run in (after, until], within its StartTime/EndTime."""
    schedule = action["Schedule"].strip()
    zone = ZoneInfo(action.get("Timezone") or "UTC")
    start, end = action.get("StartTime"), action.get("EndTime")
    after = max(after, float(start) - 1e-6) if start else after
    until = min(until, float(end)) if end else until
    if until <= after:
        return False
    if (at := _AT.match(schedule)) is not None:
        moment = datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=zone).timestamp()
        return after < moment <= until
    if (rate := _RATE.match(schedule)) is not None:
        interval = int(rate.group(1)) * SECONDS[rate.group(2).rstrip("s")]
        anchor = float(start or action["CreationTime"])
        return int((until - anchor) // interval) > int((after - anchor) // interval) and until >= anchor + interval
    fields = _CRON.match(schedule).group(1).split()  # type: ignore[union-attr]
    allowed = [_values(v, lo, hi, names, schedule) for v, (lo, hi, names) in zip(fields, FIELDS, strict=True)]
    minute = datetime.fromtimestamp(after, zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    last = datetime.fromtimestamp(until, zone)
    for _ in range(24 * 60):  # a tick spans minutes, never a day
        if minute > last:
            return False
        values = (minute.minute, minute.hour, minute.day, minute.month, (minute.isoweekday() % 7) + 1, minute.year)
        if all(a is None or v in a for a, v in zip(allowed, values, strict=True)):
            return True
        minute += timedelta(minutes=1)
    return False


def utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, timezone.utc)
