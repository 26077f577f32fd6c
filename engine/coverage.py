"""Can every step be taken? A definition can be valid and still, in a given org, send a step to people who
cannot take it: in the SOUTH region a handover discrepancy went to the store manager who had signed it (refused:
not by the signers), with no sales manager above the store and a regional manager without the role.

`problems()` walks every active store and team (where the work is done: regions and the company hold managers),
every workflow that runs there (scheduled for its kind, or someone holds a start role at that very unit), and
every non-final state whose step goes to a role, and asks whether someone holding that role (or one of the state's
fallback roles) could take every step their role is given there under its `not_by` rules. Who did the earlier
steps is not known before an instance exists, so it is approximated in the holder's favour but no further: a
holder counts as barred by a `not_by` rule only when the earlier step could not have been done without them —
- "creator": nobody else at the unit holds a start role (scheduled workflows are started by the system);
- a trigger: nobody else at the unit holds a role that may fire it;
- "signers": the workflow's signatures (distinct people, by its signing policy) cannot all be given to other
  people at the unit: for the handover's countersign, the two signers are two distinct people of the store.
States assigned to the instance's creator or assignee are skipped: who they are depends on the instance.
"""
from datetime import datetime

import sqlalchemy as sa

from engine import clock, org, registry
from engine.db import db
from engine.definition import ASSIGNEE, CREATOR, PSEUDO_ROLES, SIGNERS, SigningPolicy, State, Transition
from engine.org import OrgUnit, RoleAssignment, UnitKind, User
from engine.registry import Compiled

WORKPLACES = (UnitKind.STORE.value, UnitKind.TEAM.value)


def problems(at: datetime | None = None) -> list[str]:
    """One line per step nobody can take: "unit X, workflow W, state S: nobody can act (assignee rule …)"."""
    at = at or clock.now()
    units = db.session.scalars(sa.select(OrgUnit).where(OrgUnit.active, OrgUnit.kind.in_(WORKPLACES))
                               .order_by(OrgUnit.path)).all()
    found = []
    for compiled in registry.latest():
        for unit in units:
            if not _runs_at(compiled, unit):
                continue
            people = _People(unit)
            for state in compiled.wf.states:
                if state.final or state.assignee in (None, CREATOR, ASSIGNEE):
                    continue
                tried = _tried(compiled, state, unit, people, at)
                if tried is not None:
                    found.append(f"unit {unit.code}, workflow {compiled.name}, state {state.name}: nobody can act "
                                 f"(assignee rule {tried})")
    return found


class _People:
    """Who holds which roles covering one unit (held at it or above it), asked once per role set."""

    def __init__(self, unit: OrgUnit):
        self.unit, self.cache = unit, {}

    def holding(self, roles) -> set[int]:
        key = frozenset(set(roles) - PSEUDO_ROLES)
        if key not in self.cache:
            self.cache[key] = set(db.session.scalars(
                sa.select(RoleAssignment.user_id).join(User, RoleAssignment.user_id == User.id)
                .where(RoleAssignment.role.in_(key), RoleAssignment.org_unit_id.in_(self.unit.ancestor_ids),
                       User.active))) if key else set()
        return self.cache[key]


def _runs_at(compiled: Compiled, unit: OrgUnit) -> bool:
    wf = compiled.wf
    if wf.schedule and wf.schedule.unit_kind == unit.kind:
        return True
    starters = set(wf.start_roles) - PSEUDO_ROLES
    return bool(starters) and db.session.scalar(sa.select(sa.exists().where(
        RoleAssignment.org_unit_id == unit.id, RoleAssignment.role.in_(starters))))


def _tried(compiled: Compiled, state: State, unit: OrgUnit, people: _People, at: datetime) -> str | None:
    """None when someone can act; else the rule and whom it reached, for the report."""
    steps = [t for t in compiled.transitions_from(state.name) if not t.system_only]
    reached = []
    for role in (state.assignee, *state.assignee_fallback):
        holders = org.holders(role, unit, at)
        reached.append(f"{role}: {', '.join(sorted({h.user.login for h in holders})) or 'nobody holds it'}")
        for holder in holders:
            person = (holder.on_behalf_of or holder.user).id
            theirs = [t for t in steps if role in t.roles]
            if theirs and not any(_barred(compiled, t, person, people) for t in theirs):
                return None
    return "; then ".join(reached)


def _barred(compiled: Compiled, t: Transition, person: int, people: _People) -> bool:
    """True when `person` is necessarily kept from `t` by its segregation rules (see the module's docstring)."""
    wf = compiled.wf
    for rule in t.not_by:
        if rule == CREATOR:
            if not wf.schedule and not people.holding(wf.start_roles) - {person}:
                return True
        elif rule == SIGNERS:
            if any(not _signable(s, compiled, people, person) for s in wf.states if s.signing):
                return True
        else:
            earlier = [x for x in wf.transitions if x.trigger == rule]
            if any(x.system_only or set(x.roles) & PSEUDO_ROLES for x in earlier):
                continue  # the system or an instance's own people: need not be this person
            if not people.holding({r for x in earlier for r in x.roles}) - {person}:
                return True
    return False


def _signable(state: State, compiled: Compiled, people: _People, person: int) -> bool:
    """Could the signing step be completed by distinct people other than `person`?"""
    signatures = [t for t in compiled.transitions_from(state.name) if t.signature]
    candidates = [people.holding(t.roles) - {person} for t in {t.trigger: t for t in signatures}.values()]
    policy = SigningPolicy(state.signing.policy)
    if policy == SigningPolicy.ANY:
        return any(candidates)
    if policy == SigningPolicy.QUORUM:
        return len(set().union(*candidates)) >= state.signing.quorum
    return _distinct(candidates)


def _distinct(candidates: list[set[int]]) -> bool:
    """A different person for each slot (Kuhn's augmenting paths; a step has a handful of slots)."""
    taken: dict[int, int] = {}

    def place(slot: int, seen: set[int]) -> bool:
        for who in candidates[slot]:
            if who in seen:
                continue
            seen.add(who)
            if who not in taken or place(taken[who], seen):
                taken[who] = slot
                return True
        return False

    return all(place(slot, set()) for slot in range(len(candidates)))
