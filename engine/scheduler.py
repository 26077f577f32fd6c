"""Instances that start by themselves: every store's stocktake at month end, every store's daily handover.

Each workflow may carry a `Schedule` (definition.py). Every worker runs `run()` each reconcile interval;
the instance's `dedupe_key` ("stocktake:SH01:2026-11") makes it at most one per unit per period, however
many workers race for it.
"""
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import calendar, clock, deadlines, org, registry, runtime
from engine.db import db
from engine.errors import Duplicate, EngineError
from engine.models import Instance
from engine.org import OrgUnit

log = logging.getLogger(__name__)


def occurrence(schedule, unit: OrgUnit, now: datetime) -> tuple[str, datetime]:
    """(period, instant) of the schedule's occurrence in the unit's current period, in the unit's time."""
    tz = ZoneInfo(unit.timezone)
    local = now.astimezone(tz)
    if schedule.every == "month":
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        env = deadlines.Env(tz, unit.opens_at, unit.closes_at, calendar.for_unit(unit))
        return local.strftime("%Y-%m"), deadlines.parse(schedule.at).resolve(first, env)
    at = schedule.at
    if schedule.at_setting:
        at = org.setting(unit, schedule.at_setting, at)
    return local.date().isoformat(), datetime.combine(local.date(), deadlines.time_of_day(at), tzinfo=tz)


def run(now: datetime | None = None, workflow: str | None = None) -> dict[str, int]:
    """Start whatever is due and not started yet (of one `workflow`, or all); returns how many were started,
    per workflow."""
    now = now or clock.now()
    started: dict[str, int] = {}
    for compiled in registry.latest():
        schedule = compiled.wf.schedule
        if schedule is None or workflow not in (None, compiled.name):
            continue
        units = db.session.scalars(sa.select(OrgUnit).where(OrgUnit.kind == schedule.unit_kind, OrgUnit.active)
                                   .order_by(OrgUnit.code)).all()
        due = {}
        for unit in units:
            period, at = occurrence(schedule, unit, now)
            if at <= now:
                due[f"{compiled.name}:{unit.code}:{period}"] = (unit, at)
        if not due:
            continue
        taken = set(db.session.scalars(sa.select(Instance.dedupe_key).where(Instance.dedupe_key.in_(due))))
        db.session.commit()
        for key, (unit, at) in due.items():
            if key in taken:
                continue
            try:
                runtime.start(compiled.name, unit, None, compiled.functions[schedule.data](unit, at), dedupe_key=key)
                started[compiled.name] = started.get(compiled.name, 0) + 1
            except Duplicate:
                pass  # another worker got there first
            except EngineError as e:
                log.error("could not start %s: %s", key, e.message)
    return started
