"""Monthly sales plan (月度销售计划): a rep's targets for the month — pre-filled from the annual target
broken down (分解) into months, weeks and working days — with the actions and budget behind them; approved
by the sales manager (and the regional manager too when the budget or the change to the targets is large);
and, because "有计划没结果" is the problem, evaluated against actuals when the month ends."""
from datetime import date
from decimal import Decimal

from marshmallow import Schema, fields, validate

from engine import calendar, org, targets
from engine.definition import Deadline, Rung, State, Transition, Workflow
from workflows.common import Empty, Month, month_window_errors, t

# Defaults; a company sets its own in its org unit's settings under the same names.
MONTHS_AHEAD = 13  # a plan is for this month up to a year after next month
SETTINGS = {"plan_budget_threshold": Decimal("50000"), "plan_target_change_pct": Decimal("20"),
            "plan_achievement_threshold_pct": Decimal("90")}


class TargetsSchema(Schema):
    amount = fields.Decimal(required=True, places=2, as_string=True, validate=validate.Range(min=0))
    new_customers = fields.Integer(required=True, validate=validate.Range(min=0))
    visits = fields.Integer(required=True, validate=validate.Range(min=0))


class ActionSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    detail = fields.String(load_default="", validate=validate.Length(max=2000))
    week = fields.Integer(load_default=None, validate=validate.Range(min=1, max=6))


class PlanSchema(Schema):
    month = Month(required=True)
    targets = fields.Nested(TargetsSchema, load_default=None)  # omitted: pre-filled from the annual target
    actions = fields.List(fields.Nested(ActionSchema), load_default=list, validate=validate.Length(max=50))
    budget = fields.Decimal(load_default=Decimal("0"), places=2, as_string=True, validate=validate.Range(min=0))
    notes = fields.String(load_default="", validate=validate.Length(max=4000))


class EditSchema(Schema):
    """Only the fields given change."""

    month = Month()
    targets = fields.Nested(TargetsSchema)
    actions = fields.List(fields.Nested(ActionSchema), validate=validate.Length(max=50))
    budget = fields.Decimal(places=2, as_string=True, validate=validate.Range(min=0))
    notes = fields.String(validate=validate.Length(max=4000))


class ActualsSchema(Schema):
    actuals = fields.Nested(TargetsSchema, required=True)


class ExplainSchema(Schema):
    reasons = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    next_actions = fields.String(required=True, validate=validate.Length(min=1, max=4000))


REVIEW = Deadline("2 working days", ladder=(Rung("-4 working hours", "remind"), Rung("0", "escalate", to="manager"),
                                            Rung("+1 working day", "escalate", to="manager+1")))

DEFINITION = Workflow(
    name="monthly_plan",
    version=1,
    title=t("月度销售计划", "Monthly sales plan"),
    initial="draft",
    start_roles=("rep",),
    start_schema=PlanSchema,
    start_validators=("month_not_past",),
    on_start=("prefill",),
    states=(
        State("draft", t("草拟", "Draft"), assignee="creator",
              deadline=Deadline("day 25 of the month before month at 23:59", ladder=(
                  Rung("-3 days", "remind"), Rung("0", "escalate", to="manager")))),
        State("manager_review", t("主管审批", "Manager review"), assignee="sales_manager", deadline=REVIEW),
        State("regional_review", t("区域经理审批", "Regional manager review"), assignee="regional_manager",
              deadline=REVIEW),
        State("approved", t("执行中", "Approved, in progress"),
              deadline=Deadline("last day of month at 23:59", ladder=(Rung("0", "fire", trigger="start_evaluation"),))),
        State("evaluation", t("月末评估", "Month-end evaluation"), assignee="creator",
              deadline=Deadline("3 working days", ladder=(Rung("-1 working day", "remind"),
                                                          Rung("0", "escalate", to="manager")))),
        State("explanation", t("未达标说明", "Explain the shortfall"), assignee="creator",
              deadline=Deadline("2 working days", ladder=(Rung("0", "escalate", to="manager"),))),
        State("evaluation_review", t("主管评估审核", "Manager reviews the evaluation"), assignee="sales_manager",
              deadline=REVIEW),
        State("closed", t("已结案", "Closed"), final=True),
        State("rejected", t("已驳回", "Rejected"), final=True),
    ),
    transitions=(
        Transition("update", "draft", None, roles=("creator",), schema=EditSchema, validators=("month_not_past",),
                   after=("prefill",),
                   title=t("修改", "Edit")),
        Transition("submit", "draft", "manager_review", roles=("creator",), schema=Empty,
                   title=t("提交", "Submit")),
        Transition("recall", "manager_review", "draft", roles=("creator",), schema=Empty,
                   title=t("撤回", "Recall")),
        Transition("approve", "manager_review", "regional_review", roles=("sales_manager",), schema=Empty,
                   not_by=("creator",), conditions=("needs_second_approval",), title=t("批准", "Approve")),
        Transition("approve", "manager_review", "approved", roles=("sales_manager",), schema=Empty,
                   not_by=("creator",), unless=("needs_second_approval",), title=t("批准", "Approve")),
        Transition("approve", "regional_review", "approved", roles=("regional_manager",), schema=Empty,
                   not_by=("creator", "approve"), title=t("批准", "Approve")),
        Transition("return", ("manager_review", "regional_review"), "draft",
                   roles=("sales_manager", "regional_manager"), schema=Empty, requires_comment=True,
                   not_by=("creator",), title=t("退回修改", "Return for changes")),
        Transition("reject", ("manager_review", "regional_review"), "rejected",
                   roles=("sales_manager", "regional_manager"), schema=Empty, requires_comment=True,
                   not_by=("creator",), title=t("驳回", "Reject")),
        Transition("start_evaluation", "approved", "evaluation", schema=Empty,
                   title=t("进入月末评估", "Start the evaluation")),
        Transition("record_actuals", "evaluation", "explanation", roles=("creator",), schema=ActualsSchema,
                   conditions=("below_target",), after=("evaluate",), title=t("填报实绩", "Record actuals")),
        Transition("record_actuals", "evaluation", "closed", roles=("creator",), schema=ActualsSchema,
                   unless=("below_target",), after=("evaluate",), title=t("填报实绩", "Record actuals")),
        Transition("explain", "explanation", "evaluation_review", roles=("creator",), schema=ExplainSchema,
                   title=t("说明原因", "Explain")),
        Transition("review", "evaluation_review", "closed", roles=("sales_manager",), schema=Empty,
                   requires_comment=True, not_by=("creator",), title=t("审核评估", "Review")),
    ),
)

DEFINITIONS = [DEFINITION]


def setting(unit, name: str) -> Decimal:
    return Decimal(str(org.setting(unit, name, SETTINGS[name])))


# ---- validators, guards, hooks ----

def month_not_past(ctx) -> dict:
    if "month" not in ctx.data:
        return {}
    year, month = map(int, ctx.data["month"].split("-"))
    today = ctx.now.date()
    if (year, month) < (today.year, today.month):
        return {"month": ["A plan is for this month or a later one."]}
    return month_window_errors("month", ctx.data["month"], ctx.now, ctx.instance.org_unit, 12, MONTHS_AHEAD)


def prefill(ctx) -> None:
    """Targets from the rep's annual target when none are given; the weekly and daily breakdown always."""
    doc, unit = ctx.doc, ctx.instance.org_unit
    year, month = map(int, doc["month"].split("-"))
    cal = calendar.for_unit(unit)  # a team's rep counts office days; a store, every day it opens
    owner = ctx.instance.created_by_id or (ctx.acting.user.id if ctx.acting.user else None)
    annual = targets.annual(year, unit.ancestor_ids, owner)
    if annual is not None:
        doc["baseline"] = targets.month_of(annual, year, month, cal).as_dict()
    if not doc.get("targets"):
        doc["targets"] = doc.get("baseline") or {"amount": "0.00", "new_customers": 0, "visits": 0}
    month_targets = targets.Targets(Decimal(str(doc["targets"]["amount"])), int(doc["targets"]["new_customers"]),
                                    int(doc["targets"]["visits"]))
    doc["breakdown"] = targets.breakdown(month_targets, year, month, cal)


def needs_second_approval(ctx) -> bool:
    """A large budget, or targets moved far from the breakdown of the annual target, go one level up."""
    unit = ctx.instance.org_unit
    if Decimal(str(ctx.doc.get("budget") or 0)) > setting(unit, "plan_budget_threshold"):
        return True
    baseline = Decimal(str((ctx.doc.get("baseline") or {}).get("amount") or 0))
    if baseline:
        change = abs(Decimal(str(ctx.doc["targets"]["amount"])) - baseline) * 100 / baseline
        return change > setting(unit, "plan_target_change_pct")
    return False


def achievement(doc: dict) -> dict:
    """Actual ÷ target per measure, in per cent (None where the target is 0)."""
    result = {}
    for metric in targets.METRICS:
        target = Decimal(str(doc["targets"][metric]))
        actual = Decimal(str(doc["actuals"][metric]))
        result[metric] = str((actual * 100 / target).quantize(Decimal("0.1"))) if target else None
    return result


def below_target(ctx) -> bool:
    threshold = setting(ctx.instance.org_unit, "plan_achievement_threshold_pct")
    return any(v is not None and Decimal(v) < threshold for v in achievement(ctx.doc).values())


def evaluate(ctx) -> None:
    ctx.doc["achievement"] = achievement(ctx.doc)
    ctx.doc["evaluated_on"] = date.isoformat(ctx.now.date())
