"""When a monitoring schedule runs, and which captured data each run analyses.

Model Monitor accepts a narrow form of AWS's six-field cron (`cron(Minutes Hours Day-of-month Month
Day-of-week Year)`): runs start on the hour, every hour, at one hour of the day, or every N hours
from a starting hour (what the SDK's CronExpressionGenerator writes: `cron(0 * ? * * *)`,
`cron(0 8 ? * * *)`, `cron(0 0/6 ? * * *)`), or `NOW` for one run at once, whose window is the
schedule's DataAnalysisStartTime/EndTime (negative ISO-8601 durations such as `-PT1H`, at most 24
hours apart). A run's window is the hour before its scheduled time unless offsets say otherwise.
AWS starts runs up to 20 minutes after the hour; here they start on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sagemaker_emulator.protocol.errors import ValidationError

NOW = "NOW"
_CRON = re.compile(r"^cron\((?P<body>[^)]*)\)$")
_OFFSET = re.compile(r"^-P(?!$)(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")
MAX_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Schedule:
    """A parsed ScheduleExpression: `hours` the hours of the day it runs at (None for NOW)."""

    expression: str
    hours: frozenset[int] | None

    @property
    def once(self) -> bool:
        return self.hours is None

    def next_after(self, moment: float) -> float:
        """The first run time strictly after `moment` (epoch seconds), on the hour."""
        assert self.hours is not None
        start = datetime.fromtimestamp(moment, timezone.utc).replace(minute=0, second=0, microsecond=0)
        for step in range(1, 49):
            candidate = start + timedelta(hours=step)
            if candidate.hour in self.hours:
                return candidate.timestamp()
        raise AssertionError("a parsed schedule runs at least once a day")


def _invalid(expression: str, why: str) -> ValidationError:
    return ValidationError(f"Invalid ScheduleExpression {expression!r}: {why}. Model Monitor accepts NOW, "
                           "cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily) or cron(0 H/N ? * * *).")


def _hours(field: str, expression: str) -> frozenset[int]:
    if field == "*":
        return frozenset(range(24))
    match = re.fullmatch(r"(\d{1,2})(?:-(\d{1,2}))?(?:/(\d{1,2}))?", field)
    if match is None:
        raise _invalid(expression, f"the hours field {field!r} is not *, H, H-H or H/N")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else (23 if match.group(3) else first)
    step = int(match.group(3)) if match.group(3) else 1
    if not (0 <= first <= last <= 23) or not 1 <= step <= 24:
        raise _invalid(expression, f"the hours field {field!r} is out of range (hours 0-23, every 1-24 hours)")
    return frozenset(range(first, last + 1, step))


def parse(expression: str) -> Schedule:
    """The Schedule of a ScheduleExpression, or ValidationException for a form Model Monitor refuses."""
    text = expression.strip()
    if text == NOW:
        return Schedule(NOW, None)
    match = _CRON.match(text)
    if match is None:
        raise _invalid(expression, "it is neither NOW nor cron(...)")
    fields = match.group("body").split()
    if len(fields) != 6:
        raise _invalid(expression, f"a cron expression has 6 fields, not {len(fields)}")
    minutes, hours, day, month, weekday, year = fields
    if minutes not in ("0", "00"):
        raise _invalid(expression, "monitoring runs start on the hour (minutes must be 0)")
    if day not in ("*", "?") or weekday not in ("*", "?") or month != "*" or year != "*":
        raise _invalid(expression, "monitoring runs hourly or daily (day, month, weekday and year must be * or ?)")
    return Schedule(text, _hours(hours, expression))


def offset(value: str, member: str) -> timedelta:
    """A negative ISO-8601 duration (`-PT1H`, `-P1DT2H`, `-PT0H`) as a timedelta (<= 0)."""
    match = _OFFSET.match(value.strip())
    if match is None:
        raise ValidationError(f"{member} {value!r} is not a negative ISO 8601 duration such as -PT1H.")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return -timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0),
                      seconds=parts.get("s", 0))


def check_config(config: dict) -> Schedule:
    """Validate a ScheduleConfig as CreateMonitoringSchedule/UpdateMonitoringSchedule do."""
    schedule = parse(config["ScheduleExpression"])
    start, end = config.get("DataAnalysisStartTime"), config.get("DataAnalysisEndTime")
    if schedule.once:
        if not start or not end:
            raise ValidationError("DataAnalysisStartTime and DataAnalysisEndTime are required when the "
                                  "ScheduleExpression is NOW.")
    elif start or end:
        raise ValidationError("DataAnalysisStartTime and DataAnalysisEndTime are only valid when the "
                              "ScheduleExpression is NOW.")
    if start and end:
        begin, finish = offset(start, "DataAnalysisStartTime"), offset(end, "DataAnalysisEndTime")
        if begin >= finish:
            raise ValidationError("DataAnalysisStartTime must be before DataAnalysisEndTime.")
        if finish - begin > MAX_WINDOW:
            raise ValidationError("DataAnalysisStartTime and DataAnalysisEndTime can be at most 24 hours apart.")
    return schedule


def window(scheduled: float, start: str | None, end: str | None) -> tuple[float, float]:
    """The [start, end) epoch seconds a run scheduled at `scheduled` analyses: the offsets from the
    scheduled time, or the hour before it."""
    begin = offset(start, "StartTimeOffset") if start else -timedelta(hours=1)
    finish = offset(end, "EndTimeOffset") if end else timedelta(0)
    return scheduled + begin.total_seconds(), scheduled + finish.total_seconds()


def iso(moment: float) -> str:
    """The form the analyzer's start_time/end_time variables take (ISO-8601, UTC, seconds)."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
