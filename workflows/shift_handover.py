"""Shift handover sign-off (交接班): at the midday handover the outgoing and incoming people count the cash,
the accounts and the goods sold during the shift, and both sign the work diary (工作日记上签字确认). The
two signers are different people. A discrepancy needs the store manager's countersignature (or, when the
store manager was one of the signers, a sales manager's or the regional manager's above the store). Every
Tuesday all goods are counted."""
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from engine import dates, org, stock
from engine.db import db
from engine.definition import Deadline, Rung, Schedule, Signing, State, Transition, Workflow
from engine.limits import GOODS_LINES_MAX
from engine.models import Signature
from workflows.common import Empty, day_window_errors, t

TUESDAY = 1
CASH_TOLERANCE = Decimal("0.00")  # default; a company may set "handover_cash_tolerance"
WINDOW = timedelta(days=7)  # a handover is for a shift within a week of now, either way
MISSING_SHOWN = 20  # SKUs named in the Tuesday error; beyond that it says how many more
SIGNATURE_WINDOW_MINUTES = 30  # default; a unit may set "signature_window_minutes"


class GoodsLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    # None: the till/ERP supplied it (`expected`); typed by the counter it is self-declared
    expected = fields.Integer(load_default=None, validate=validate.Range(min=0))
    counted = fields.Integer(required=True, validate=validate.Range(min=0))


class CountsSchema(Schema):
    cash_expected = fields.Decimal(load_default=None, places=2, as_string=True, validate=validate.Range(min=0))
    cash_counted = fields.Decimal(required=True, places=2, as_string=True, validate=validate.Range(min=0))
    receipts_total = fields.Decimal(load_default=None, places=2, as_string=True, validate=validate.Range(min=0))
    goods = fields.List(fields.Nested(GoodsLine), load_default=list, validate=validate.Length(max=GOODS_LINES_MAX))
    full_count = fields.Boolean(load_default=False)  # all goods counted, not just those sold (Tuesdays)
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class ExpectedLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    expected = fields.Integer(required=True, validate=validate.Range(min=0))


class ExpectedSchema(Schema):
    """What the till/ERP says the shift should hand over, supplied before anyone counts."""

    cash = fields.Decimal(required=True, places=2, as_string=True, validate=validate.Range(min=0))
    receipts_total = fields.Decimal(load_default=None, places=2, as_string=True, validate=validate.Range(min=0))
    goods = fields.List(fields.Nested(ExpectedLine), load_default=list, validate=validate.Length(max=GOODS_LINES_MAX))


class SetExpectedSchema(Schema):
    expected = fields.Nested(ExpectedSchema, required=True)


class StartSchema(Schema):
    handover_at = fields.AwareDateTime(required=True, validate=dates.InSpan())
    shift = fields.String(load_default="midday", validate=validate.OneOf(("midday", "evening")))
    counts = fields.Nested(CountsSchema, load_default=None)


class RecordSchema(Schema):
    counts = fields.Nested(CountsSchema, required=True)


ESCALATE = (Rung("0", "escalate", to="role:store_manager"), Rung("+30 minutes", "escalate", to="role:regional_manager"))

DEFINITION = Workflow(
    name="shift_handover",
    version=1,
    title=t("交接班签字", "Shift handover sign-off"),
    initial="open",
    start_roles=("store_manager", "deputy_manager"),
    start_schema=StartSchema,
    start_validators=("handover_in_window", "tuesday_full_count", "expected_known"),
    on_start=("find_discrepancies",),
    schedule=Schedule(every="day", at="14:00", at_setting="handover_time", data="scheduled_handover"),
    states=(
        State("open", t("待交接签字", "Awaiting both signatures"), assignee="deputy_manager",
              assignee_fallback=("store_manager",),  # a store without a deputy
              deadline=Deadline("30 minutes after handover_at", ladder=ESCALATE),
              signing=Signing(policy="all", complete="signed")),
        # The store manager countersigns unless they signed; then a sales manager above the store, else the
        # regional manager (a small store's two signers are its manager and an assistant).
        State("countersign", t("差异待店长复核", "Discrepancy: countersignature"), assignee="store_manager",
              assignee_fallback=("sales_manager", "regional_manager"), facts="countersign_facts",
              deadline=Deadline("2 working hours", ladder=(Rung("0", "escalate", to="role:regional_manager"),))),
        State("completed", t("已完成", "Completed"), final=True),
    ),
    transitions=(
        # The till/ERP's figures, before counting: by its service account (an API token of a user holding admin
        # at or above the store), never by the people who count, so what they are checked against is not theirs.
        Transition("set_expected", "open", None, roles=("admin",), schema=SetExpectedSchema, inbox=False,
                   validators=("not_counted_yet",), after=("mark_system_expected",),
                   title=t("登记应有数（系统）", "Expected figures (till/ERP)")),
        Transition("record_counts", "open", None, roles=("store_manager", "deputy_manager", "assistant"),
                   schema=RecordSchema, validators=("tuesday_full_count", "not_signed_yet", "expected_known"),
                   after=("find_discrepancies",), title=t("登记清点", "Record the counts")),
        # Signatures open shortly before the handover time (signing_opens), never days ahead.
        Transition("sign_out", "open", None, roles=("store_manager", "deputy_manager"), schema=Empty, signature=True,
                   validators=("counts_recorded",), opens="signing_opens",
                   title=t("交班签字", "Sign out (outgoing)")),
        Transition("sign_in", "open", None, roles=("store_manager", "deputy_manager", "assistant"), schema=Empty,
                   signature=True, validators=("counts_recorded",), opens="signing_opens",
                   title=t("接班签字", "Sign in (incoming)")),
        Transition("signed", "open", "completed", schema=Empty, unless=("has_discrepancy",)),
        Transition("signed", "open", "countersign", schema=Empty, conditions=("has_discrepancy",)),
        Transition("countersign", "countersign", "completed",
                   roles=("store_manager", "sales_manager", "regional_manager"), schema=Empty,
                   requires_comment=True, not_by=("signers",), title=t("复核签字", "Countersign")),
    ),
)

DEFINITIONS = [DEFINITION]


# ---- the scheduler's payload ----

def scheduled_handover(unit, at) -> dict:
    return {"handover_at": at.isoformat(), "shift": "midday"}


# ---- validators, guards, hooks ----

def _is_tuesday(ctx) -> bool:
    at = ctx.doc.get("handover_at")
    tz = ZoneInfo(ctx.instance.org_unit.timezone)
    return bool(at) and fields.AwareDateTime().deserialize(at).astimezone(tz).weekday() == TUESDAY


def handover_in_window(ctx) -> dict:
    """A handover dated years away would fall overdue (and escalate) at once, or never."""
    return day_window_errors("handover_at", ctx.data["handover_at"], ctx.now, ctx.instance.org_unit, WINDOW, WINDOW)


def tuesday_full_count(ctx) -> dict:
    """Every Tuesday all goods are counted, not only those sold (每周二全部清点)."""
    counts = ctx.data.get("counts")
    if not counts or not _is_tuesday(ctx):
        return {}
    listed = stock.stock_list(ctx.instance.org_unit).skus
    if listed:  # every SKU the store stocks (its stock list), each on a line
        counted = {line["sku"] for line in counts.get("goods", [])}
        missing = [sku for sku in listed if sku not in counted]
        if missing:
            shown = ", ".join(missing[:MISSING_SHOWN]) + (f" … (+{len(missing) - MISSING_SHOWN})"
                                                          if len(missing) > MISSING_SHOWN else "")
            return {"counts.goods": [f"On Tuesdays every SKU the store stocks is counted; missing: {shown}."]}
        return {}
    if not counts.get("full_count") or not counts.get("goods"):
        return {"counts.goods": ["On Tuesdays all goods are counted: set full_count and list every line."]}
    return {}


def signing_opens(instance) -> datetime | None:
    """Both sign at the handover itself: from shortly before the handover time (the unit's
    "signature_window_minutes", default 30) until the step closes; never days ahead."""
    at = (instance.data or {}).get("handover_at")
    if not at:
        return None
    minutes = int(org.setting(instance.org_unit, "signature_window_minutes", SIGNATURE_WINDOW_MINUTES))
    return fields.AwareDateTime().deserialize(at) - timedelta(minutes=minutes)


def _signatures(ctx) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Signature).where(
        Signature.instance_id == ctx.instance.id, Signature.state_seq == ctx.instance.state_seq))


def not_signed_yet(ctx) -> dict:
    return {"counts": ["Already signed: the counts can no longer change."]} if _signatures(ctx) else {}


def counts_recorded(ctx) -> dict:
    return {} if ctx.doc.get("counts") else {"counts": ["Record the counts before signing."]}


def not_counted_yet(ctx) -> dict:
    """The till's figures come before the count: afterwards they could be made to fit it."""
    return {"expected": ["The counts are recorded already: the expected figures come before counting."]} \
        if ctx.doc.get("counts") else {}


def mark_system_expected(ctx) -> None:
    ctx.doc["expected"] = {**ctx.doc["expected"], "source": "system"}


def expected_known(ctx) -> dict:
    """Each expected figure comes from the till/ERP (`expected`) or is typed by the counter."""
    counts, system = ctx.data.get("counts"), ctx.doc.get("expected") or {}
    if not counts:
        return {}
    errors = {}
    if counts.get("cash_expected") is None and "cash" not in system:
        errors["counts.cash_expected"] = ["Type the expected cash (no figure from the till)."]
    known = {line["sku"] for line in system.get("goods", [])}
    missing = [line["sku"] for line in counts.get("goods", []) if line.get("expected") is None
               and line["sku"] not in known]
    if missing:
        errors["counts.goods"] = [f"Type the expected quantity of {', '.join(missing)} (no figure from the till)."]
    return errors


def find_discrepancies(ctx) -> None:
    if ctx.doc.get("counts"):
        ctx.doc["counts"] = with_expected(ctx.doc["counts"], ctx.doc.get("expected"))
        ctx.doc["discrepancies"] = discrepancies(ctx.doc["counts"], _tolerance(ctx))


def with_expected(counts: dict, system: dict | None) -> dict:
    """The counts checked against the till's figures where it gave them (they win over typed ones); the sheet
    says which were self-declared (typed by the people counting)."""
    system = system or {}
    by_sku = {line["sku"]: line["expected"] for line in system.get("goods", [])}
    goods = [{**line, "expected": by_sku[line["sku"]], "expected_source": "system"} if line["sku"] in by_sku
             else {**line, "expected_source": "self_declared"} for line in counts.get("goods", [])]
    cash_from_system = "cash" in system
    return {**counts, "goods": goods,
            "cash_expected": system["cash"] if cash_from_system else counts.get("cash_expected"),
            "cash_expected_source": "system" if cash_from_system else "self_declared",
            "receipts_expected": system.get("receipts_total")}


def countersign_facts(instance) -> list[dict]:
    """What the countersigner signs for: the notes, the receipts, the cash expected against counted, each goods
    line that differs, and whether the expected figures came from the till or were typed by the counters."""
    counts = (instance.data or {}).get("counts") or {}
    goods = counts.get("goods", [])
    facts = [{"label": t("备注", "Notes"), "value": counts.get("notes") or "—"},
             {"label": t("小票合计", "Receipts total"), "value": counts.get("receipts_total") or "—"}]
    if counts.get("receipts_expected"):
        facts.append({"label": t("小票应有（系统）", "Receipts expected (till)"), "value": counts["receipts_expected"]})
    facts += [{"label": t("应有现金", "Cash expected"), "value": str(counts.get("cash_expected") or "—")},
              {"label": t("实点现金", "Cash counted"), "value": str(counts.get("cash_counted") or "—")}]
    for line in goods:
        if line.get("expected") is not None and line["counted"] != line["expected"]:
            facts.append({"label": t(f"货品 {line['sku']} {line.get('name', '')}".strip(),
                                     f"Goods {line['sku']} {line.get('name', '')}".strip()),
                          "value": f"{line['expected']} → {line['counted']} ({line['counted'] - line['expected']:+d})"})
    declared = counts.get("cash_expected_source") != "system" or any(
        line.get("expected_source") != "system" for line in goods)
    facts.append({"label": t("应有数来源", "Expected figures"),
                  "value": t("清点人自报", "self-declared by the counters") if declared
                  else t("收银/ERP 系统", "from the till/ERP")})
    return facts


def _tolerance(ctx) -> Decimal:
    return Decimal(str(org.setting(ctx.instance.org_unit, "handover_cash_tolerance", CASH_TOLERANCE)))


def discrepancies(counts: dict, tolerance: Decimal) -> list[dict]:
    """What does not match: the cash beyond the tolerance, and each goods line counted ≠ expected."""
    found = []
    cash = Decimal(str(counts["cash_counted"])) - Decimal(str(counts["cash_expected"] or 0))
    if abs(cash) > tolerance:
        found.append({"item": "cash", "difference": str(cash)})
    for line in counts.get("goods", []):
        if line.get("expected") is not None and line["counted"] != line["expected"]:
            found.append({"item": line["sku"], "name": line.get("name", ""),
                          "difference": line["counted"] - line["expected"]})
    return found


def has_discrepancy(ctx) -> bool:
    return bool(ctx.doc.get("discrepancies"))
