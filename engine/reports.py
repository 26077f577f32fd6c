"""Reports: what is overdue (by org unit, workflow, step and owner), and how long each step takes (SLA).

Both see only what the caller may see (`queries.visibility`). Time in a step is measured from consecutive
audit events (the event that entered the state to the one that left it), in working hours: the unit's opening
hours on the company's working days.
"""
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import calendar, clock, registry
from engine.db import db, in_ids
from engine.errors import InvalidInput
from engine.models import AuditEvent, Instance, Timer
from engine.org import OrgUnit, User
from engine.queries import visibility
from engine.runtime import assignees

MAX_SCAN = 100_000  # instances one SLA report reads; narrow the period beyond that


@dataclass(frozen=True)
class OverdueRow:
    org_unit: OrgUnit
    workflow: str
    state: str
    state_title: dict
    owners: list        # Holders owing the step now
    count: int
    oldest_due_at: datetime


def overdue(actor: User, org_unit: OrgUnit | None = None) -> list[OverdueRow]:
    """Open instances past their step's deadline, grouped by unit, workflow, step and whoever owes it."""
    now = clock.now()
    stmt = (sa.select(Instance.org_unit_id, Instance.workflow, Instance.definition_version, Instance.state,
                      Instance.created_by_id, Instance.assignee_id, sa.func.count(), sa.func.min(Instance.due_at),
                      sa.func.min(Instance.id))
            .join(OrgUnit, Instance.org_unit_id == OrgUnit.id)
            .where(visibility(actor, now), Instance.due_at <= now, Instance.closed_at.is_(None))
            .group_by(Instance.org_unit_id, Instance.workflow, Instance.definition_version, Instance.state,
                      Instance.created_by_id, Instance.assignee_id))
    if org_unit is not None:
        stmt = stmt.where(OrgUnit.path.startswith(org_unit.path, autoescape=True))
    groups: dict[tuple, dict] = {}
    for unit_id, wf, version, state, _creator, _assignee, count, oldest, sample_id in db.session.execute(stmt):
        compiled = registry.get(wf, version)
        sample = db.session.get(Instance, sample_id)
        owners = assignees(compiled, sample, now)
        key = (unit_id, wf, state, tuple(sorted(h.user.id for h in owners)))
        row = groups.setdefault(key, {"unit": sample.org_unit, "wf": wf, "state": state, "owners": owners,
                                      "title": compiled.states[state].title, "count": 0, "oldest": oldest})
        row["count"] += count
        row["oldest"] = min(row["oldest"], oldest)
    rows = [OverdueRow(g["unit"], g["wf"], g["state"], g["title"], g["owners"], g["count"], g["oldest"])
            for g in groups.values()]
    return sorted(rows, key=lambda r: (r.oldest_due_at, r.org_unit.path, r.workflow, r.state))


@dataclass(frozen=True)
class StepStats:
    state: str
    title: dict
    count: int
    median_hours: float | None
    p90_hours: float | None
    overdue_share: float | None


def sla(actor: User, workflow: str, start: datetime, end: datetime) -> list[StepStats]:
    """Per step of `workflow`: visits that ended in [start, end), the median and 90th percentile of their
    time in the step in working hours, and the share that left the step after its deadline."""
    if end <= start:
        raise InvalidInput("'to' must be after 'from'", field="to")
    compiled = registry.get(workflow)
    now = clock.now()
    # Only the instances with an event in the period can have a visit ending in it: found through the index on
    # the events' time, then looked up by id a chunk at a time, so the report costs what the period holds, not
    # what the company's history holds.
    active = db.session.scalars(sa.select(AuditEvent.instance_id).where(
        AuditEvent.created_at >= start, AuditEvent.created_at < end).distinct()).all()
    may_see = visibility(actor, now)
    units: dict[int, int] = {}
    events: dict[int, list] = defaultdict(list)
    deadlines: dict[tuple[int, int], datetime] = {}
    for chunk in _chunks(sorted(active), 5000):
        if len(units) >= MAX_SCAN:
            break
        visible = dict(db.session.execute(sa.select(Instance.id, Instance.org_unit_id).where(
            in_ids(Instance.id, chunk), Instance.workflow == workflow, may_see)).all())
        if not visible:
            continue
        units.update(visible)
        for e in db.session.execute(sa.select(AuditEvent.instance_id, AuditEvent.from_state, AuditEvent.to_state,
                                              AuditEvent.created_at)
                                    .where(in_ids(AuditEvent.instance_id, visible))
                                    .order_by(AuditEvent.instance_id, AuditEvent.seq)):
            events[e.instance_id].append(e)
        for inst_id, seq, due in db.session.execute(
                sa.select(Timer.instance_id, Timer.state_seq, Timer.due_at)
                .where(in_ids(Timer.instance_id, visible), Timer.rung == 0)):
            deadlines[(inst_id, seq)] = due
    unit_by_id = {u.id: u for u in db.session.scalars(sa.select(OrgUnit).where(OrgUnit.id.in_(set(units.values()))))}
    cal = calendar.current()
    hours: dict[str, list[float]] = defaultdict(list)
    late: dict[str, int] = defaultdict(int)
    for inst_id, evs in events.items():
        unit = unit_by_id[units[inst_id]]
        tz = ZoneInfo(unit.timezone)
        state, entered, state_seq = None, None, 0
        for e in evs:
            if e.from_state == e.to_state and state is not None:
                continue  # an edit or a signature: still in the step
            if state is not None and start <= e.created_at < end:
                hours[state].append(working_hours(entered, e.created_at, tz, unit.opens_at, unit.closes_at, cal))
                due = deadlines.get((inst_id, state_seq))
                if due is not None and e.created_at > due:
                    late[state] += 1
            state, entered, state_seq = e.to_state, e.created_at, state_seq + 1
    result = []
    for s in compiled.wf.states:
        if s.final:
            continue
        values = sorted(hours.get(s.name, []))
        n = len(values)
        result.append(StepStats(
            s.name, s.title, n, round(statistics.median(values), 2) if n else None,
            round(_percentile(values, 0.9), 2) if n else None, round(late[s.name] / n, 4) if n else None))
    return result


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (values sorted)."""
    if len(values) == 1:
        return values[0]
    pos = (len(values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def working_hours(start: datetime, end: datetime, tz: ZoneInfo, opens, closes, cal) -> float:
    """Hours between two instants that fall within opening hours on working days (in the unit's timezone)."""
    if end <= start:
        return 0.0
    a, b = start.astimezone(tz), end.astimezone(tz)
    total = timedelta()
    day: date = a.date()
    while day <= b.date():
        if cal.is_working_day(day):
            open_at = datetime.combine(day, opens, tz)
            close_at = datetime.combine(day, closes, tz)
            lo, hi = max(a, open_at), min(b, close_at)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total.total_seconds() / 3600
