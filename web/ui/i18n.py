"""Language and formatting: zh by default; the user's own setting, then Accept-Language. Titles of workflows,
states and triggers come from the definitions; validation messages from the engine and marshmallow are
translated here (they are English in the engine)."""
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import request
from flask_babel import format_datetime, format_decimal, get_locale, lazy_gettext
from flask_babel import gettext as _
from flask_login import current_user

from web.api.i18n import select_locale as api_locale

LANGUAGES = ("zh", "en")


def select_locale() -> str:
    """The API keeps its own rule; pages use the signed-in user's setting, then Accept-Language, then zh."""
    if request and request.path.startswith("/api/"):
        return api_locale()
    if current_user and current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    if request:
        best = request.accept_languages.best_match(LANGUAGES)
        if best:
            return best
    return "zh"


def lang() -> str:
    """The current page language, "zh" or "en"."""
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh"


def title(titles: dict | None, fallback: str = "") -> str:
    """A definition's bilingual title in the page language."""
    if not titles:
        return fallback
    return titles.get(lang()) or titles.get("zh") or fallback


def when(value: datetime | None, fmt: str = "medium") -> str:
    return format_datetime(value, fmt) if value else ""


def when_text(text: str | None, fmt: str = "short") -> str:
    """An ISO date-time stored in instance data, formatted for the page (as given when it does not parse)."""
    try:
        return when(datetime.fromisoformat(str(text)), fmt) if text else ""
    except ValueError:
        return str(text)


def amount(value) -> str:
    try:
        return format_decimal(Decimal(str(value)), format="#,##0.00")
    except (InvalidOperation, ValueError):
        return str(value)


def duration(seconds: float) -> str:
    """"3 days 4 hours" / "3天4小时": how overdue, how long until due."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return _("%(d)s d %(h)s h", d=days, h=hours)
    if hours:
        return _("%(h)s h %(m)s min", h=hours, m=minutes)
    return _("%(m)s min", m=minutes)


# Validation messages from marshmallow and the workflows, marked here so pybabel extracts them.
EXACT = {
    "Missing data for required field.": lazy_gettext("Missing data for required field."),
    "Not a valid number.": lazy_gettext("Not a valid number."),
    "Not a valid integer.": lazy_gettext("Not a valid integer."),
    "Not a valid string.": lazy_gettext("Not a valid string."),
    "Not a valid date.": lazy_gettext("Not a valid date."),
    "Not a valid datetime.": lazy_gettext("Not a valid datetime."),
    "Not a valid boolean.": lazy_gettext("Not a valid boolean."),
    "Not a valid list.": lazy_gettext("Not a valid list."),
    "Field may not be null.": lazy_gettext("Field may not be null."),
    "Unknown field.": lazy_gettext("Unknown field."),
    "Must be one of the choices.": lazy_gettext("Must be one of the choices."),
    "Must be a month as YYYY-MM.": lazy_gettext("Must be a month as YYYY-MM."),
    "Not a valid aware datetime.": lazy_gettext("Not a valid aware datetime."),
    "A comment is required for this action.": lazy_gettext("A comment is required for this action."),
    "A plan is for this month or a later one.": lazy_gettext("A plan is for this month or a later one."),
    "Record the counts before signing.": lazy_gettext("Record the counts before signing."),
    "Already signed: the counts can no longer change.":
        lazy_gettext("Already signed: the counts can no longer change."),
    "Load the book stock first.": lazy_gettext("Load the book stock first."),
    "Not a trainee of this cohort.": lazy_gettext("Not a trainee of this cohort."),
    "a user cannot delegate to themselves": lazy_gettext("A person cannot delegate to themselves."),
    "a delegation must end after it starts": lazy_gettext("The end must be after the start."),
    "you cannot remove your own admin role": lazy_gettext("You cannot remove your own admin role."),
    "String does not match expected pattern.": lazy_gettext("String does not match expected pattern."),
    "Invalid value.": lazy_gettext("Invalid value."),
    "No counts entered yet.": lazy_gettext("No counts entered yet."),
    "Must be a date in the years 2000 to 2100.": lazy_gettext("Must be a date in the years 2000 to 2100."),
    "The file is empty.": lazy_gettext("The file is empty."),
    "No stock lines.": lazy_gettext("No stock lines."),
    "The first line must name the columns: sku, name, quantity (编码,名称,数量).":
        lazy_gettext("The first line must name the columns: sku, name, quantity (编码,名称,数量)."),
    "The counts are recorded already: the expected figures come before counting.":
        lazy_gettext("The counts are recorded already: the expected figures come before counting."),
    "Type the expected cash (no figure from the till).":
        lazy_gettext("Type the expected cash (no figure from the till)."),
    "On Tuesdays all goods are counted: set full_count and list every line.":
        lazy_gettext("On Tuesdays all goods are counted: set full_count and list every line."),
    "Choose the file of the official list.": lazy_gettext("Choose the file of the official list."),
    "the file lists no days": lazy_gettext("The file lists no days."),
    "not an Excel workbook (.xlsx)": lazy_gettext("Not an Excel workbook (.xlsx)."),
    "not UTF-8 text (save the CSV as UTF-8)": lazy_gettext("Not UTF-8 text (save the CSV as UTF-8)."),
    "Give the SKU or the category.": lazy_gettext("Give the SKU or the category."),
    "Not on the day of the close (store time).": lazy_gettext("Not on the day of the close (store time)."),
    "Record the day's report before signing.": lazy_gettext("Record the day's report before signing."),
}
PATTERNS = [
    (re.compile(r"Type the expected quantity of (?P<skus>.+) \(no figure from the till\)\.$"),
     lazy_gettext("Type the expected quantity of %(skus)s (no figure from the till).")),
    (re.compile(r"Must be greater than or equal to (?P<n>\S+)\.$"), lazy_gettext("Must be at least %(n)s.")),
    (re.compile(r"Must be less than or equal to (?P<n>\S+)\.$"), lazy_gettext("Must be at most %(n)s.")),
    (re.compile(r"Must be greater than or equal to (?P<a>\S+) and less than or equal to (?P<b>\S+)\.$"),
     lazy_gettext("Must be between %(a)s and %(b)s.")),
    (re.compile(r"Length must be between (?P<a>\d+) and (?P<b>\d+)\.$"),
     lazy_gettext("Length must be between %(a)s and %(b)s.")),
    (re.compile(r"Shorter than minimum length (?P<n>\d+)\.$"), lazy_gettext("At least %(n)s required.")),
    (re.compile(r"Longer than maximum length (?P<n>\d+)\.$"), lazy_gettext("At most %(n)s allowed.")),
    (re.compile(r"Not on the book: (?P<x>.+)\.$"), lazy_gettext("Not on the book: %(x)s.")),
    (re.compile(r"Too many lines: (?P<n>\d+) \(at most (?P<max>\d+)\)\.$"),
     lazy_gettext("Too many lines: %(n)s (at most %(max)s).")),
    (re.compile(r"Not someone at this unit: (?P<x>.+)\.$"), lazy_gettext("Not someone at this unit: %(x)s.")),
    (re.compile(r"Recount exactly the lines with large variances: (?P<x>.*)\.$"),
     lazy_gettext("Recount exactly the lines with large variances: %(x)s.")),
    (re.compile(r"Must be one of: (?P<x>.+)\.$"), lazy_gettext("Must be one of: %(x)s.")),
    (re.compile(r"(?P<x>.+): a reason is required \(variance (?P<v>[+-]?\d+) is beyond the tolerance\)\.$"),
     lazy_gettext("%(x)s: a reason is required (variance %(v)s is beyond the tolerance).")),
    (re.compile(r"(?P<x>.+): not a line of this stocktake\.$"), lazy_gettext("%(x)s: not a line of this stocktake.")),
    (re.compile(r"No observation today for: (?P<x>.+)\.$"), lazy_gettext("No observation today for: %(x)s.")),
    (re.compile(r"No score for: (?P<x>.+)\.$"), lazy_gettext("No score for: %(x)s.")),
    (re.compile(r"Not in this cohort: (?P<x>.+)\.$"), lazy_gettext("Not in this cohort: %(x)s.")),
    (re.compile(r"Length must be (?P<n>\d+)\.$"), lazy_gettext("Length must be %(n)s.")),
    (re.compile(r"Opening \+ received − sold = (?P<n>-?\d+), not (?P<x>\d+)\.$"),
     lazy_gettext("Opening + received − sold = %(n)s, not %(x)s.")),
    (re.compile(r"The sales lines sell (?P<n>\d+) of (?P<sku>.+), not (?P<x>\d+)\.$"),
     lazy_gettext("The sales lines sell %(n)s of %(sku)s, not %(x)s.")),
    (re.compile(r"(?P<sku>.+) has a stock card already\.$"), lazy_gettext("%(sku)s has a stock card already.")),
    (re.compile(r"(?P<sku>.+) is listed twice\.$"), lazy_gettext("%(sku)s is listed twice.")),
    (re.compile(r"The sales lines add up to (?P<n>\S+), not (?P<x>\S+)\.$"),
     lazy_gettext("The sales lines add up to %(n)s, not %(x)s.")),
    (re.compile(r"More than the receipts total (?P<n>\S+)\.$"), lazy_gettext("More than the receipts total %(n)s.")),
    (re.compile(r"user '(?P<x>.*)' already exists$"), lazy_gettext("The login %(x)s is taken.")),
    (re.compile(r"(?:unknown|no) user '(?P<x>.*)'$"), lazy_gettext("Unknown person: %(x)s")),
    (re.compile(r"unknown org unit '(?P<x>.*)'$"), lazy_gettext("Unknown org unit, or not yours: %(x)s")),
    (re.compile(r"unknown role '(?P<x>.*)'$"), lazy_gettext("Unknown role: %(x)s")),
    (re.compile(r"row (?P<n>\d+): '(?P<x>.*)' is not a date \(YYYY-MM-DD\)$"),
     lazy_gettext("Row %(n)s: %(x)s is not a date (YYYY-MM-DD).")),
    (re.compile(r"row (?P<n>\d+): '(?P<x>.*)' is neither off nor working$"),
     lazy_gettext("Row %(n)s: %(x)s is neither off nor working.")),
    (re.compile(r"(?P<x>\d{4}-\d{2}-\d{2}) is not in (?P<y>\d+)$"), lazy_gettext("%(x)s is not in %(y)s.")),
    (re.compile(r"(?P<x>\d{4}-\d{2}-\d{2}) is listed twice$"), lazy_gettext("%(x)s is listed twice.")),
    (re.compile(r"row (?P<n>\d+): expected date, off\|working, name$"),
     lazy_gettext("Row %(n)s: expected date, off|working, name.")),
    (re.compile(r"'(?P<x>.*)' already holds (?P<r>\S+) at (?P<u>\S+)$"),
     lazy_gettext("%(x)s already holds this role there.")),
]


def message(text: str) -> str:
    """An engine / marshmallow validation message in the page language (unknown ones stay as they are)."""
    text = str(text)
    if text in EXACT:
        return str(EXACT[text])
    for pattern, msgid in PATTERNS:
        m = pattern.match(text)
        if m:
            return str(msgid) % m.groupdict()
    return text


def escalation_target(to: str | None) -> str:
    """Whom an escalation rung goes to ("manager", "manager+1", "role:store_manager"), in words."""
    if not to or to == "assignee":
        return _("whoever owes the step")
    if to == "manager":
        return _("their manager")
    if to.startswith("manager+"):
        return _("the manager %(n)s level(s) higher", n=to.split("+")[1])
    if to.startswith("role:"):
        return str(role_name(to[5:]))
    return to


ROLES = {"rep": lazy_gettext("sales rep"), "store_manager": lazy_gettext("store manager"),
         "deputy_manager": lazy_gettext("deputy store manager"), "assistant": lazy_gettext("shop assistant"),
         "sales_manager": lazy_gettext("sales manager"), "regional_manager": lazy_gettext("regional manager"),
         "accountant": lazy_gettext("accountant"), "service_agent": lazy_gettext("customer service"),
         "trainer": lazy_gettext("trainer"), "admin": lazy_gettext("administrator")}


def role_name(role: str) -> str:
    return str(ROLES.get(role, role))


def init_app(app) -> None:
    from web.ui.forms import row_count
    from web.ui.labels import choice, label, unit_kind

    app.jinja_env.globals.update(title=title, when=when, when_text=when_text, amount=amount, lang=lang,
                                 duration=duration, label=label,
                                 choice_label=choice, row_count=row_count, escalation_target=escalation_target,
                                 role_name=role_name, unit_kind=unit_kind)
    app.jinja_env.filters.update(when=when, amount=amount)
