"""Month-end stocktake (月末盘存): on the last day of each month at 19:00 the whole store counts stock
(全体人员盘点), zone by zone; counting and reconciliation (盘货及对账) finish the same day; large variances
are recounted and approved by the store manager; the stocktake report (盘存报表) goes to the accountant
(会计) the next day (第二日) at 12:00: quantity and money variance per line, a reason for every line beyond the
tolerance, who counted and who approved (workflows/stocktake_report.py builds its .xlsx and printable page)."""
import csv
import io
from decimal import ROUND_HALF_UP, Decimal

import openpyxl
from marshmallow import Schema, fields, validate

from engine import org, stock
from engine.definition import Deadline, Rung, Schedule, State, Transition, Workflow
from engine.errors import InvalidPayload
from engine.limits import BOOK_LINES_MAX, COUNT_LINES_MAX, NAME_MAX, TEXT_MAX
from workflows.common import Empty, Month, month_window_errors, t
from workflows.stocktake_report import attachments as report_attachments  # noqa: F401 (named by the definition)

UNIT_COST_MAX = Decimal("99999999.99")
CENT = Decimal("0.01")
TOLERANCE_PCT = Decimal("2")  # a line varies "a lot" beyond max(1 unit, 2 % of book); settable per company


class BookLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default="", validate=validate.Length(max=NAME_MAX))
    quantity = fields.Integer(required=True, validate=validate.Range(min=0))
    # yuan per unit, from the book; optional (a line without it has no money variance on the report)
    unit_cost = fields.Decimal(allow_none=True, places=2, as_string=True,
                               validate=validate.Range(min=0, max=UNIT_COST_MAX))


class CountLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    counted = fields.Integer(required=True, validate=validate.Range(min=0))


class StartSchema(Schema):
    month = Month(required=True)
    book = fields.List(fields.Nested(BookLine), load_default=list, validate=validate.Length(max=BOOK_LINES_MAX))


class BookSchema(Schema):
    book = fields.List(fields.Nested(BookLine), required=True, validate=validate.Length(min=1, max=BOOK_LINES_MAX))


class CorrectionSchema(BookSchema):
    """A corrected book once counting has begun: the counts are dropped and done again against it."""


class CountsSchema(Schema):
    zone = fields.String(required=True, validate=validate.Length(min=1, max=64))  # counter / zone, e.g. "A柜"
    lines = fields.List(fields.Nested(CountLine), required=True, validate=validate.Length(min=1, max=COUNT_LINES_MAX))


class RecountSchema(Schema):
    lines = fields.List(fields.Nested(CountLine), required=True, validate=validate.Length(min=1, max=COUNT_LINES_MAX))


class ReasonLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=TEXT_MAX))


class ApproveSchema(Schema):
    """The approval of variances: a reason per line (required for each line beyond the tolerance)."""

    reasons = fields.List(fields.Nested(ReasonLine), load_default=list,
                          validate=validate.Length(max=COUNT_LINES_MAX))


TO_REGION = Rung("0", "escalate", to="role:regional_manager")
SAME_DAY = Deadline("same day at 23:59", ladder=(Rung("-2 hours", "remind"), TO_REGION))
COUNTERS = ("assistant", "deputy_manager", "store_manager")
BOOK_KEEPERS = ("store_manager", "deputy_manager")
MONTHS_BACK, MONTHS_AHEAD = 12, 1  # a stocktake is for a month from a year ago to next month

DEFINITION = Workflow(
    name="stocktake",
    version=1,
    title=t("月末盘存", "Month-end stocktake"),
    initial="counting",
    start_roles=("store_manager",),
    start_schema=StartSchema,
    start_validators=("month_in_window",),
    schedule=Schedule(every="month", at="last day of the month at 19:00", data="scheduled_stocktake"),
    once_per="month",
    states=(
        State("counting", t("盘点中", "Counting"), assignee="store_manager", deadline=SAME_DAY),
        State("recount", t("复盘", "Recount"), assignee="store_manager", deadline=SAME_DAY),
        State("variance_review", t("差异审批", "Variance approval"), assignee="store_manager", deadline=SAME_DAY,
              assignee_fallback=("regional_manager",)),
        # 第二日作好盘存报表交给会计: the next day by the store's calendar, not the office's next working day
        State("reporting", t("盘存报表", "Stocktake report"), assignee="store_manager",
              deadline=Deadline("next day at 12:00", ladder=(Rung("-2 hours", "remind"), TO_REGION))),
        # the accountant's task email carries the report (.xlsx and the printable page), built when it is sent
        State("accountant_review", t("会计审核", "Accountant review"), assignee="accountant",
              attachments=("report_attachments",),
              deadline=Deadline("2 working days", ladder=(Rung("0", "escalate", to="manager"),))),
        State("closed", t("已完成", "Closed"), final=True),
    ),
    transitions=(
        # Once anything is counted the book is frozen: rewriting it to match the count would hide the variance.
        Transition("load_book", "counting", None, roles=BOOK_KEEPERS, schema=BookSchema,
                   validators=("nothing_counted_yet",), after=("costs_from_the_stock_list",),
                   title=t("导入账面库存", "Load book stock")),
        # A wrong book is corrected openly (with the reason) and every count is done again against the new one.
        Transition("correct_book", ("counting", "recount", "variance_review", "reporting"), "counting",
                   roles=BOOK_KEEPERS, schema=CorrectionSchema, requires_comment=True,
                   validators=("something_counted",), after=("costs_from_the_stock_list", "restart_counting"),
                   title=t("更正账面库存", "Correct the book stock")),
        Transition("enter_counts", "counting", None, roles=COUNTERS, schema=CountsSchema,
                   validators=("skus_on_the_book",), after=("store_zone_counts",), title=t("录入盘点", "Enter counts")),
        Transition("submit_counts", "counting", "recount", roles=COUNTERS, schema=Empty,
                   validators=("ready_to_reconcile",), conditions=("large_variances",), after=("reconcile",),
                   title=t("提交盘点", "Submit counts")),
        Transition("submit_counts", "counting", "reporting", roles=COUNTERS, schema=Empty,
                   validators=("ready_to_reconcile",), unless=("large_variances",), after=("reconcile",),
                   title=t("提交盘点", "Submit counts")),
        Transition("recount", "recount", "variance_review", roles=COUNTERS, schema=RecountSchema,
                   validators=("recounts_flagged_lines",), after=("store_recount", "reconcile"),
                   conditions=("still_large_after_recount",), title=t("复盘", "Recount")),
        Transition("recount", "recount", "reporting", roles=COUNTERS, schema=RecountSchema,
                   validators=("recounts_flagged_lines",), after=("store_recount", "reconcile"),
                   unless=("still_large_after_recount",), title=t("复盘", "Recount")),
        # Whoever counted does not approve their own variances; when the store manager counted, the region does.
        Transition("approve_variances", "variance_review", "reporting", roles=("store_manager", "regional_manager"),
                   schema=ApproveSchema, requires_comment=True, not_by=("enter_counts", "recount"),
                   validators=("reasons_for_large_variances",), after=("store_reasons",),
                   title=t("批准差异", "Approve variances")),
        Transition("send_report", "reporting", "accountant_review", roles=("store_manager",), schema=Empty,
                   after=("write_report",), title=t("报送会计", "Send report to accountant")),
        Transition("accept", "accountant_review", "closed", roles=("accountant",), schema=Empty,
                   title=t("确认", "Accept")),
        Transition("query", "accountant_review", "reporting", roles=("accountant",), schema=Empty,
                   requires_comment=True, title=t("退回质询", "Query")),
    ),
)

DEFINITIONS = [DEFINITION]


# ---- the scheduler's payload, and book stock from CSV ----

def scheduled_stocktake(unit, at) -> dict:
    return {"month": at.strftime("%Y-%m"), "book": []}


HEADERS = {"sku": "sku", "编码": "sku", "商品编码": "sku", "name": "name", "名称": "name", "商品名称": "name",
           "quantity": "quantity", "数量": "quantity", "账面数量": "quantity",
           "unit_cost": "unit_cost", "单价": "unit_cost", "成本单价": "unit_cost"}
OPTIONAL = ("name", "unit_cost")  # an empty cell of these is no value, not a bad one
XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip file


def parse_book_csv(text: str, max_rows: int = BOOK_LINES_MAX) -> list[dict]:
    """Book stock lines from CSV (header sku,name,quantity[,unit_cost] or 编码,名称,数量[,单价]); InvalidPayload
    names the line and the problem, or the number of lines when there are more than `max_rows`; nothing is loaded
    when any line is bad."""
    return parse_book_rows(csv.reader(io.StringIO(text.lstrip("\ufeff"))), max_rows)


def parse_book_file(raw: bytes, max_rows: int = BOOK_LINES_MAX) -> list[dict]:
    """Book stock lines from an uploaded file: an Excel workbook (.xlsx, its first sheet) or UTF-8 CSV, told
    apart by content, not by name; the same columns and checks as `parse_book_csv`."""
    if raw.startswith(XLSX_MAGIC):
        return parse_book_rows(_xlsx_rows(raw), max_rows)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidPayload({"file": ["Neither an Excel workbook (.xlsx) nor UTF-8 CSV text."]}) from None
    return parse_book_csv(text, max_rows)


def _xlsx_rows(raw: bytes):
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file; each means the same to the user
        raise InvalidPayload({"file": ["Not a readable Excel workbook (.xlsx)."]}) from None
    try:
        for row in book.worksheets[0].iter_rows(values_only=True):
            yield ["" if cell is None else _cell_text(cell) for cell in row]
    finally:
        book.close()


def _cell_text(cell) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # Excel stores 100 as 100.0
    return str(cell)


def parse_book_rows(rows, max_rows: int = BOOK_LINES_MAX) -> list[dict]:
    """Book stock lines from rows of cell texts, the first naming the columns (see `parse_book_csv`)."""
    first = next(iter_rows := iter(rows), None)
    if first is None:
        raise InvalidPayload({"file": ["The file is empty."]})
    header = [HEADERS.get(h.strip().lower()) or HEADERS.get(h.strip()) for h in first]
    if not {"sku", "quantity"} <= set(header):
        raise InvalidPayload({"file": ["The first line must name the columns: sku, name, quantity, unit_cost "
                                       "(编码,名称,数量,单价)."]})
    lines, errors, count = [], {}, 0
    for number, row in enumerate(iter_rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        count += 1
        if count > max_rows:  # only counted from here on: the whole file is refused, and says how long it is
            continue
        record = {key: cell.strip() for key, cell in zip(header, row, strict=False)
                  if key and (cell.strip() or key not in OPTIONAL)}
        problems = BookLine().validate(record)
        if problems:
            errors[f"line {number}"] = [f"{k}: {', '.join(v)}" for k, v in problems.items()]
        else:
            lines.append(BookLine().dump(BookLine().load(record)))
    if count > max_rows:
        raise InvalidPayload({"file": [f"Too many lines: {count} (at most {max_rows})."]})
    if errors:
        raise InvalidPayload(errors)
    if not lines:
        raise InvalidPayload({"file": ["No stock lines."]})
    return lines


# ---- reconciliation (pure) ----

def counted_by_sku(doc: dict) -> dict[str, int]:
    totals: dict[str, int] = {}
    for lines in doc.get("counts", {}).values():
        for line in lines:
            totals[line["sku"]] = totals.get(line["sku"], 0) + line["counted"]
    for line in doc.get("recounts", []):  # a recount replaces the zone totals of its SKUs
        totals[line["sku"]] = line["counted"]
    return totals


def variances(doc: dict, tolerance_pct: Decimal) -> list[dict]:
    """Per SKU on the book or counted: book, counted, variance, and whether it is beyond the tolerance; with the
    book's unit cost, the money variance (yuan, 2 dp, as text: the instance's data is JSON)."""
    book = {line["sku"]: line for line in doc.get("book", [])}
    counted = counted_by_sku(doc)
    rows = []
    for sku in sorted(set(book) | set(counted)):
        on_book = book.get(sku, {}).get("quantity", 0)
        count = counted.get(sku, 0)
        limit = max(Decimal(1), Decimal(on_book) * tolerance_pct / 100)
        cost = book.get(sku, {}).get("unit_cost")
        money = None if cost is None else str((Decimal(cost) * (count - on_book)).quantize(CENT, ROUND_HALF_UP))
        rows.append({"sku": sku, "name": book.get(sku, {}).get("name", ""), "book": on_book, "counted": count,
                     "variance": count - on_book, "large": abs(count - on_book) > limit,
                     "unit_cost": cost, "money_variance": money})
    return rows


def _tolerance(ctx) -> Decimal:
    return Decimal(str(org.setting(ctx.instance.org_unit, "stocktake_tolerance_pct", TOLERANCE_PCT)))


# ---- validators, guards, hooks ----

def month_in_window(ctx) -> dict:
    return month_window_errors("month", ctx.data["month"], ctx.now, ctx.instance.org_unit, MONTHS_BACK, MONTHS_AHEAD)


def nothing_counted_yet(ctx) -> dict:
    if ctx.doc.get("counts"):
        return {"book": ["Counting has begun: the book is frozen. Correct it with 'Correct the book stock' "
                         "(the counts are then done again)."]}
    return {}


def something_counted(ctx) -> dict:
    if not ctx.doc.get("counts"):
        return {"book": ["Nothing is counted yet: load the book stock instead."]}
    return {}


def costs_from_the_stock_list(ctx) -> None:
    """Book lines without a unit cost (or a name) take the store's stock list's, so the report can value the
    variances when the till's export carries quantities only."""
    listed = {line["sku"]: line for line in stock.stock_list(ctx.instance.org_unit).lines}
    book = []
    for line in ctx.doc.get("book", []):
        known = listed.get(line["sku"], {})
        cost = line.get("unit_cost")
        book.append({**line, "name": line.get("name") or known.get("name", ""),
                     "unit_cost": known.get("unit_cost") if cost is None else cost})
    ctx.doc["book"] = book


def restart_counting(ctx) -> None:
    """The corrected book replaces the old one; counts, recounts and variances made against it are dropped
    (they stay in the audit trail), and the correction is listed for the report."""
    old = ctx.instance.data.get("book", [])
    for key in ("counts", "recounts", "variances", "report", "counted_by", "recounted_by", "variance_reasons",
                "approved_by"):
        ctx.doc.pop(key, None)
    ctx.doc["book_corrections"] = [*ctx.doc.get("book_corrections", []), {
        "at": ctx.now.isoformat(), "replaced_lines": len(old), "replaced_units": sum(b["quantity"] for b in old),
        "reason": ctx.comment}]


def skus_on_the_book(ctx) -> dict:
    book = {line["sku"] for line in ctx.doc.get("book", [])}
    unknown = sorted({line["sku"] for line in ctx.data["lines"]} - book) if book else []
    return {"lines": [f"Not on the book: {', '.join(unknown)}."]} if unknown else {}


def ready_to_reconcile(ctx) -> dict:
    errors = {}
    if not ctx.doc.get("book"):
        errors["book"] = ["Load the book stock first."]
    if not ctx.doc.get("counts"):
        errors["counts"] = ["No counts entered yet."]
    return errors


def large_variances(ctx) -> bool:
    return any(row["large"] for row in variances(ctx.doc, _tolerance(ctx)))


def flagged(doc: dict) -> set[str]:
    return {row["sku"] for row in doc.get("variances", []) if row["large"]}


def recounts_flagged_lines(ctx) -> dict:
    given, wanted = {line["sku"] for line in ctx.data["lines"]}, flagged(ctx.doc)
    if given != wanted:
        return {"lines": [f"Recount exactly the lines with large variances: {', '.join(sorted(wanted))}."]}
    return {}


def still_large_after_recount(ctx) -> bool:
    doc = {**ctx.doc, "recounts": ctx.doc["lines"]}
    return any(row["large"] for row in variances(doc, _tolerance(ctx)))


def reasons_for_large_variances(ctx) -> dict:
    """Every line still beyond the tolerance needs its reason; a reason is only for a line of this stocktake."""
    given = {line["sku"]: line["reason"].strip() for line in ctx.data["reasons"]}
    rows = {row["sku"]: row for row in ctx.doc.get("variances", [])}
    problems = [f"{sku}: not a line of this stocktake." for sku in sorted(set(given) - set(rows))]
    problems += [f"{sku} {rows[sku]['name']}: a reason is required (variance {rows[sku]['variance']:+d} is beyond "
                 f"the tolerance)." for sku in sorted(flagged(ctx.doc)) if not given.get(sku)]
    return {"reasons": problems} if problems else {}


def _who(ctx) -> dict:
    user = ctx.acting.user
    return {"login": user.login, "name": user.name, "at": ctx.now.isoformat()} if user else {"login": "system"}


def store_zone_counts(ctx) -> None:
    counts = dict(ctx.doc.get("counts", {}))
    zone = ctx.doc.pop("zone")
    counts[zone] = ctx.doc.pop("lines")
    ctx.doc["counts"] = counts
    ctx.doc["counted_by"] = [*ctx.doc.get("counted_by", []), {**_who(ctx), "zone": zone}]


def store_recount(ctx) -> None:
    ctx.doc["recounts"] = ctx.doc.pop("lines")
    ctx.doc["recounted_by"] = [*ctx.doc.get("recounted_by", []), _who(ctx)]


def store_reasons(ctx) -> None:
    ctx.doc["variance_reasons"] = {line["sku"]: line["reason"].strip() for line in ctx.doc.pop("reasons")}
    ctx.doc["approved_by"] = {**_who(ctx), "comment": ctx.comment}


def reconcile(ctx) -> None:
    ctx.doc["variances"] = variances(ctx.doc, _tolerance(ctx))


def money_total(rows: list[dict], key: str) -> str | None:
    """The sum of a money column (text, 2 dp), or None when no line has a unit cost."""
    values = [Decimal(r[key]) for r in rows if r.get(key) is not None]
    return str(sum(values, Decimal("0.00")).quantize(CENT)) if values else None


def write_report(ctx) -> None:
    """The stocktake report (盘存报表) the accountant receives: its totals here, its lines from `variances`
    (workflows/stocktake_report.py lays both out)."""
    rows = variances(ctx.doc, _tolerance(ctx))
    ctx.doc["report"] = {
        "month": ctx.doc["month"], "lines": len(rows), "book_units": sum(r["book"] for r in rows),
        "counted_units": sum(r["counted"] for r in rows), "net_variance": sum(r["variance"] for r in rows),
        "lines_with_variance": sum(1 for r in rows if r["variance"]), "sent_at": ctx.now.isoformat(),
        "book_corrections": len(ctx.doc.get("book_corrections", [])),
        "money_variance": money_total(rows, "money_variance"), "sent_by": _who(ctx),
    }

