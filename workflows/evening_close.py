"""Evening close (晚班): from the store's closing routine (至晚七点整, unit setting `closing_time`) the person closing
writes the daily sales report (销售日报: sales by SKU or category, receipts, cash), the 圈圈账 tally (how many of each
style sold) and the stock cards (进销存卡: opening + received − sold = closing per SKU), alone and within 45 minutes
(四十五分钟内独立完成), and signs it; late, it goes to the store manager, then the region, like the handover.

Once signed, the next morning's allocation list (配货清单) is drawn from the 圈圈账 — what sold is what to re-stock —
and goes to the business manager (业务经理, `sales_manager`), who confirms or adjusts it by the unit's morning time
(`morning_time`, default 08:45: 八点四十五分…根据店内圈圈账制定配货清单，交给业务经理).

The 圈圈账 is derived from the sales lines, not typed again: it is the same day's sales counted per style, and a
second copy typed by hand could only disagree with the first."""
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine import dates, deadlines, org
from engine.definition import Deadline, Rung, Schedule, Signing, State, Transition, Workflow
from engine.limits import CODE_MAX, DAY_LINES_MAX, NAME_MAX, SHORT_TEXT_MAX
from workflows.common import Empty, day_window_errors, t

CLOSING_TIME, MORNING_TIME = "19:00", "08:45"  # defaults; a unit sets "closing_time" and "morning_time"
WINDOW = timedelta(days=7)  # a close is for a day within a week of today, either way
CLOSERS = ("assistant", "deputy_manager", "store_manager")


def _money(**kwargs) -> fields.Decimal:
    return fields.Decimal(places=2, as_string=True, validate=validate.Range(min=0), **kwargs)


class SalesLine(Schema):
    """One line of the daily sales report: a SKU (款号), or a whole category when the store reports by category."""

    sku = fields.String(load_default="", validate=validate.Length(max=CODE_MAX))
    category = fields.String(load_default="", validate=validate.Length(max=NAME_MAX))
    name = fields.String(load_default="", validate=validate.Length(max=NAME_MAX))
    quantity = fields.Integer(required=True, validate=validate.Range(min=0))
    amount = _money(required=True)

    @validates_schema
    def sku_or_category(self, data, **kwargs):
        if not data.get("sku") and not data.get("category"):
            raise ValidationError("Give the SKU or the category.", "sku")


class StockCard(Schema):
    """One stock card (进销存卡): the day's movement of one SKU."""

    sku = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX))
    name = fields.String(load_default="", validate=validate.Length(max=NAME_MAX))
    opening = fields.Integer(required=True, validate=validate.Range(min=0))
    received = fields.Integer(load_default=0, validate=validate.Range(min=0))
    sold = fields.Integer(load_default=0, validate=validate.Range(min=0))
    closing = fields.Integer(required=True, validate=validate.Range(min=0))

    @validates_schema
    def balances(self, data, **kwargs):
        expected = data["opening"] + data["received"] - data["sold"]
        if expected != data["closing"]:
            raise ValidationError(f"Opening + received − sold = {expected}, not {data['closing']}.", "closing")


class ReportSchema(Schema):
    """The daily sales report with its stock cards; the 圈圈账 is counted from the sales lines."""

    sales = fields.List(fields.Nested(SalesLine), required=True, validate=validate.Length(max=DAY_LINES_MAX))
    receipts_total = _money(required=True)
    cash = _money(required=True)
    stock_cards = fields.List(fields.Nested(StockCard), load_default=list, validate=validate.Length(max=DAY_LINES_MAX))
    notes = fields.String(load_default="", validate=validate.Length(max=SHORT_TEXT_MAX))

    @validates_schema
    def consistent(self, data, **kwargs):
        """The report adds up: its lines to the receipts, the cash within them, each stock card's sales to the
        report's; errors name the line."""
        errors: dict = {}
        sales = data.get("sales", [])
        total = sum((line["amount"] for line in sales), Decimal("0"))
        if sales and total != data["receipts_total"]:
            errors["receipts_total"] = [f"The sales lines add up to {total:.2f}, not {data['receipts_total']:.2f}."]
        if data["cash"] > data["receipts_total"]:
            errors["cash"] = [f"More than the receipts total {data['receipts_total']:.2f}."]
        sold = sold_by_sku(sales)
        cards: dict = {}
        seen: set = set()
        for n, card in enumerate(data.get("stock_cards", [])):
            if card["sku"] in seen:
                cards[n] = {"sku": [f"{card['sku']} has a stock card already."]}
            elif card["sku"] in sold and card["sold"] != sold[card["sku"]]:
                cards[n] = {"sold": [f"The sales lines sell {sold[card['sku']]} of {card['sku']}, not {card['sold']}."]}
            seen.add(card["sku"])
        if cards:
            errors["stock_cards"] = cards
        if errors:
            raise ValidationError(errors)


class StartSchema(Schema):
    day = fields.Date(required=True, validate=dates.InSpan())
    close_at = fields.AwareDateTime(load_default=None, validate=dates.InSpan())  # omitted: the day at closing_time


class AllocationLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX))
    name = fields.String(load_default="", validate=validate.Length(max=NAME_MAX))
    quantity = fields.Integer(required=True, validate=validate.Range(min=0))


class AllocationSchema(Schema):
    """The business manager's allocation list; omitted, the list drawn from the 圈圈账 stands as it is."""

    lines = fields.List(fields.Nested(AllocationLine), load_default=None, validate=validate.Length(max=DAY_LINES_MAX))

    @validates_schema
    def one_line_per_sku(self, data, **kwargs):
        seen, errors = set(), {}
        for n, line in enumerate(data.get("lines") or []):
            if line["sku"] in seen:
                errors[n] = {"sku": [f"{line['sku']} is listed twice."]}
            seen.add(line["sku"])
        if errors:
            raise ValidationError({"lines": errors})


LATE = (Rung("-15 minutes", "remind"), Rung("0", "escalate", to="role:store_manager"),
        Rung("+30 minutes", "escalate", to="role:regional_manager"))

DEFINITION = Workflow(
    name="evening_close",
    version=1,
    title=t("晚班日结", "Evening close"),
    description=t("销售日报、圈圈账、进销存卡，四十五分钟内完成并签字；次日早班据圈圈账制定配货清单交业务经理。",
                  "Daily sales report, style tally and stock cards, done and signed within 45 minutes; the next "
                  "morning's allocation list, drawn from the tally, goes to the business manager."),
    initial="open",
    start_roles=("store_manager", "deputy_manager"),
    start_schema=StartSchema,
    start_validators=("day_in_window", "close_at_on_the_day"),
    on_start=("set_close_at",),
    schedule=Schedule(every="day", at=CLOSING_TIME, at_setting="closing_time", data="scheduled_close"),
    once_per="day",
    states=(
        # The afternoon shift closes: the deputy, or the store manager in a store without one.
        State("open", t("晚班日结中", "Closing: report, tally, stock cards"), assignee="deputy_manager",
              assignee_fallback=("store_manager",),
              deadline=Deadline("45 minutes after close_at", ladder=LATE),
              signing=Signing(policy="any", complete="signed")),
        # The business manager above the store; where there is none, the regional manager.
        State("allocation", t("配货清单待业务经理确认", "Allocation list: business manager confirms"),
              assignee="sales_manager", assignee_fallback=("regional_manager",),
              deadline=Deadline("0 minutes after allocation.due_at", ladder=(
                  Rung("-30 minutes", "remind"), Rung("0", "escalate", to="role:regional_manager")))),
        State("completed", t("已完成", "Completed"), final=True),
    ),
    transitions=(
        Transition("record_report", "open", None, roles=CLOSERS, schema=ReportSchema, after=("tally",),
                   title=t("填写日报", "Record the day's report")),
        Transition("sign", "open", None, roles=CLOSERS, schema=Empty, signature=True, validators=("report_recorded",),
                   title=t("日结签字", "Sign the close")),
        Transition("signed", "open", "allocation", schema=Empty, after=("draw_allocation",)),
        Transition("confirm_allocation", "allocation", "completed", roles=("sales_manager", "regional_manager"),
                   schema=AllocationSchema, after=("settle_allocation",),
                   title=t("确认配货清单", "Confirm the allocation list")),
    ),
)

DEFINITIONS = [DEFINITION]


# ---- the scheduler's payload ----

def scheduled_close(unit, at) -> dict:
    return {"day": at.date().isoformat(), "close_at": at.isoformat()}


# ---- the day's figures (pure) ----

def sold_by_sku(sales: list[dict]) -> dict[str, int]:
    """Quantity sold per SKU over the sales lines that name one."""
    sold: dict[str, int] = {}
    for line in sales:
        if line.get("sku"):
            sold[line["sku"]] = sold.get(line["sku"], 0) + int(line["quantity"])
    return sold


def tally_of(sales: list[dict]) -> list[dict]:
    """The 圈圈账: pieces sold per style (SKU), best sellers first; lines reported by category have no style."""
    names = {line["sku"]: line.get("name", "") for line in sales if line.get("sku")}
    sold = sold_by_sku(sales)
    return [{"sku": sku, "name": names[sku], "quantity": n}
            for sku, n in sorted(sold.items(), key=lambda item: (-item[1], item[0]))]


def _local(unit, day: str, setting: str, default: str) -> datetime:
    at = deadlines.time_of_day(org.setting(unit, setting, default))
    return datetime.combine(datetime.fromisoformat(day).date(), at, tzinfo=ZoneInfo(unit.timezone))


# ---- validators, guards, hooks ----

def day_in_window(ctx) -> dict:
    """A close dated years away would fall overdue (and escalate) at once, or never."""
    return day_window_errors("day", ctx.data["day"], ctx.now, ctx.instance.org_unit, WINDOW, WINDOW)


def close_at_on_the_day(ctx) -> dict:
    at = ctx.data.get("close_at")
    if at and at.astimezone(ZoneInfo(ctx.instance.org_unit.timezone)).date() != ctx.data["day"]:
        return {"close_at": ["Not on the day of the close (store time)."]}
    return {}


def set_close_at(ctx) -> None:
    if not ctx.doc.get("close_at"):
        ctx.doc["close_at"] = _local(ctx.instance.org_unit, ctx.doc["day"], "closing_time", CLOSING_TIME).isoformat()


def report_recorded(ctx) -> dict:
    return {} if "sales" in ctx.doc else {"sales": ["Record the day's report before signing."]}


def tally(ctx) -> None:
    ctx.doc["tally"] = tally_of(ctx.doc["sales"])
    ctx.doc["totals"] = {"quantity": sum(int(line["quantity"]) for line in ctx.doc["sales"]),
                         "amount": ctx.doc["receipts_total"], "cash": ctx.doc["cash"]}


def draw_allocation(ctx) -> None:
    """The allocation list the business manager receives: re-stock what sold, due the next morning."""
    unit = ctx.instance.org_unit
    next_day = (datetime.fromisoformat(ctx.doc["day"]).date() + timedelta(days=1)).isoformat()
    ctx.doc["allocation"] = {"due_at": _local(unit, next_day, "morning_time", MORNING_TIME).isoformat(),
                             "lines": [dict(line) for line in ctx.doc.get("tally", [])], "confirmed": False}


def settle_allocation(ctx) -> None:
    lines = ctx.doc.pop("lines", None)
    allocation = dict(ctx.doc["allocation"])
    if lines is not None:
        allocation["lines"] = [line for line in lines if line["quantity"]]
        allocation["adjusted"] = True
    allocation["confirmed"] = True
    ctx.doc["allocation"] = allocation
