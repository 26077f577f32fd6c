"""The calendar a unit works by, one month at a time: each day working/open or not, its hours, why, and
whether it is an estimate (a statutory year nobody has confirmed)."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine import calendar, dates, org
from engine.limits import CODE_MAX
from web.api.common import errors
from web.api.i18n import select_locale

blp = Blueprint("api_calendar", __name__, url_prefix="/api/v1/calendar", description="Business calendars per unit.")


class CalendarQuery(Schema):
    unit = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX),
                         metadata={"description": "Org unit code, e.g. SH01"})
    month = fields.String(required=True, validate=(
        validate.Length(equal=7), validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="Must be a month, YYYY-MM."),
        dates.InSpan()))


class DayOut(Schema):
    date = fields.Date(required=True)
    working = fields.Boolean(required=True, metadata={"description": "A working day (office) or open day (store)"})
    opens = fields.String(allow_none=True, metadata={"description": "HH:MM, when the day counts"})
    closes = fields.String(allow_none=True)
    reason = fields.String(required=True, metadata={"description": "Why, in the caller's language"})
    estimated = fields.Boolean(required=True, metadata={"description": "Rests on an unconfirmed statutory year"})


class CalendarOut(Schema):
    unit = fields.String(required=True)
    pattern = fields.String(required=True, metadata={"description": "office or store"})
    month = fields.String(required=True)
    days = fields.List(fields.Nested(DayOut), required=True)


@blp.route("")
class UnitCalendar(MethodView):
    @blp.arguments(CalendarQuery, location="query")
    @blp.response(200, CalendarOut)
    @errors(blp, 401, 422)
    def get(self, args):
        """One month of a unit's calendar (any signed-in caller: calendars are not confidential)."""
        unit = org.unit_by_code(args["unit"])
        year, month = (int(p) for p in args["month"].split("-"))
        days = calendar.month_days(year, month, unit, select_locale())
        return {"unit": unit.code, "pattern": calendar.pattern_of(unit), "month": args["month"],
                "days": [{"date": d.day, "working": d.working, "reason": d.reason, "estimated": d.estimated,
                          "opens": d.hours[0].strftime("%H:%M") if d.hours else None,
                          "closes": d.hours[1].strftime("%H:%M") if d.hours else None} for d in days]}
