"""Read side for the API: what a person may see, instance listings with filters and keyset pagination,
an instance's pending deadlines, and the people and units an admin manages.

Visibility is the same rule as `authority.can_view`, written as SQL so a listing never loads what the caller
may not see: a role held (by the caller or whoever delegated to them) at the instance's unit or above, or a
part in the instance (creator, assignee).
"""
import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine import clock, org, registry
from engine.authority import can_view
from engine.db import db
from engine.errors import InvalidInput, UnknownInstance
from engine.models import Instance, Timer, TimerStatus
from engine.org import OrgUnit, User

MAX_PAGE = 200


def visibility(actor: User, at: datetime | None = None):
    """A SQL condition on Instance, true for the instances `actor` may see.

    Units are resolved to ids in a subquery (a prefix match on the indexed `path`), so the instance side is
    `org_unit_id IN (...)`: with the (org_unit_id, id) index a store's page is a short index range however many
    instances the company has, and a company-wide reader walks the primary key.
    """
    if not actor.active:
        return sa.false()
    at = at or clock.now()
    persons = [principal or user for user, principal in org.principals(actor, at)]
    person_ids = [p.id for p in persons]
    paths = sorted({unit.path for p in persons for _, unit in org.roles_of(p)})
    # A path covered by a shorter one adds nothing: keep the OR list short for people with many roles.
    paths = [p for i, p in enumerate(paths) if not any(p.startswith(q) for q in paths[:i])]
    clauses = [Instance.created_by_id.in_(person_ids), Instance.assignee_id.in_(person_ids)]
    if paths:
        clauses.insert(0, Instance.org_unit_id.in_(units_under(paths)))
    return sa.or_(*clauses)


def units_under(paths: list[str]):
    """A subquery of the ids of the units at or below any of `paths`."""
    return sa.select(OrgUnit.id).where(sa.or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in paths)))


# Listing a unit's instances newest first, and keyset pages of it.
ix_instances_org_unit_id_id = sa.Index("ix_instances_org_unit_id_id", Instance.org_unit_id, Instance.id)


def visible_instance(instance_id: int, actor: User) -> Instance:
    """The instance if `actor` may see it; UnknownInstance otherwise (a stranger learns nothing, not even
    that it exists)."""
    inst = db.session.get(Instance, instance_id)
    if inst is None or not can_view(inst, actor, clock.now()):
        raise UnknownInstance(f"no instance {instance_id}", instance=instance_id)
    return inst


@dataclass
class Page:
    items: list
    next_cursor: str | None


def encode_cursor(value: int) -> str:
    """An opaque page cursor for the last id of a page."""
    return base64.urlsafe_b64encode(f"i:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor stands for; InvalidInput (422) for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "i" or not 0 < int(value) < 2**31:
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid cursor", field="cursor") from None


def list_instances(actor: User, *, workflow: str | None = None, state: str | None = None,
                   org_unit: str | None = None, overdue: bool | None = None, created_by: str | None = None,
                   q: str | None = None, cursor: str | None = None, limit: int = 50) -> Page:
    """The instances `actor` may see, newest first, `limit` at a time. Keyset pagination on the primary key:
    each page is an index range scan however deep it is (`cursor` is the previous page's `next_cursor`)."""
    now = clock.now()
    limit = max(1, min(limit, MAX_PAGE))
    stmt = sa.select(Instance).where(visibility(actor, now)).order_by(Instance.id.desc()).limit(limit + 1)
    if workflow:
        stmt = stmt.where(Instance.workflow == workflow)
    if state:
        stmt = stmt.where(Instance.state == state)
    if org_unit:
        stmt = stmt.where(Instance.org_unit_id.in_(units_under([org.unit_by_code(org_unit).path])))
    if overdue is True:
        stmt = stmt.where(Instance.due_at <= now, Instance.closed_at.is_(None))
    elif overdue is False:
        stmt = stmt.where(sa.or_(Instance.due_at.is_(None), Instance.due_at > now))
    if created_by:
        creator = db.session.scalar(sa.select(User.id).where(User.login == created_by))
        stmt = stmt.where(Instance.created_by_id == creator)
    if q:
        stmt = stmt.where(_search(q))
    if cursor:
        stmt = stmt.where(Instance.id < decode_cursor(cursor))
    rows = db.session.scalars(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more and rows else None)


def _search(q: str):
    """Free text: an instance number, or text anywhere in the instance's data (customer, reason, ...)."""
    q = q.strip()
    text = sa.cast(Instance.data, sa.Text)
    clauses = [text.contains(q, autoescape=True)]
    if q.lstrip("#").isdigit() and len(q) < 11 and int(q.lstrip("#")) < 2**31:
        clauses.append(Instance.id == int(q.lstrip("#")))
    return sa.or_(*clauses)


@dataclass(frozen=True)
class PendingDeadline:
    due_at: datetime
    rung: int
    action: str        # deadline (the step becomes overdue), remind, escalate, fire
    to: str | None     # for remind/escalate: assignee, manager, manager+N, role:R
    trigger: str | None


def pending_deadlines(inst: Instance) -> list[PendingDeadline]:
    """The current step's pending timers, soonest first, with what happens when each falls due."""
    timers = db.session.scalars(sa.select(Timer).where(
        Timer.instance_id == inst.id, Timer.status == TimerStatus.PENDING.value).order_by(Timer.due_at, Timer.rung))
    compiled = registry.get(inst.workflow, inst.definition_version)
    result = []
    for t in timers:
        state = compiled.states.get(t.state)
        rung = state.deadline.ladder[t.rung - 1] if t.rung and state and state.deadline else None
        result.append(PendingDeadline(t.due_at, t.rung, t.action, rung.to if rung and t.action != "fire" else None,
                                      rung.trigger if rung else None))
    return result


def signatures(inst: Instance) -> list:
    """Every signature on the instance, oldest first."""
    from engine.models import Signature

    return db.session.scalars(sa.select(Signature).where(Signature.instance_id == inst.id)
                              .order_by(Signature.signed_at, Signature.id)).all()


def full_history(instance_id: int) -> list:
    """`engine.history` (audit events, failed mail) plus attachment uploads, in time order."""
    from engine.history import history

    entries = history(instance_id)
    try:
        from engine.attachments import history_entries
    except ImportError:
        return entries
    return sorted(entries + history_entries(instance_id), key=lambda e: (e.at, e.kind != "event"))


def current_state(instance_id: int) -> dict:
    """{state, version} of an instance as committed now (for telling the loser of a race where things stand)."""
    db.session.rollback()
    row = db.session.execute(sa.select(Instance.state, Instance.version).where(Instance.id == instance_id)).first()
    return {"state": row.state, "version": row.version} if row else {}
