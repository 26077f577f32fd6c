"""Customer complaint (客户投诉): received → acknowledged → assigned → resolved → follow-up visit (回访)
→ closed; reopened at the customer's request within 30 days; deadlines by severity, escalating to the
store manager and then the regional manager. Low satisfaction needs the manager's review before closing."""
from datetime import timedelta

from marshmallow import Schema, fields, validate

from engine.definition import Deadline, Rung, State, Transition, Workflow
from workflows.common import Empty, people_errors, t, user_at

SEVERITIES = ("low", "medium", "high", "critical")
CHANNELS = ("store", "phone", "wechat", "online", "other")
CATEGORIES = ("product_quality", "service", "delivery", "price", "return_refund", "other")
REOPEN_WITHIN = timedelta(days=30)
LOW_SATISFACTION = 3  # below this a manager reviews before the complaint closes


class ComplaintSchema(Schema):
    customer = fields.String(required=True, validate=validate.Length(min=1, max=100))
    contact = fields.String(required=True, validate=validate.Length(min=1, max=100))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    order_ref = fields.String(load_default=None, validate=validate.Length(max=64))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class AssignSchema(Schema):
    assignee = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ResolveSchema(Schema):
    resolution = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class FollowUpSchema(Schema):
    satisfaction = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    follow_up_notes = fields.String(load_default="", validate=validate.Length(max=4000))


class ReopenSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


ESCALATE = (Rung("0", "escalate", to="role:store_manager"),
            Rung("+1 working day", "escalate", to="role:regional_manager"))

DEFINITION = Workflow(
    name="complaint",
    version=1,
    title=t("客户投诉", "Customer complaint"),
    initial="received",
    start_roles=("service_agent", "store_manager", "deputy_manager", "assistant"),
    start_schema=ComplaintSchema,
    states=(
        State("received", t("已登记", "Received"), assignee="service_agent",
              deadline=Deadline({"critical": "30 minutes", "high": "1 working hour", "*": "2 working hours"},
                                by="severity", ladder=ESCALATE)),
        State("acknowledged", t("已受理", "Acknowledged"), assignee="service_agent",
              deadline=Deadline({"critical": "1 hour", "*": "4 working hours"}, by="severity", ladder=ESCALATE)),
        State("assigned", t("处理中", "Being handled"), assignee="assignee",
              deadline=Deadline({"critical": "2 working days", "high": "2 working days", "*": "5 working days"},
                                by="severity", ladder=(Rung("-4 working hours", "remind"),) + ESCALATE)),
        State("resolved", t("待回访", "Awaiting follow-up visit"), assignee="service_agent",
              deadline=Deadline("2 working days", ladder=ESCALATE)),
        State("followed_up", t("已回访", "Followed up"), assignee="service_agent"),
        State("manager_review", t("满意度低·店长复核", "Low satisfaction: manager review"), assignee="store_manager",
              deadline=Deadline("2 working days", ladder=(Rung("0", "escalate", to="role:regional_manager"),))),
        State("closed", t("已关闭", "Closed"), final=True),
    ),
    transitions=(
        Transition("acknowledge", "received", "acknowledged", roles=("service_agent", "store_manager"), schema=Empty,
                   title=t("受理", "Acknowledge")),
        Transition("assign", ("received", "acknowledged", "assigned"), "assigned",
                   roles=("service_agent", "store_manager"), schema=AssignSchema, validators=("assignee_is_staff",),
                   after=("set_assignee",), title=t("分派", "Assign")),
        Transition("resolve", "assigned", "resolved", roles=("assignee", "store_manager"), schema=ResolveSchema,
                   title=t("解决", "Resolve")),
        Transition("follow_up", "resolved", "followed_up", roles=("service_agent", "store_manager"),
                   schema=FollowUpSchema, unless=("dissatisfied",), title=t("回访", "Follow-up visit")),
        Transition("follow_up", "resolved", "manager_review", roles=("service_agent", "store_manager"),
                   schema=FollowUpSchema, conditions=("dissatisfied",), title=t("回访", "Follow-up visit")),
        Transition("close", "followed_up", "closed", roles=("service_agent", "store_manager"), schema=Empty,
                   title=t("关闭", "Close")),
        Transition("review", "manager_review", "closed", roles=("store_manager", "regional_manager"), schema=Empty,
                   requires_comment=True, not_by=("resolve",), title=t("复核关闭", "Review and close")),
        Transition("reopen", "closed", "assigned", roles=("service_agent", "store_manager"), schema=ReopenSchema,
                   conditions=("within_reopen_window",), title=t("重新打开", "Reopen")),
    ),
)

DEFINITIONS = [DEFINITION]


# ---- validators, guards, hooks ----

def assignee_is_staff(ctx) -> dict:
    return people_errors("assignee", [ctx.data["assignee"]], ctx.instance.org_unit)


def set_assignee(ctx) -> None:
    user = user_at(ctx.data["assignee"], ctx.instance.org_unit)
    ctx.instance.assignee_id = user.id
    ctx.doc["assignee_name"] = user.name


def dissatisfied(ctx) -> bool:
    return ctx.data["satisfaction"] < LOW_SATISFACTION


def within_reopen_window(ctx) -> bool:
    return ctx.instance.closed_at is not None and ctx.now - ctx.instance.closed_at <= REOPEN_WITHIN
