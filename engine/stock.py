"""A store's stock list (在库货品清单): every SKU the store stocks, with its name and unit cost.

It comes from the store's last stocktake book (once that stocktake reached its report: the book was checked
against the count) or from an import (CSV or .xlsx, `flask stock import`, `PUT /org-units/{code}/stock-list`);
whichever is newer is the list. Tuesday's handover counts every listed SKU (每周二清点所有货品).
"""
import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock, org
from engine.admin import UnknownObject
from engine.db import UTCDateTime, db, write_transaction
from engine.errors import InvalidPayload, NotPermitted
from engine.limits import BOOK_LINES_MAX
from engine.models import Instance
from engine.org import OrgUnit

# a stocktake in one of these has had its book checked against the count
BOOK_CHECKED = ("reporting", "accountant_review", "closed")
HEADERS = {"sku": "sku", "编码": "sku", "商品编码": "sku", "name": "name", "名称": "name", "商品名称": "name",
           "unit_cost": "unit_cost", "cost": "unit_cost", "单价": "unit_cost", "成本": "unit_cost",
           "单位成本": "unit_cost"}


class StockItem(db.Model):
    """One SKU of an imported stock list (a store's list is all its rows, replaced whole by each import)."""

    __tablename__ = "stock_items"
    __table_args__ = (sa.UniqueConstraint("org_unit_id", "sku", name="uq_stock_items_unit_sku"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    sku: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    unit_cost: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockLine(Schema):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    unit_cost = fields.Decimal(load_default=None, places=2, as_string=True, validate=validate.Range(min=0))


@dataclass(frozen=True)
class StockList:
    source: str                 # "import", "stocktake" (its book) or "none"
    as_of: datetime | None
    lines: list[dict]           # {sku, name, unit_cost}

    @property
    def skus(self) -> list[str]:
        return [line["sku"] for line in self.lines]


def stock_list(unit: OrgUnit) -> StockList:
    """The store's list: the newer of its last import and its last checked stocktake book."""
    rows = db.session.scalars(sa.select(StockItem).where(StockItem.org_unit_id == unit.id)
                              .order_by(StockItem.sku)).all()
    imported = StockList("import", rows[0].loaded_at, [
        {"sku": r.sku, "name": r.name, "unit_cost": None if r.unit_cost is None else f"{r.unit_cost:.2f}"}
        for r in rows]) if rows else None
    take = db.session.scalars(sa.select(Instance).where(
        Instance.workflow == "stocktake", Instance.org_unit_id == unit.id, Instance.state.in_(BOOK_CHECKED))
        .order_by(Instance.state_entered_at.desc()).limit(1)).first()
    booked = StockList("stocktake", take.state_entered_at, [
        {"sku": b["sku"], "name": b.get("name", ""), "unit_cost": b.get("unit_cost")}
        for b in take.data.get("book", [])]) if take and take.data.get("book") else None
    found = [s for s in (imported, booked) if s is not None]
    return max(found, key=lambda s: s.as_of) if found else StockList("none", None, [])


def replace(unit: OrgUnit, lines: list[dict]) -> StockList:
    """Replace the store's imported list with `lines` (parsed by `parse`), in one transaction it commits."""
    if unit.kind != "store":
        raise InvalidPayload({"org_unit": [f"'{unit.code}' is no store: only a store keeps a stock list."]})
    with write_transaction():
        now = clock.now()
        db.session.execute(sa.delete(StockItem).where(StockItem.org_unit_id == unit.id))
        db.session.add_all([StockItem(org_unit_id=unit.id, sku=line["sku"], name=line.get("name", ""),
                                      unit_cost=line.get("unit_cost"), loaded_at=now) for line in lines])
    return stock_list(unit)


def parse(content: bytes, filename: str, max_rows: int = BOOK_LINES_MAX) -> list[dict]:
    """Stock lines from a CSV (UTF-8) or .xlsx file whose first row names the columns (sku, name, unit_cost or
    编码, 名称, 单价); InvalidPayload names each bad line, and nothing is loaded when any is bad."""
    if filename.lower().endswith(".xlsx"):
        table = _xlsx_rows(content)
    elif filename.lower().endswith(".csv"):
        try:
            table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        except UnicodeDecodeError:
            raise InvalidPayload({"file": ["Not UTF-8 text."]}) from None
    else:
        raise InvalidPayload({"file": ["A .csv or .xlsx file."]})
    if not table:
        raise InvalidPayload({"file": ["The file is empty."]})
    header = [HEADERS.get(str(h or "").strip().lower()) or HEADERS.get(str(h or "").strip()) for h in table[0]]
    if "sku" not in header:
        raise InvalidPayload({"file": ["The first line must name the columns: sku, name, unit_cost (编码,名称,单价)."]})
    lines, errors, seen = [], {}, set()
    data = [(n, row) for n, row in enumerate(table[1:], start=2) if any(str(c or "").strip() for c in row)]
    if len(data) > max_rows:
        raise InvalidPayload({"file": [f"Too many lines: {len(data)} (at most {max_rows})."]})
    for number, row in data:
        record = {key: _cell(cell) for key, cell in zip(header, row, strict=False) if key}
        record = {k: v for k, v in record.items() if v != "" or k == "sku"}
        try:
            line = StockLine().load(record)
        except ValidationError as e:
            errors[f"line {number}"] = [f"{k}: {', '.join(v)}" for k, v in e.messages_dict.items()]
            continue
        if line["sku"] in seen:
            errors[f"line {number}"] = [f"sku: {line['sku']} is listed twice."]
        seen.add(line["sku"])
        lines.append(line)
    if errors:
        raise InvalidPayload(errors)
    if not lines:
        raise InvalidPayload({"file": ["No stock lines."]})
    return lines


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a SKU typed as a number in Excel
    return str(value).strip()


def _xlsx_rows(content: bytes) -> list[tuple]:
    from openpyxl import load_workbook  # only an Excel import needs it

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is no workbook
        raise InvalidPayload({"file": ["Not an Excel .xlsx workbook."]}) from None
    try:
        return [tuple(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


KEEPERS = ("store_manager", "deputy_manager", "admin")


def store_for_keeper(actor, code: str) -> OrgUnit:
    """The store `code` when `actor` may replace its stock list: its store or deputy manager (or their stand-in),
    or an administrator over it. Someone with no role there learns nothing (UnknownObject, a 404); a colleague
    is refused (403)."""
    found = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == code))
    held = set()
    if found is not None and actor.active:
        for user, principal in org.principals(actor, clock.now()):  # a stand-in keeps it for whom they stand in
            held |= org.roles_at(principal or user, found)
    if not held:
        raise UnknownObject(f"no org unit '{code}'", org_unit=code)
    if not held & set(KEEPERS):
        raise NotPermitted(f"'{actor.login}' may not change the stock list of '{code}' "
                           f"(needs one of: {', '.join(KEEPERS)})")
    return found
