"""The span of dates Signoff accepts anywhere: years 2000 to 2100.

A generic bound, not a business rule (workflows add their own, e.g. "this month or later"): it keeps every date
far enough from Python's year 1 and year 9999 that deadline arithmetic (a month later, the next working day, a
timezone shift) cannot overflow, and a typo such as 0202 or 20266 is refused instead of stored.
"""
from datetime import date, datetime

from marshmallow import ValidationError, validate

from engine.errors import InvalidInput

MIN_YEAR, MAX_YEAR = 2000, 2100
MESSAGE = f"Must be a date in the years {MIN_YEAR} to {MAX_YEAR}."


def in_span(value: date | datetime) -> bool:
    """True when `value` (a date or datetime) falls in the accepted years."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def check(value: date | datetime, field: str) -> None:
    """Raise InvalidInput (422, naming `field`) when `value` is outside the accepted years."""
    if not in_span(value):
        raise InvalidInput(MESSAGE, field=field)


def check_year(year: int, field: str) -> None:
    """Raise InvalidInput when `year` (e.g. of a YYYY-MM month) is outside the accepted years."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(MESSAGE, field=field)


class InSpan(validate.Validator):
    """Marshmallow validator for Date, DateTime and YYYY-MM fields: the value lies in the accepted years."""

    def __call__(self, value):
        year = int(value[:4]) if isinstance(value, str) else value.year
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValidationError(MESSAGE)
        return value
