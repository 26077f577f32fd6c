"""Who may do what: role + org scope + delegation + segregation of duties.

Permissions are separate from guards: guards look at the data, this module looks at people.
"""
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import sqlalchemy as sa

from engine import org
from engine.db import db
from engine.definition import ASSIGNEE, CREATOR, SIGNERS, Transition
from engine.errors import NotPermitted
from engine.models import AuditEvent, Instance, Signature
from engine.org import OrgUnit, User


@dataclass(frozen=True)
class Acting:
    """How an action is taken: by `user` (None: the system), as `role`, for `on_behalf_of` when delegated."""

    user: User | None
    role: str | None = None
    on_behalf_of: User | None = None


SYSTEM = Acting(None, "system")


def may_start(roles: tuple[str, ...], unit: OrgUnit, actor: User, at: datetime) -> Acting:
    """How `actor` may start a workflow needing one of `roles` at `unit`; NotPermitted otherwise."""
    if not actor.active:
        raise NotPermitted(f"user '{actor.login}' is not active")
    for user, principal in org.principals(actor, at):
        held = org.roles_at(principal or user, unit) & set(roles)
        if held:
            return Acting(user, sorted(held)[0], principal)
    raise NotPermitted(f"'{actor.login}' may not start this workflow at '{unit.code}' "
                       f"(needs one of: {', '.join(roles)})")


class Seen:
    """What Standing looks up about the actor, shared across the instances of one request (the inbox):
    whom they act for, and the roles each of those people holds at each unit."""

    def __init__(self, actor: User, at: datetime, unit: OrgUnit | None = None):
        """With `unit` (one instance's), the roles there come in the same query as the principals."""
        self.roles: dict[tuple[int, int], set[str]] = {}
        if not actor.active:
            self.principals = []
        elif unit is None:
            self.principals = org.principals(actor, at)
        else:
            self.principals, roles = org.principals_with_roles(actor, unit, at)
            self.roles.update({(person_id, unit.id): held for person_id, held in roles.items()})

    def roles_at(self, person: User, unit) -> set[str]:
        key = (person.id, unit.id)
        if key not in self.roles:
            self.roles[key] = org.roles_at(person, unit)
        return set(self.roles[key])


class History:
    """Who has done what on one instance, as segregation of duties needs it (no actor involved: the runtime
    also asks it whom a step may go to)."""

    def __init__(self, instance: Instance):
        self.instance = instance

    @cached_property
    def signatures(self) -> list:
        """(user_id, on_behalf_of_id, trigger) of each signature on the current visit to the current state."""
        return db.session.execute(
            sa.select(Signature.user_id, Signature.on_behalf_of_id, Signature.trigger)
            .where(Signature.instance_id == self.instance.id, Signature.state_seq == self.instance.state_seq)).all()

    @property
    def signers(self) -> set[int]:
        return {i for r in self.signatures for i in (r.user_id, r.on_behalf_of_id) if i}

    def _fired_by(self, triggers: set[str]) -> set[int]:
        rows = db.session.execute(
            sa.select(AuditEvent.actor_id, AuditEvent.on_behalf_of_id)
            .where(AuditEvent.instance_id == self.instance.id, AuditEvent.trigger.in_(triggers))).all()
        # and the step being written now (its event is not flushed yet: the runtime resolves the next owner first)
        rows += [(e.actor_id, e.on_behalf_of_id) for e in db.session.new
                 if isinstance(e, AuditEvent) and e.instance_id == self.instance.id and e.trigger in triggers]
        return {i for r in rows for i in r if i}

    @cached_property
    def creators_stand_ins(self) -> set[int]:
        """Everyone who acted on this instance on its creator's behalf (drafted or submitted it as their delegate):
        for segregation of duties they count as the submitter too."""
        return set(db.session.scalars(
            sa.select(AuditEvent.actor_id).where(AuditEvent.instance_id == self.instance.id,
                                                 AuditEvent.on_behalf_of_id == self.instance.created_by_id)))

    def excluded(self, t: Transition) -> set[int]:
        """The people `t`'s segregation rules keep from firing it on this instance."""
        excluded = set()
        if CREATOR in t.not_by and self.instance.created_by_id:
            excluded.add(self.instance.created_by_id)
            excluded |= self.creators_stand_ins
        if t.signature:
            excluded |= self.signers
        if SIGNERS in t.not_by:
            rows = db.session.execute(sa.select(Signature.user_id, Signature.on_behalf_of_id)
                                      .where(Signature.instance_id == self.instance.id)).all()
            excluded |= {i for r in rows for i in r if i}
        triggers = set(t.not_by) - {CREATOR, SIGNERS}
        if triggers:
            excluded |= self._fired_by(triggers)
        return excluded


class Standing:
    """An actor's standing towards one instance, computed once and reused for each transition checked."""

    def __init__(self, instance: Instance, actor: User, at: datetime, seen: Seen | None = None):
        self.instance = instance
        self.actor = actor
        self.seen = seen or Seen(actor, at, instance.org_unit)
        self.principals = self.seen.principals
        self.history = History(instance)

    @cached_property
    def _roles(self) -> dict[int, set[str]]:
        roles = {}
        for user, principal in self.principals:
            person = principal or user
            held = self.seen.roles_at(person, self.instance.org_unit)
            if self.instance.created_by_id == person.id:
                held.add(CREATOR)
            if self.instance.assignee_id == person.id:
                held.add(ASSIGNEE)
            roles[person.id] = held
        return roles

    @property
    def signatures(self) -> list:
        """(user_id, on_behalf_of_id, trigger) of each signature on the current visit to the current state."""
        return self.history.signatures

    def _excluded(self, t: Transition) -> set[int]:
        return self.history.excluded(t)

    def check(self, t: Transition) -> Acting:
        """How the actor may fire `t`; NotPermitted otherwise."""
        if t.system_only:
            raise NotPermitted(f"'{t.trigger}' is done by the system, not by a person")
        excluded = self._excluded(t)
        refusal = None
        for user, principal in self.principals:
            person = principal or user
            held = self._roles[person.id] & set(t.roles)
            if not held:
                continue
            if user.id in excluded or person.id in excluded:
                refusal = _segregation_message(t, user)
                continue
            return Acting(user, sorted(held)[0], principal)
        if refusal:
            raise NotPermitted(refusal, reason="segregation_of_duties")
        raise NotPermitted(f"'{self.actor.login}' may not '{t.trigger}' here "
                           f"(needs one of: {', '.join(t.roles)} at '{self.instance.org_unit.code}')",
                           reason="role_or_scope")


def _segregation_message(t: Transition, user: User) -> str:
    if t.signature:
        return f"'{user.login}' has already signed this step: each signature must be by a different person"
    return f"'{user.login}' may not '{t.trigger}': not allowed for {', '.join(t.not_by)} of this request"


def can_view(instance: Instance, actor: User, at: datetime) -> bool:
    """True when `actor` may see `instance`: a role covering its unit, or a part in it (creator, assignee)."""
    if not actor.active:
        return False
    for user, principal in org.principals(actor, at):
        person = principal or user
        if person.id in (instance.created_by_id, instance.assignee_id) or org.roles_at(person, instance.org_unit):
            return True
    return False
