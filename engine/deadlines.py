"""Deadline expressions: the text written in definitions ("4 hours", "-30 minutes") and when it falls due.

Plain calendar durations are supported now; business-calendar expressions (working days and hours,
month ends, "next working day 10:00") arrive with the business calendar.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_DURATION = re.compile(r"^\s*(?P<sign>[+-]?)\s*(?P<n>\d+)\s*(?P<unit>minute|hour|day|week)s?\s*$")
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
          "week": timedelta(weeks=1)}


@dataclass(frozen=True)
class Duration:
    delta: timedelta

    def after(self, start: datetime) -> datetime:
        return start + self.delta


def parse(expr: str) -> Duration:
    """Parse a deadline expression; ValueError (with the reason) when it is not one."""
    if not isinstance(expr, str):
        raise ValueError("must be text")
    if expr.strip() in ("0", "at deadline"):
        return Duration(timedelta(0))
    m = _DURATION.match(expr)
    if not m:
        raise ValueError("not understood (e.g. '4 hours', '-30 minutes', '2 days')")
    delta = int(m["n"]) * _UNITS[m["unit"]]
    return Duration(-delta if m["sign"] == "-" else delta)
