"""The inbox: open instances with a step the actor can act on now, most urgent first."""
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine import clock, org, registry
from engine.authority import Seen
from engine.db import db
from engine.definition import ASSIGNEE, CREATOR, Transition
from engine.models import Instance
from engine.org import OrgUnit, User
from engine.runtime import available_actions


@dataclass(frozen=True)
class Task:
    instance: Instance
    actions: list[Transition]

    @property
    def due_at(self) -> datetime | None:
        return self.instance.due_at

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at <= now


def inbox(actor: User, limit: int = 500) -> list[Task]:
    """What `actor` can act on now (as themselves or for whoever delegated to them): overdue first,
    then by due time, then the oldest."""
    now = clock.now()
    seen = Seen(actor, now)  # whom the actor acts for, and their roles per unit: looked up once for all
    persons = [principal or user for user, principal in seen.principals]
    held = [(role, unit.path) for person in persons for role, unit in org.roles_of(person)]
    person_ids = [p.id for p in persons]
    clauses = []
    for compiled in registry.all_versions():
        for state, definition in compiled.states.items():
            if definition.final:
                continue  # a closed instance that may be reopened is not work anyone owes
            roles = {r for t in compiled.transitions_from(state) if not t.system_only and t.inbox for r in t.roles}
            who = [OrgUnit.path.startswith(path) for role, path in held if role in roles]
            if CREATOR in roles:
                who.append(Instance.created_by_id.in_(person_ids))
            if ASSIGNEE in roles:
                who.append(Instance.assignee_id.in_(person_ids))
            if who:
                clauses.append(sa.and_(Instance.workflow == compiled.name,
                                       Instance.definition_version == compiled.version,
                                       Instance.state == state, sa.or_(*who)))
    if not clauses:
        return []
    candidates = db.session.scalars(
        sa.select(Instance).join(OrgUnit, Instance.org_unit_id == OrgUnit.id)
        .where(Instance.closed_at.is_(None), sa.or_(*clauses))
        .order_by(Instance.due_at.is_(None), Instance.due_at, Instance.created_at).limit(limit)).all()
    tasks = []
    for inst in candidates:
        actions = [t for t in available_actions(inst, actor, seen) if t.inbox]
        if actions:
            tasks.append(Task(inst, actions))
    return tasks
