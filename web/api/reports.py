"""Reports: overdue work and time in each step (SLA)."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine import dates, org, reports
from engine.limits import CODE_MAX
from web.api.auth import current_user
from web.api.common import errors
from web.api.present import user_ref
from web.api.schemas import UnitRef, UserRef, titles

blp = Blueprint("api_reports", __name__, url_prefix="/api/v1/reports", description="Overdue work and step SLAs.")


class OverdueQuery(Schema):
    org_unit = fields.String(validate=validate.Length(min=1, max=CODE_MAX),
                             metadata={"description": "Only this unit and the units below it"})


class OverdueRowOut(Schema):
    org_unit = fields.Nested(UnitRef, required=True)
    workflow = fields.String(required=True)
    state = fields.String(required=True)
    state_title = titles(required=True)
    owners = fields.List(fields.Nested(UserRef), required=True)
    count = fields.Integer(required=True)
    oldest_due_at = fields.DateTime(required=True)


class SlaQuery(Schema):
    workflow = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX))
    from_ = fields.AwareDateTime(required=True, data_key="from", validate=dates.InSpan())
    to = fields.AwareDateTime(required=True, validate=dates.InSpan())


class StepStatsOut(Schema):
    state = fields.String(required=True)
    title = titles(required=True)
    count = fields.Integer(required=True, metadata={"description": "Visits to the step that ended in the period"})
    median_hours = fields.Float(allow_none=True, metadata={"description": "Median working hours in the step"})
    p90_hours = fields.Float(allow_none=True)
    overdue_share = fields.Float(allow_none=True, metadata={"description": "Share that left after the deadline"})


@blp.route("/overdue")
class Overdue(MethodView):
    @blp.arguments(OverdueQuery, location="query")
    @blp.response(200, OverdueRowOut(many=True))
    @errors(blp, 401, 422)
    def get(self, args):
        """Open steps past their deadline that you may see, by org unit, workflow, step and owner."""
        unit = org.unit_by_code(args["org_unit"]) if args.get("org_unit") else None
        return [{"org_unit": {"code": r.org_unit.code, "name": r.org_unit.name}, "workflow": r.workflow,
                 "state": r.state, "state_title": r.state_title, "owners": [user_ref(h.user) for h in r.owners],
                 "count": r.count, "oldest_due_at": r.oldest_due_at} for r in reports.overdue(current_user(), unit)]


@blp.route("/sla")
class Sla(MethodView):
    @blp.arguments(SlaQuery, location="query")
    @blp.response(200, StepStatsOut(many=True))
    @errors(blp, 401, 404, 422)
    def get(self, args):
        """Per step: how many visits ended in [from, to), median and p90 working hours in the step, share overdue."""
        return [vars(s) for s in reports.sla(current_user(), args["workflow"], args["from_"], args["to"])]
