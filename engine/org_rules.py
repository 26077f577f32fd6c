"""What logins, emails, names and unit times may be: the one set of rules for people and units.

engine.org (add_user, add_unit) and engine.admin (the updates) call these, so the API, the UI and the CLI all
refuse the same input with the same InvalidInput (a 422 naming the field). Names end up in email headers and
subjects, so control characters (CR/LF above all) are refused; logins end up in URLs, lockout counters and
audit trails, so they are one plain spelling: lower-case ASCII.
"""
import re
import unicodedata
from datetime import time

from marshmallow import ValidationError, validate

from engine.errors import InvalidInput

LOGIN_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_LOGIN = re.compile(LOGIN_PATTERN)
_CODE = re.compile(CODE_PATTERN)
_EMAIL = validate.Email()
# Cc: C0/C1 controls (CR, LF, TAB, ESC…); Cf: invisible format characters (bidi overrides, zero-width);
# Cs/Co/Cn: surrogates, private use, unassigned; Zl/Zp: the Unicode line and paragraph separators.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def unprintable(text: str) -> bool:
    """True when `text` holds a character that has no place in a one-line name."""
    return any(unicodedata.category(ch) in _UNPRINTABLE for ch in text)


def one_line(text: str) -> str:
    """`text` with each run of unprintable characters (a CR/LF pair, …) replaced by one space: for mail headers
    and subjects built from stored data."""
    out, after_bad = [], False
    for ch in str(text):
        bad = unicodedata.category(ch) in _UNPRINTABLE
        if not bad or not after_bad:
            out.append(" " if bad else ch)
        after_bad = bad
    return "".join(out)


def check_login(login) -> str:
    """`login`, when it is 1–64 characters of lower-case ASCII letters, digits, '.', '_' or '-' (starting with a
    letter or digit); InvalidInput(field="login") otherwise."""
    if not isinstance(login, str) or not _LOGIN.match(login):
        raise InvalidInput(f"login {login!r} must be 1-64 lower-case ASCII letters, digits, '.', '_' or '-', "
                           f"starting with a letter or digit", field="login")
    return login


def check_code(code) -> str:
    """An org unit code: 1–64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidInput(f"code {code!r} must be 1-64 ASCII letters, digits, '.', '_' or '-', starting with a "
                           f"letter or digit", field="code")
    return code


def check_name(name, field: str = "name") -> str:
    """A person's or unit's name: 1–200 characters, not only spaces, no control characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput(f"{field} must be 1-200 characters", field=field)
    if unprintable(name):
        raise InvalidInput(f"{field} must not contain control characters (line breaks, tabs, invisible marks)",
                           field=field)
    return name


def check_email(email) -> str:
    """A single valid email address (no display name, no line breaks), at most 254 characters."""
    if not isinstance(email, str) or len(email) > 254 or unprintable(email):
        raise InvalidInput(f"{email!r} is not a valid email address", field="email")
    try:
        _EMAIL(email)
    except ValidationError:
        raise InvalidInput(f"{email!r} is not a valid email address", field="email") from None
    return email


def check_time_of_day(value, field: str) -> time | None:
    """A unit's opening or closing time: local to the unit's timezone, so it may not carry a UTC offset (the
    database column has none; an offset would be dropped silently or compared with a naive time)."""
    if value is not None and value.tzinfo is not None:
        raise InvalidInput(f"{field} is a time of day in the unit's timezone: give it without an offset "
                           f"(e.g. 18:00:00)", field=field)
    return value


def check_hours(opens_at: time, closes_at: time) -> None:
    """A unit opens before it closes."""
    if opens_at >= closes_at:
        raise InvalidInput("a unit must open before it closes", field="closes_at")
