"""Annual targets (年度目标) per org unit and per rep, broken down (分解) into months, weeks and working days
on the unit's calendar (engine.calendar.for_unit: office working days, or every day a store opens), in proportion
to those days."""
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.calendar import BusinessCalendar, StoreCalendar
from engine.db import db

METRICS = ("amount", "new_customers", "visits")


class AnnualTarget(db.Model):
    __tablename__ = "annual_targets"
    __table_args__ = (sa.UniqueConstraint("year", "org_unit_id", "user_id", name="uq_annual_targets_owner"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)  # None: the unit's own
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    new_customers: Mapped[int] = mapped_column(default=0)
    visits: Mapped[int] = mapped_column(default=0)


@dataclass(frozen=True)
class Targets:
    amount: Decimal
    new_customers: int
    visits: int

    def as_dict(self) -> dict:
        return {"amount": str(self.amount), "new_customers": self.new_customers, "visits": self.visits}


def set_annual(year: int, unit_id: int, user_id: int | None, amount, new_customers: int, visits: int) -> AnnualTarget:
    """Record (or replace) an annual target; the caller commits."""
    row = db.session.scalar(sa.select(AnnualTarget).where(
        AnnualTarget.year == year, AnnualTarget.org_unit_id == unit_id,
        AnnualTarget.user_id.is_(None) if user_id is None else AnnualTarget.user_id == user_id))
    row = row or AnnualTarget(year=year, org_unit_id=unit_id, user_id=user_id)
    row.amount, row.new_customers, row.visits = Decimal(str(amount)), int(new_customers), int(visits)
    db.session.add(row)
    return row


def annual(year: int, unit_ids: list[int], user_id: int | None) -> Targets | None:
    """The rep's own annual target at the nearest of `unit_ids` (nearest first), or None."""
    rows = {r.org_unit_id: r for r in db.session.scalars(sa.select(AnnualTarget).where(
        AnnualTarget.year == year, AnnualTarget.org_unit_id.in_(unit_ids), AnnualTarget.user_id == user_id))}
    for unit_id in unit_ids:
        if unit_id in rows:
            r = rows[unit_id]
            return Targets(r.amount, r.new_customers, r.visits)
    return None


def _working_days(cal: BusinessCalendar | StoreCalendar, first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if cal.is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def _share(total, part: int, whole: int, integer: bool):
    if whole == 0:
        return 0 if integer else Decimal("0.00")
    value = Decimal(str(total)) * part / whole
    return int(value.to_integral_value(ROUND_HALF_UP)) if integer else value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def month_of(year_targets: Targets, year: int, month: int, cal: BusinessCalendar | StoreCalendar) -> Targets:
    """The month's share of an annual target, by the month's share of the year's working days."""
    year_days = len(_working_days(cal, date(year, 1, 1), date(year, 12, 31)))
    first = date(year, month, 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    month_days = len(_working_days(cal, first, last))
    return Targets(_share(year_targets.amount, month_days, year_days, False),
                   _share(year_targets.new_customers, month_days, year_days, True),
                   _share(year_targets.visits, month_days, year_days, True))


def breakdown(month_targets: Targets, year: int, month: int, cal: BusinessCalendar | StoreCalendar) -> dict:
    """Weekly (ISO weeks, the part inside the month) and daily (each working day) targets for a month.
    Rounding is settled on the last week and the last day, so the parts add up to the month exactly."""
    first = date(year, month, 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    days = _working_days(cal, first, last)
    weeks: dict[str, list[date]] = {}
    for day in days:
        iso = day.isocalendar()
        weeks.setdefault(f"{iso.year}-W{iso.week:02d}", []).append(day)
    return {"weeks": _split(month_targets, [(k, len(v)) for k, v in weeks.items()], len(days), "week"),
            "days": _split(month_targets, [(d.isoformat(), 1) for d in days], len(days), "date")}


def _split(total: Targets, parts: list[tuple[str, int]], whole: int, label: str) -> list[dict]:
    rows, given = [], {m: 0 for m in METRICS}
    for i, (key, n) in enumerate(parts):
        row = {label: key, "working_days": n}
        for metric in METRICS:
            value = getattr(total, metric)
            integer = metric != "amount"
            share = (Decimal(str(value)) - given[metric] if not integer else value - given[metric]) \
                if i == len(parts) - 1 else _share(value, n, whole, integer)
            given[metric] += share
            row[metric] = share if integer else str(share)
        rows.append(row)
    return rows
