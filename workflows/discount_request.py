"""Discount request (折扣申请): a shop assistant or rep asks for a discount beyond the store's policy;
the store manager approves, and a large one needs the regional manager too.

A small, complete sample of the definition format until the five sales workflows land.
"""
from decimal import Decimal

from marshmallow import Schema, fields, validate

from engine.definition import Deadline, Rung, State, Transition, Workflow


class RequestSchema(Schema):
    customer = fields.String(required=True, validate=validate.Length(min=1, max=200))
    order_ref = fields.String(load_default=None, validate=validate.Length(max=64))
    amount = fields.Decimal(required=True, places=2, as_string=True,
                            validate=validate.Range(min=0, min_inclusive=False))
    discount_percent = fields.Decimal(required=True, places=1, as_string=True,
                                      validate=validate.Range(min=0, max=100, min_inclusive=False))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class NoPayload(Schema):
    pass


LARGE_DISCOUNT_PERCENT = 20

DEFINITION = Workflow(
    name="discount_request",
    version=1,
    title={"zh": "折扣申请", "en": "Discount request"},
    initial="draft",
    start_roles=("assistant", "deputy_manager"),  # store staff: the store manager reviews (a rep's team has none)
    start_schema=RequestSchema,
    states=(
        State("draft", {"zh": "草稿", "en": "Draft"}, assignee="creator"),
        State("store_review", {"zh": "店长审批", "en": "Store manager review"}, assignee="store_manager",
              deadline=Deadline("4 hours", ladder=(
                  Rung("-1 hour", "remind"),
                  Rung("0", "escalate", to="manager"),
                  Rung("+4 hours", "escalate", to="manager+1"),
              ))),
        State("regional_review", {"zh": "区域经理审批", "en": "Regional manager review"},
              assignee="regional_manager", deadline=Deadline("1 day", ladder=(Rung("0", "escalate", to="manager"),))),
        State("approved", {"zh": "已批准", "en": "Approved"}, final=True),
        State("rejected", {"zh": "已拒绝", "en": "Rejected"}, final=True),
        State("withdrawn", {"zh": "已撤回", "en": "Withdrawn"}, final=True),
    ),
    transitions=(
        Transition("submit", "draft", "store_review", roles=("creator",), schema=NoPayload,
                   title={"zh": "提交", "en": "Submit"}),
        Transition("update", "draft", None, roles=("creator",), schema=RequestSchema,
                   title={"zh": "修改", "en": "Edit"}),
        Transition("withdraw", ("draft", "store_review"), "withdrawn", roles=("creator",), schema=NoPayload,
                   title={"zh": "撤回", "en": "Withdraw"}),
        Transition("approve", "store_review", "regional_review", roles=("store_manager",), schema=NoPayload,
                   conditions=("is_large",), not_by=("creator",), title={"zh": "批准", "en": "Approve"}),
        Transition("approve", "store_review", "approved", roles=("store_manager",), schema=NoPayload,
                   unless=("is_large",), not_by=("creator",), title={"zh": "批准", "en": "Approve"}),
        Transition("approve", "regional_review", "approved", roles=("regional_manager",), schema=NoPayload,
                   not_by=("creator", "approve"), title={"zh": "批准", "en": "Approve"}),
        Transition("return", ("store_review", "regional_review"), "draft",
                   roles=("store_manager", "regional_manager"), schema=NoPayload, requires_comment=True,
                   not_by=("creator",), title={"zh": "退回修改", "en": "Return for changes"}),
        Transition("reject", ("store_review", "regional_review"), "rejected",
                   roles=("store_manager", "regional_manager"), schema=NoPayload, requires_comment=True,
                   not_by=("creator",), title={"zh": "拒绝", "en": "Reject"}),
    ),
)

DEFINITIONS = [DEFINITION]


# ---- guards ----

def is_large(ctx) -> bool:
    """A discount above the store's limit needs the regional manager as well."""
    return Decimal(str(ctx.doc["discount_percent"])) > LARGE_DISCOUNT_PERCENT
