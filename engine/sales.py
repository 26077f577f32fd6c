"""A store's actual sales, as its evening closes reported them (销售日报): a month of signed daily reports is the
month's actual sales. Plan evaluations and reports read them here instead of retyping them."""
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from engine import dates
from engine.db import db
from engine.models import Instance
from engine.org import OrgUnit

WORKFLOW = "evening_close"
SIGNED = ("allocation", "completed")  # an evening close past its signature (workflows/evening_close.py)


@dataclass
class DailySales:
    """One month's sales at a unit (a store, or every store below a region), from its signed daily reports."""

    month: str
    amount: Decimal = Decimal("0.00")
    cash: Decimal = Decimal("0.00")
    quantity: int = 0
    reports: int = 0
    by_day: dict[str, Decimal] = field(default_factory=dict)  # "YYYY-MM-DD" → receipts, summed over the stores


def daily_sales(unit: OrgUnit, month: str) -> DailySales:
    """The sum of the month's signed daily sales reports at `unit` and every unit below it; `month` is "YYYY-MM".
    A close still open (unsigned) does not count: its figures may change."""
    dates.check_year(int(month[:4]), "month")
    day = Instance.data["day"].as_string()
    rows = db.session.scalars(
        sa.select(Instance.data).join(OrgUnit, Instance.org_unit_id == OrgUnit.id)
        .where(Instance.workflow == WORKFLOW, Instance.state.in_(SIGNED), OrgUnit.path.startswith(unit.path),
               day.like(f"{month}-%"))).all()
    result = DailySales(month)
    for data in rows:
        totals = data.get("totals") or {}
        amount = Decimal(str(totals.get("amount", "0")))
        result.amount += amount
        result.cash += Decimal(str(totals.get("cash", "0")))
        result.quantity += int(totals.get("quantity", 0))
        result.reports += 1
        result.by_day[data["day"]] = result.by_day.get(data["day"], Decimal("0.00")) + amount
    result.by_day = dict(sorted(result.by_day.items()))
    return result
