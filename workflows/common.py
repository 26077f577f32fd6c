"""Small pieces the workflow definitions share: bilingual titles, the empty payload, month fields, people."""
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from engine import dates, org
from engine.db import db
from engine.org import OrgUnit, User


def t(zh: str, en: str) -> dict:
    """A title in both languages."""
    return {"zh": zh, "en": en}


class Empty(Schema):
    """An action that carries no data (approve, submit, …)."""


class Month(fields.String):
    """A month as "YYYY-MM"."""

    def __init__(self, **kwargs):
        # the pattern below is the real check; the length puts the bound into the JSON Schema clients read
        super().__init__(**kwargs)
        self.validators = [*self.validators, validate.Length(equal=7)]

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
            raise ValidationError("Must be a month as YYYY-MM.")
        return dates.InSpan()(text)


def user_at(login: str, unit: OrgUnit) -> User | None:
    """The active user `login` if they work at `unit`: a role held at it, above it or below it; else None."""
    user = db.session.scalar(sa.select(User).where(User.login == login, User.active))
    if user is None or not any(u.contains(unit) or unit.contains(u) for _, u in org.roles_of(user)):
        return None
    return user


def people_errors(field: str, logins: list[str], unit: OrgUnit) -> dict:
    """{field: [message]} for logins that are not active people of `unit`; empty when all are."""
    unknown = [login for login in logins if user_at(login, unit) is None]
    return {field: [f"Not someone at this unit: {', '.join(unknown)}."]} if unknown else {}


def local_today(now: datetime, unit: OrgUnit) -> date:
    """Today's date where `unit` is (a month or a day is the store's, not UTC's)."""
    return now.astimezone(ZoneInfo(unit.timezone)).date()


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def month_window_errors(field: str, month: str, now: datetime, unit: OrgUnit, back: int, ahead: int) -> dict:
    """{field: [message]} unless the month "YYYY-MM" lies from `back` months before the unit's current month to
    `ahead` months after it; empty when it does."""
    today = local_today(now, unit)
    this, given = _month_index(today.year, today.month), _month_index(*map(int, month.split("-")))
    if given < this - back:
        return {field: [f"Too far in the past: at most {back} months back."]}
    if given > this + ahead:
        return {field: [f"Too far ahead: at most {ahead} months ahead."]}
    return {}


def day_window_errors(field: str, day: date, now: datetime, unit: OrgUnit, back: timedelta,
                      ahead: timedelta) -> dict:
    """{field: [message]} unless `day` (a date, or an aware datetime) lies within `back` before and `ahead` after
    now at the unit; empty when it does."""
    reference = now if isinstance(day, datetime) else local_today(now, unit)
    if day < reference - back:
        return {field: [f"Too far in the past: at most {back.days} days back."]}
    if day > reference + ahead:
        return {field: [f"Too far ahead: at most {ahead.days} days ahead."]}
    return {}
