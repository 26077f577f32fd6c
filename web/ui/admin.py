"""Admin pages: the org tree, users and their roles, delegations (add, end) and the company's business
calendar (working-day overrides; confirming or importing a statutory year). engine.admin checks every read and
write against the admin's subtree."""
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, lazy_gettext
from flask_babel import gettext as _
from flask_login import login_required

from engine import admin, calendar, calendar_import, clock, dates, pages
from engine.errors import EngineError, InvalidInput
from engine.org import Role
from web.ui import bp
from web.ui.auth import me
from web.ui.i18n import message
from web.ui.labels import label


def _month(text: str) -> tuple[int, int]:
    """The calendar month `text` (YYYY-MM), else the current one. A month outside the accepted years is an
    InvalidInput naming `month` (its days could not be computed)."""
    try:
        year, month = (int(x) for x in text.split("-"))
        date(year, month, 1)
    except ValueError:
        today = clock.now().astimezone(ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai")))
        return today.year, today.month
    dates.check_year(year, "month")
    return year, month


def _field_message(e: EngineError) -> str:
    """The engine's refusal in the page language, after the label of the field it names."""
    return f"{label(e.details['field'])}: {message(e.message)}"


def _page(banner: str | None = None, status: int = 200, errors: dict | None = None, form: dict | None = None):
    units = admin.units(me())  # NotPermitted (shown as 404) for anyone who is not an administrator
    users = admin.users(me())
    try:
        year, month = _month(request.values.get("month", ""))
    except InvalidInput as e:  # the current month instead, saying why
        year, month = _month("")
        banner, status = _field_message(e), 422
    return render_template("admin.html", units=units, users=users, all_roles=[r.value for r in Role],
                           roles={u.login: admin.roles(me(), u.login) for u in users},
                           delegations=admin.delegations(me()), banner=banner, month=f"{year:04d}-{month:02d}",
                           days=calendar.month_days(year, month, lang=get_locale().language),
                           year_estimated=not calendar.is_confirmed(year),
                           may_edit_calendar=pages.may_edit_calendar(me()), errors=errors or {},
                           form=form or {}), status


@bp.get("/admin")
@login_required
def admin_home():
    return _page()


def _local(text: str) -> datetime:
    tz = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))
    return datetime.fromisoformat(text).replace(tzinfo=tz)


@bp.post("/admin/delegations")
@login_required
def add_delegation():
    admin.admin_paths(me())
    try:
        starts, ends = _local(request.form.get("starts_at", "")), _local(request.form.get("ends_at", ""))
    except ValueError:
        return _page(_("Give the start and the end of the delegation."), 422)
    if ends <= starts:
        return _page(_("The end must be after the start."), 422)
    try:
        admin.create_delegation(me(), request.form.get("from_login", "").strip(),
                                request.form.get("to_login", "").strip(), starts, ends)
    except EngineError as e:
        return _page(_field_message(e) if e.details.get("field") in ("starts_at", "ends_at") else message(e.message),
                     e.status)
    flash(_("Delegation added."))
    return redirect(url_for("ui.admin_home"))


@bp.post("/admin/delegations/<int:delegation_id>/delete")
@login_required
def delete_delegation(delegation_id: int):
    admin.delete_delegation(me(), delegation_id)  # not in the admin's scope: 404
    flash(_("Delegation ended."))
    return redirect(url_for("ui.admin_home"))


@bp.post("/admin/calendar")
@login_required
def set_calendar_day():
    if not pages.may_edit_calendar(me()):
        abort(404)
    try:
        day = date.fromisoformat(request.form.get("day", ""))
    except ValueError:
        return _page(_("Give a date."), 422)
    try:
        calendar.set_day(day, request.form.get("working") == "1", request.form.get("note", "").strip()[:200])
    except InvalidInput as e:  # nothing was written
        return _page(_field_message(e), e.status)
    flash(_("Calendar updated."))
    return redirect(url_for("ui.admin_home", month=day.strftime("%Y-%m")))


def _calendar_year() -> int:
    if not pages.may_edit_calendar(me()):
        abort(404)
    try:
        year = int(request.form.get("year", ""))
    except ValueError:
        year = 0
    dates.check_year(year, "year")  # InvalidInput: shown beside the calendar
    return year


@bp.post("/admin/calendar/confirm")
@login_required
def confirm_calendar_year():
    try:
        year = _calendar_year()
        calendar.confirm_year(year, me().login)
    except InvalidInput as e:
        return _page(_field_message(e), e.status)
    flash(_("The statutory holidays of %(year)s are confirmed.", year=year))
    return redirect(url_for("ui.admin_home", month=f"{year}-01") + "#calendar")


@bp.post("/admin/calendar/import")
@login_required
def import_calendar_year():
    try:
        year = _calendar_year()
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidInput("Choose the file of the official list.", field="file")
        n = calendar.import_year(year, calendar_import.read(upload.read(), upload.filename), me().login)
    except InvalidInput as e:  # nothing was written
        field = e.details.get("field")
        return _page(errors={field: message(e.message)}, status=e.status) if field == "file" \
            else _page(_field_message(e), e.status)
    flash(_("%(n)s official days of %(year)s imported; the year is confirmed.", n=n, year=year))
    return redirect(url_for("ui.admin_home", month=f"{year}-01") + "#calendar")


@bp.post("/admin/roles")
@login_required
def grant_role():
    try:
        admin.grant(me(), request.form.get("login", "").strip(), request.form.get("role", ""),
                    request.form.get("org_unit", "").strip())
    except EngineError as e:
        return _page(message(e.message), e.status)
    flash(_("Role granted."))
    return redirect(url_for("ui.admin_home") + "#users")


@bp.post("/admin/roles/<login>/<int:assignment_id>/delete")
@login_required
def revoke_role(login: str, assignment_id: int):
    try:
        admin.revoke(me(), login, assignment_id)  # outside the admin's scope: 404
    except InvalidInput as e:
        return _page(message(e.message), e.status)
    flash(_("Role removed."))
    return redirect(url_for("ui.admin_home") + "#users")


# What the engine's rules for people (engine.org_rules) ask, said beside the field that broke them.
FIELD_RULES = {
    "login": lazy_gettext("Use 1-64 lower-case letters a-z, digits, '.', '_' or '-', starting with a letter or "
                          "digit."),
    "name": lazy_gettext("Give a name of at most 200 characters, without line breaks or control characters."),
    "email": lazy_gettext("Give one valid email address."),
}


@bp.post("/admin/users")
@login_required
def create_user():
    form = request.form
    kept = {k: form.get(k, "") for k in ("login", "name", "email")}
    roles = [(form.get("role", ""), form.get("org_unit", "").strip())] if form.get("org_unit", "").strip() else []
    if len(form.get("password", "")) < 8:
        return _page(_("Give a login, a name and a password of at least 8 characters."), 422,
                     {"password": [_("At least 8 characters.")]}, kept)
    try:
        admin.create_user(me(), form.get("login", "").strip(), form.get("name", "").strip(),
                          form.get("email", "").strip(), form["password"], "en" if form.get("locale") == "en" else "zh",
                          roles)
    except InvalidInput as e:
        field = e.details.get("field")
        said = message(e.message)
        text = str(FIELD_RULES[field]) if said == e.message and field in FIELD_RULES else said
        return _page(_("Please correct the marked fields."), e.status, {field: [text]}, kept)
    except EngineError as e:
        return _page(message(e.message), e.status)
    flash(_("User created."))
    return redirect(url_for("ui.admin_home") + "#users")
