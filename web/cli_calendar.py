"""`flask --app wsgi calendar …`: show a unit's calendar, override a day, confirm or import a statutory year,
list a store's closures and weekday hours. Reasons are printed in the user's language (--lang, else LANG;
zh by default) with ISO dates."""
import os

import click
from flask.cli import AppGroup

from engine import calendar, calendar_import, org
from engine.db import db
from engine.deadlines import time_of_day
from engine.errors import InvalidInput

calendar_cli = AppGroup("calendar", help="Business calendars: holidays, 调休 make-up days, overrides, store closures.")
ZH_WEEKDAYS = "一二三四五六日"


def _lang(value: str | None) -> str:
    if value:
        return value
    return "en" if os.environ.get("LANG", "").lower().startswith("en") else "zh"


LANG = click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
                    help="Language of the reasons (default: from LANG, else zh).")


def _unit(code: str | None):
    try:
        return org.unit_by_code(code) if code else None
    except InvalidInput as e:
        raise click.BadParameter(e.message, param_hint="--unit") from None


def _time(value: str | None, hint: str):
    try:
        return time_of_day(value) if value else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=hint) from None


@calendar_cli.command("show")
@click.argument("month", metavar="YYYY-MM")
@click.option("--unit", "unit_code", default=None, help="The unit's calendar (default: the office calendar).")
@LANG
def calendar_show(month, unit_code, lang):
    """Each day of MONTH: working (open) or not, its hours on a store's calendar, why, and whether it is an
    estimate (a statutory year nobody has confirmed)."""
    lang, unit = _lang(lang), _unit(unit_code)
    try:
        year, mon = (int(p) for p in month.split("-"))
        days = calendar.month_days(year, mon, unit, lang)
    except ValueError:
        raise click.BadParameter(f"'{month}' is not YYYY-MM", param_hint="MONTH") from None
    except InvalidInput as e:
        raise click.BadParameter(e.message, param_hint="MONTH") from None
    store = unit is not None and calendar.pattern_of(unit) == "store"
    if unit is not None:
        click.echo(f"{unit.code}: {calendar.pattern_of(unit)}")
    for d in days:
        weekday = d.day.strftime("%a") if lang == "en" else "周" + ZH_WEEKDAYS[d.day.weekday()]
        status = calendar.word("working" if d.working else "off", lang)
        if store:
            status = calendar.word("open" if d.working else "closed", lang).lower()
        hours = f"{d.hours[0]:%H:%M}-{d.hours[1]:%H:%M}  " if store and d.hours else ""
        flag = f" [{calendar.word('estimated', lang)}]" if d.estimated else ""
        click.echo(f"{d.day.isoformat()} {weekday}  {status:<7}  {hours}{d.reason}{flag}".rstrip())


@calendar_cli.command("set")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD")
@click.option("--working/--holiday", required=True, help="Make the day a working day, or a day off.")
@click.option("--note", default="")
def calendar_set(day, working, note):
    """Override one day of the office calendar (e.g. a company day off)."""
    try:
        calendar.set_day(day.date(), working, note)
    except InvalidInput as e:  # refused before anything was written
        raise click.BadParameter(e.message, param_hint="DAY") from None
    click.echo(f"{day.date().isoformat()} is now {'a working day' if working else 'a day off'}")


@calendar_cli.command("confirm")
@click.argument("year", type=int)
@click.option("--by", default="cli", help="Who checked it against the State Council's notice.")
def calendar_confirm(year, by):
    """Mark YEAR's statutory days (as the holidays package has them) as checked against the official notice."""
    try:
        calendar.confirm_year(year, by)
    except InvalidInput as e:
        raise click.BadParameter(e.message, param_hint="YEAR") from None
    click.echo(f"{year}: confirmed")


@calendar_cli.command("import")
@click.argument("year", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", default="cli", help="Who imported it.")
def calendar_import_cmd(year, file, by):
    """Replace YEAR's statutory days by the official list in FILE (CSV or .xlsx: date, off|working, name) and mark
    the year confirmed. A bad row refuses the whole file."""
    with open(file, "rb") as f:
        content = f.read()
    try:
        n = calendar.import_year(year, calendar_import.read(content, file), by)
    except InvalidInput as e:
        db.session.rollback()
        raise click.BadParameter(e.message, param_hint="FILE" if e.details.get("field") == "file" else "YEAR") \
            from None
    click.echo(f"{year}: {n} official days imported; the year is confirmed")


@calendar_cli.command("pattern")
@click.argument("unit_code", metavar="UNIT")
@click.argument("pattern", type=click.Choice(calendar.PATTERNS))
def calendar_pattern(unit_code, pattern):
    """Set UNIT's working pattern (office or store); units below it inherit it."""
    unit = _unit(unit_code)
    calendar.set_pattern(unit, pattern)
    db.session.commit()
    click.echo(f"{unit.code}: {pattern}")


@calendar_cli.command("hours")
@click.argument("unit_code", metavar="UNIT")
@click.argument("weekday", type=click.Choice(calendar.WEEKDAYS))
@click.argument("opens", metavar="HH:MM")
@click.argument("closes", metavar="HH:MM")
def calendar_hours(unit_code, weekday, opens, closes):
    """Set UNIT's opening hours on WEEKDAY (store calendars; units below inherit them)."""
    unit = _unit(unit_code)
    try:
        calendar.set_pattern(unit, weekday=weekday, hours=(_time(opens, "OPENS"), _time(closes, "CLOSES")))
    except InvalidInput as e:
        raise click.BadParameter(e.message, param_hint="CLOSES") from None
    db.session.commit()
    click.echo(f"{unit.code}: {weekday} {opens}-{closes}")


@calendar_cli.command("close")
@click.argument("unit_code", metavar="UNIT")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD")
@click.option("--from", "closed_from", default=None, metavar="HH:MM", help="Closed from this time (e.g. 除夕 14:00).")
@click.option("--until", "closed_until", default=None, metavar="HH:MM", help="Closed until this time.")
@click.option("--note", default="")
@click.option("--reopen", is_flag=True, help="Remove the closure instead.")
def calendar_close(unit_code, day, closed_from, closed_until, note, reopen):
    """List a closure of UNIT (a store, or a unit above its stores) on DAY: the whole day, or part of it."""
    unit = _unit(unit_code)
    if reopen:
        found = calendar.remove_closure(unit, day.date())
        db.session.commit()
        click.echo(f"{unit.code} {day.date().isoformat()}: {'open' if found else 'no closure was listed'}")
        return
    try:
        calendar.set_closure(unit, day.date(), _time(closed_from, "--from"), _time(closed_until, "--until"), note)
    except InvalidInput as e:
        db.session.rollback()
        raise click.BadParameter(e.message, param_hint="--until" if e.details.get("field") == "until" else "DAY") \
            from None
    db.session.commit()
    click.echo(f"{unit.code} {day.date().isoformat()}: closed")


