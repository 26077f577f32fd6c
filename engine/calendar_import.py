"""Reading an official statutory-holiday list (the State Council's notice, typed up by an admin): one row per
day — date, off|working, name — as CSV (UTF-8, with or without a header) or an Excel sheet (.xlsx)."""
import csv
import io
from datetime import date, datetime

from openpyxl import load_workbook

from engine.errors import InvalidInput

KINDS = {"off": False, "working": True, "休": False, "班": True}


def read(content: bytes, filename: str) -> list[tuple[date, bool, str]]:
    """The rows of an official list as (day, working, name); InvalidInput (field `file`) naming the first bad
    row and why."""
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        except Exception:  # openpyxl raises many kinds for a file that is not a workbook
            raise InvalidInput("not an Excel workbook (.xlsx)", field="file") from None
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("not UTF-8 text (save the CSV as UTF-8)", field="file") from None
        rows = list(csv.reader(io.StringIO(text)))
    days = []
    for i, row in enumerate(rows, 1):
        cells = ["" if c is None else c for c in row]
        if not any(str(c).strip() for c in cells):
            continue
        if i == 1 and str(cells[0]).strip().lower() in ("date", "日期"):
            continue  # a header
        days.append(_row(i, cells))
    return days


def _row(i: int, cells: list) -> tuple[date, bool, str]:
    if len(cells) < 2:
        raise InvalidInput(f"row {i}: expected date, off|working, name", field="file")
    value = cells[0]
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidInput(f"row {i}: '{value}' is not a date (YYYY-MM-DD)", field="file") from None
    kind = str(cells[1]).strip().lower()
    if kind not in KINDS:
        raise InvalidInput(f"row {i}: '{cells[1]}' is neither off nor working", field="file")
    name = str(cells[2]).strip() if len(cells) > 2 else ""
    return day, KINDS[kind], name
