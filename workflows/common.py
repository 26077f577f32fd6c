"""Small pieces the workflow definitions share: bilingual titles, the empty payload, month fields, people."""
import re

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields

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
