"""Deadlines and escalation ladders: armed as rows on entering a state, fired in batches when due.

Firing claims due rows with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite serialises writers), locks their
instances the same way, re-checks each is still in the state visit that armed it, and in one transaction
writes the notifications, fires automatic triggers through the engine and marks the rows fired. A worker
killed mid-batch rolls the whole batch back; another worker fires it. Each rung fires at most once.
"""
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import alarm, calendar, clock, deadlines, mail, metrics, org, registry
from engine.db import db, write_transaction
from engine.definition import ASSIGNEE, CREATOR, RungAction, State
from engine.errors import EngineError, InvalidPayload
from engine.models import Instance, Notification, Timer, TimerStatus
from engine.org import Holder, OrgUnit, Role

log = logging.getLogger(__name__)

BATCH = 500


def step_unit(state: State, inst: Instance, at: datetime) -> OrgUnit:
    """The unit whose people do the step, whose calendar, timezone and hours its deadline counts on: where the
    state's assignee rule is held — the nearest unit at or above the instance's unit with a holder of the role
    (the accountant at HQ: an office; a handover's signers at the store: the store), or, for creator/assignee,
    the nearest unit where that person holds a role covering the instance's unit. Nobody: the instance's unit."""
    rule, unit = state.assignee, inst.org_unit
    if rule in (CREATOR, ASSIGNEE):
        user_id = inst.created_by_id if rule == CREATOR else inst.assignee_id
        return (org.nearest_unit_of(user_id, unit) if user_id else None) or unit
    if rule:
        return org.holding_unit(rule, unit, at) or unit
    return unit


def env_for(inst: Instance, state: State | None = None, at: datetime | None = None) -> deadlines.Env:
    """Where `state`'s deadlines count for the instance (see `step_unit`; no state: the instance's unit)."""
    unit = step_unit(state, inst, at or clock.now()) if state is not None else inst.org_unit
    return deadlines.Env(ZoneInfo(unit.timezone), unit.opens_at, unit.closes_at, calendar.for_unit(unit), inst.data)


def arm(state: State, inst: Instance, now: datetime) -> None:
    """Write the timer rows of `state` for the instance entering it (inside the caller's transaction)."""
    if not state.deadline:
        inst.due_at = None
        return
    env = env_for(inst, state, now)
    try:
        due = deadlines.parse(state.deadline.expression_for(inst.data)).resolve(now, env)
        rows = [(0, "deadline", due)] + [(i, _value(r.action), deadlines.parse(r.at).resolve(due, env))
                                         for i, r in enumerate(state.deadline.ladder, 1)]
    except ValueError as e:  # e.g. "30 minutes after handover_at" and the data has no handover_at
        raise InvalidPayload({"data": [f"cannot compute the deadline of '{state.name}': {e}"]}) from None
    inst.due_at = due
    db.session.add_all(Timer(instance=inst, state=inst.state, state_seq=inst.state_seq, rung=rung, action=action,
                             due_at=at) for rung, action, at in rows)
    for _, _, at in rows:
        alarm.wake_at(db.session, at)


def cancel(inst: Instance) -> None:
    """Cancel the pending timers of the state the instance is leaving."""
    db.session.execute(sa.update(Timer).where(Timer.instance_id == inst.id, Timer.status == TimerStatus.PENDING.value)
                       .values(status=TimerStatus.CANCELLED.value), execution_options={"synchronize_session": False})
    inst.due_at = None


def count_due(now: datetime | None = None) -> int:
    due = db.session.scalar(sa.select(sa.func.count()).select_from(Timer).where(
        Timer.status == TimerStatus.PENDING.value, Timer.due_at <= (now or clock.now())))
    db.session.commit()
    return due


@dataclass
class Run:
    fired: int = 0
    skipped: int = 0
    busy: int = 0  # instance locked by someone acting on it right now: left for the next run
    # Who is told what, resolved once per step and unit for the whole run (a run lasts seconds).
    memo: dict = field(default_factory=dict, repr=False)


def run_due(now: datetime | None = None, batch: int = BATCH) -> Run:
    """Fire every timer due at `now` (default: the clock), batch by batch, until none is left."""
    run = Run()
    busy_ids: set[int] = set()
    while True:
        with write_transaction():
            at = now or clock.now()
            # Plain rows, not ORM objects: a batch is written back with a few bulk statements.
            q = (sa.select(Timer.id, Timer.instance_id, Timer.state, Timer.state_seq, Timer.rung, Timer.due_at)
                 .where(Timer.status == TimerStatus.PENDING.value, Timer.due_at <= at)
                 .order_by(Timer.due_at, Timer.id).limit(batch).with_for_update(skip_locked=True))
            if busy_ids:
                q = q.where(Timer.id.not_in(busy_ids))
            timers = db.session.execute(q).all()
            if not timers:
                break
            _fire_batch(timers, at, run, busy_ids)
    if busy_ids:
        alarm.wake_at(db.session, (now or clock.now()) + timedelta(seconds=2))
        alarm.after_commit(db.session)
    return run


def _fire_batch(timers: list, now: datetime, run: Run, busy_ids: set[int]) -> None:
    ids = {t.instance_id for t in timers}
    locked = {i.id: i for i in db.session.scalars(
        sa.select(Instance).where(Instance.id.in_(ids)).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True))}
    batch = _Batch(now, run.memo)
    for timer in timers:
        inst = locked.get(timer.instance_id)
        if inst is None:
            busy_ids.add(timer.id)
            run.busy += 1
        elif (inst.state, inst.state_seq) != (timer.state, timer.state_seq):
            batch.skipped.append(timer.id)
        else:
            _fire_one(timer, inst, batch)
            batch.fired.append(timer.id)
            batch.fired_due.append(timer.due_at)
    batch.write()
    run.fired += len(batch.fired)
    run.skipped += len(batch.skipped)


class _Batch:
    """What one batch writes, gathered so it is written in a few statements."""

    def __init__(self, now: datetime, memo: dict):
        self.now = now
        self.fired: list[int] = []
        self.fired_due: list[datetime] = []
        self.skipped: list[int] = []
        self.notes: dict[int, str] = {}
        self.notifications: list[dict] = []
        self._memo = memo

    def memo(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def write(self) -> None:
        if self.notifications:
            db.session.execute(sa.insert(Notification), self.notifications)
            alarm.mail_waiting(db.session)
        done = clock.now()
        for status, ids in ((TimerStatus.FIRED, self.fired), (TimerStatus.SKIPPED, self.skipped)):
            if ids:
                db.session.execute(sa.update(Timer).where(Timer.id.in_(ids)).values(status=status.value, fired_at=done),
                                   execution_options={"synchronize_session": False})
        metrics.timers_fired(db.session, self.fired_due, done)  # counted when the batch commits
        for timer_id, note in self.notes.items():
            db.session.execute(sa.update(Timer).where(Timer.id == timer_id).values(note=note),
                               execution_options={"synchronize_session": False})


def _fire_one(timer, inst: Instance, batch: _Batch) -> None:
    from engine.runtime import apply_trigger, assignees

    compiled = registry.get(inst.workflow, inst.definition_version)
    if timer.rung == 0:
        return  # the deadline itself: the step is overdue from now on (instance.due_at says so)
    rung = compiled.states[timer.state].deadline.ladder[timer.rung - 1]
    if rung.action == RungAction.FIRE:
        try:
            with db.session.begin_nested():
                apply_trigger(inst.id, rung.trigger, None, lock=False)
        except EngineError as e:
            batch.notes[timer.id] = f"{rung.trigger}: {e.message}"
            log.warning("timer %s on instance %s: %s", timer.id, inst.id, batch.notes[timer.id])
        return
    # Whoever owes a step depends on the step, the unit and (for creator/assignee rules) the people on it; where
    # segregation of duties applies, on who has acted on this very instance (who signed may not countersign).
    sod = any(t.not_by or t.signature for t in compiled.transitions_from(timer.state))
    step = (compiled.name, compiled.version, timer.state, inst.org_unit_id, inst.created_by_id, inst.assignee_id,
            inst.id if sod else None)
    owners = batch.memo(("owners", *step), lambda: assignees(compiled, inst, batch.now))
    if rung.action == RungAction.REMIND:
        recipients = owners
    else:
        recipients = batch.memo((rung.to, *step),
                                lambda: escalation_recipients(compiled, inst, owners, rung.to, batch.now))
    context = {**batch.memo(("context", *step), lambda: mail.step_facts(inst, owners)), "to": rung.to,
               "due_at": inst.due_at.isoformat() if inst.due_at else None, "rung": timer.rung}
    for holder in _unique(recipients):
        batch.notifications.append({
            "instance_id": inst.id, "user_id": holder.user.id,
            "on_behalf_of_id": holder.on_behalf_of.id if holder.on_behalf_of else None, "kind": _value(rung.action),
            "idempotency_key": f"timer:{timer.id}:{holder.user.id}", "context": context, "status": "pending",
            "attempts": 0, "created_at": batch.now})


def escalation_recipients(compiled, inst: Instance, owners: list[Holder], to: str, at: datetime) -> list[Holder]:
    """Resolve a rung's recipient rule now: manager (of whoever owes the step), manager+N, or role:R."""
    if to.startswith("role:"):
        return org.holders(to[5:], inst.org_unit, at)
    if to == "assignee":
        return owners
    levels = 1 + (int(to[8:]) if to.startswith("manager+") else 0)
    people = [h.on_behalf_of or h.user for h in owners]
    found: list[Holder] = []
    if not people:  # a vacancy: nobody owes the step, so the first level is whom its role reports to
        role = compiled.states[inst.state].assignee
        bosses = org.REPORTS_TO.get(Role(role), ()) if role in {r.value for r in Role} else ()
        found = [h for boss in bosses for h in org.holders(boss.value, inst.org_unit, at)]
        people, levels = [h.on_behalf_of or h.user for h in found], levels - 1
    for _ in range(levels):
        above = [m for p in people for m in org.manager_of(p, inst.org_unit, at)]
        if not above:
            break  # the top of the org chart: the highest level found hears it again rather than nobody
        found, people = above, [h.on_behalf_of or h.user for h in above]
    return found


def _value(action) -> str:
    return str(getattr(action, "value", action))


def _unique(holders: list[Holder]) -> list[Holder]:
    seen, result = set(), []
    for h in holders:
        if h.user.id not in seen:
            seen.add(h.user.id)
            result.append(h)
    return result


def reconcile(now: datetime | None = None, horizon: timedelta | None = None) -> int:
    """Re-arm Redis from the database: a wake-up for each distinct due second within `horizon` (default
    alarm.horizon()), one now if anything is already due, and the mail sender if mail is waiting. Returns
    wake-ups armed."""
    from engine import jobs, queue

    now = now or clock.now()
    q = queue.current()
    dues = db.session.scalars(
        sa.select(Timer.due_at).where(Timer.status == TimerStatus.PENDING.value,
                                      Timer.due_at <= now + (horizon or alarm.horizon())).distinct()).all()
    seconds = {alarm.wake_instant(d, now) for d in dues}  # whatever is overdue: one wake-up, queued now
    for when in sorted(seconds):
        jobs.schedule_fire_due(q, when)
    if db.session.scalar(sa.select(Notification.id).where(mail.due(now)).limit(1)):
        jobs.schedule_send_mail(q, force=True)  # also for a message whose sender was killed and whose lease ran out
    db.session.commit()
    return len(seconds)


def pending(overdue_only: bool = False, org_code: str | None = None, now: datetime | None = None):
    """Pending timers with their instance and unit, soonest first (for `timers list`)."""
    now = now or clock.now()
    q = (sa.select(Timer, Instance, OrgUnit).join(Instance, Timer.instance_id == Instance.id)
         .join(OrgUnit, Instance.org_unit_id == OrgUnit.id).where(Timer.status == TimerStatus.PENDING.value)
         .order_by(Timer.due_at, Timer.id))
    if overdue_only:
        q = q.where(Timer.due_at <= now)
    if org_code:
        q = q.where(OrgUnit.path.startswith(org.unit_by_code(org_code).path))
    return db.session.execute(q).all()
