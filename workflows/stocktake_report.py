"""The stocktake report (盘存报表) an accountant can use: per line the book and counted quantities, the quantity
and money variance and the reason; the totals; who counted, who recounted, who approved and who sent it.

Built from the instance's data as it is when asked (a download, or the accountant's email when it is sent), in
the reader's language, as an Excel workbook (.xlsx) and as a printable HTML page (print CSS, A4 landscape)."""
import io
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from openpyxl import Workbook
from openpyxl.styles import Font

from engine.errors import UnknownInstance

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML = "text/html"
MONEY = "#,##0.00"
QTY = "#,##0"
WHEN = "yyyy-mm-dd hh:mm"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would take for a formula (CSV/XLSX injection)

LABELS = {
    "zh": {"title": "月末盘存报表", "store": "门店", "month": "月份", "state": "状态", "sku": "编码", "name": "名称",
           "book": "账面数量", "counted": "实盘数量", "variance": "数量差异", "unit_cost": "单价（元）",
           "money_variance": "金额差异（元）", "reason": "差异原因", "total": "合计", "counted_by": "盘点人",
           "recounted_by": "复盘人", "approved_by": "差异批准人", "approval_note": "批准意见",
           "sent_by": "报送人", "sent_at": "报送时间", "lines_with_variance": "有差异的行数",
           "book_corrections": "账面更正次数", "none": "—", "not_needed": "无需批准（差异均在容差内）",
           "sheet": "盘存报表"},
    "en": {"title": "Month-end stocktake report", "store": "Store", "month": "Month", "state": "State", "sku": "SKU",
           "name": "Name", "book": "Book qty", "counted": "Counted", "variance": "Qty variance",
           "unit_cost": "Unit cost (CNY)", "money_variance": "Money variance (CNY)", "reason": "Reason",
           "total": "Total", "counted_by": "Counted by", "recounted_by": "Recounted by",
           "approved_by": "Variances approved by", "approval_note": "Approval note", "sent_by": "Sent by",
           "sent_at": "Sent at", "lines_with_variance": "Lines with a variance", "book_corrections": "Book corrections",
           "none": "—", "not_needed": "Not needed (all variances within the tolerance)", "sheet": "Stocktake"},
}
COLUMNS = ("sku", "name", "book", "counted", "variance", "unit_cost", "money_variance", "reason")

_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


@dataclass
class Report:
    """The report's facts, typed: quantities as int, money as Decimal (or None without a unit cost), times local."""

    store: str
    month: str
    state: str
    lines: list[dict]
    totals: dict
    counted_by: list[dict]
    recounted_by: list[dict]
    approved_by: dict | None
    sent_by: dict | None
    sent_at: datetime | None
    book_corrections: int


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _local(iso: str | None, tz: ZoneInfo) -> datetime | None:
    return datetime.fromisoformat(iso).astimezone(tz).replace(tzinfo=None) if iso else None


def facts(inst) -> Report:
    """The report of a stocktake instance, as its data stands (lines appear once the counts are submitted)."""
    doc = inst.data or {}
    tz = ZoneInfo(inst.org_unit.timezone or "Asia/Shanghai")
    reasons = doc.get("variance_reasons", {})
    lines = [{"sku": r["sku"], "name": r.get("name", ""), "book": r["book"], "counted": r["counted"],
              "variance": r["variance"], "unit_cost": _money(r.get("unit_cost")),
              "money_variance": _money(r.get("money_variance")), "reason": reasons.get(r["sku"], ""),
              "large": r.get("large", False)} for r in doc.get("variances", [])]
    money = [r["money_variance"] for r in lines if r["money_variance"] is not None]
    totals = {"book": sum(r["book"] for r in lines), "counted": sum(r["counted"] for r in lines),
              "variance": sum(r["variance"] for r in lines),
              "money_variance": sum(money, Decimal("0.00")) if money else None,
              "lines_with_variance": sum(1 for r in lines if r["variance"])}

    def people(entries):
        return [{**e, "at": _local(e.get("at"), tz)} for e in entries]

    report = doc.get("report") or {}
    approved = doc.get("approved_by")
    return Report(store=f"{inst.org_unit.name} ({inst.org_unit.code})", month=doc.get("month", ""), state=inst.state,
                  lines=lines, totals=totals, counted_by=people(doc.get("counted_by", [])),
                  recounted_by=people(doc.get("recounted_by", [])),
                  approved_by=people([approved])[0] if approved else None, sent_by=report.get("sent_by"),
                  sent_at=_local(report.get("sent_at"), tz), book_corrections=len(doc.get("book_corrections", [])))


def _names(entries: list[dict], with_zone: bool = False) -> str:
    return "、".join((e.get("name") or e.get("login", "")) + (f"（{e['zone']}）" if with_zone and e.get("zone") else "")
                    for e in entries)


def _text(cell, value: str) -> None:
    """Text that stays text: a value a spreadsheet would run as a formula is stored as a string, quoted."""
    cell.value = value
    if value.startswith(FORMULA_STARTS):
        cell.data_type = "s"
        cell.quotePrefix = True


def xlsx(report: Report, lang: str) -> bytes:
    """The report as an Excel workbook: headers in `lang`, numbers as numbers, money `#,##0.00`, times as dates."""
    label = LABELS[lang]
    book = Workbook()
    sheet = book.active
    sheet.title = label["sheet"]
    bold = Font(bold=True)
    _text(sheet.cell(1, 1), label["title"])
    sheet.cell(1, 1).font = Font(bold=True, size=14)
    head = [("store", report.store), ("month", report.month),
            ("counted_by", _names(report.counted_by, with_zone=True) or label["none"]),
            ("recounted_by", _names(report.recounted_by) or label["none"]),
            ("approved_by", _names([report.approved_by]) if report.approved_by else label["not_needed"]),
            ("approval_note", (report.approved_by or {}).get("comment") or label["none"]),
            ("sent_by", _names([report.sent_by]) if report.sent_by else label["none"]),
            ("sent_at", report.sent_at), ("book_corrections", report.book_corrections)]
    for row, (key, value) in enumerate(head, start=2):
        sheet.cell(row, 1, label[key]).font = bold
        cell = sheet.cell(row, 2)
        if isinstance(value, str):
            _text(cell, value)
        else:
            cell.value = value
            if isinstance(value, datetime):
                cell.number_format = WHEN
    top = len(head) + 3
    for col, key in enumerate(COLUMNS, start=1):
        sheet.cell(top, col, label[key]).font = bold
    for row, line in enumerate(report.lines, start=top + 1):
        for col, key in enumerate(COLUMNS, start=1):
            _cell(sheet.cell(row, col), key, line[key])
    total_row = top + len(report.lines) + 1
    sheet.cell(total_row, 1, label["total"]).font = bold
    for key in ("book", "counted", "variance", "money_variance"):
        cell = sheet.cell(total_row, COLUMNS.index(key) + 1)
        _cell(cell, key, report.totals[key])
        cell.font = bold
    sheet.cell(total_row + 1, 1, label["lines_with_variance"]).font = bold
    sheet.cell(total_row + 1, 2, report.totals["lines_with_variance"])
    for col, width in zip("ABCDEFGH", (14, 24, 11, 11, 11, 13, 16, 40), strict=True):
        sheet.column_dimensions[col].width = width
    sheet.freeze_panes = sheet.cell(top + 1, 1)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(cell, key: str, value) -> None:
    if isinstance(value, str):
        _text(cell, value)
        return
    cell.value = value
    if key in ("unit_cost", "money_variance"):
        cell.number_format = MONEY
    elif isinstance(value, int):
        cell.number_format = QTY


def html(report: Report, lang: str) -> str:
    """The report as a print-ready HTML page (A4 landscape; the browser's print makes the PDF)."""
    return _templates.get_template("stocktake_report.html").render(report=report, label=LABELS[lang], lang=lang,
                                                                   columns=COLUMNS, names=_names)


def filename(inst, ext: str) -> str:
    """e.g. stocktake-S1-2026-11.xlsx (ASCII: every mail client and browser keeps it)."""
    code = re.sub(r"[^A-Za-z0-9_-]", "_", inst.org_unit.code)
    return f"stocktake-{code}-{re.sub(r'[^0-9-]', '', str((inst.data or {}).get('month', inst.id)))}.{ext}"


def attachments(inst, lang: str) -> list[tuple[str, str, bytes]]:
    """The report as the accountant's email carries it: the workbook and the printable page."""
    report = facts(inst)
    return [(filename(inst, "xlsx"), XLSX, xlsx(report, lang)),
            (filename(inst, "html"), HTML, html(report, lang).encode("utf-8"))]


def download(inst, ext: str, lang: str) -> tuple[str, str, bytes]:
    """(filename, mime type, content) of an instance's report as .xlsx or .html; UnknownInstance (404) when the
    instance has no report (only stocktakes have one)."""
    if inst.workflow != "stocktake":
        raise UnknownInstance(f"instance {inst.id} has no report", instance=inst.id)
    report = facts(inst)
    if ext == "xlsx":
        return filename(inst, "xlsx"), XLSX, xlsx(report, lang)
    return filename(inst, "html"), HTML, html(report, lang).encode("utf-8")
