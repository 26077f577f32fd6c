"""The one write path. `start` and `fire` are the only code that creates or changes a workflow instance.

Each call is one database transaction: lock the instance, check the actor, validate the payload, run the
guards and the `transitions` machine, write state + data + one audit event, swap the timers, write the
outbox rows, commit. A concurrent second action on the same instance loses cleanly (NotAvailable or
VersionConflict) and writes nothing.
"""
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from marshmallow import Schema, ValidationError
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError

from engine import alarm, audit, clock, mail, org, registry, timers
from engine.authority import SYSTEM, Acting, History, Seen, Standing, may_start
from engine.db import db, write_transaction
from engine.definition import ASSIGNEE, CREATOR, SigningPolicy, Transition
from engine.errors import (
    Duplicate,
    InvalidInput,
    InvalidPayload,
    NotAvailable,
    NotPermitted,
    UnknownInstance,
    VersionConflict,
)
from engine.limits import COMMENT_MAX
from engine.models import AuditEvent, Instance, Notification, Signature
from engine.org import Holder, OrgUnit, User
from engine.registry import Compiled


@dataclass
class Context:
    """What validators, guards and hooks are given. Validators and guards only read; hooks may change `doc`
    (the instance's data) and `instance.assignee_id` (whom the instance is assigned to)."""

    instance: Instance
    trigger: str
    data: dict            # this action's payload, as loaded by its schema (typed values)
    doc: dict             # the instance's data with this payload merged in; becomes instance.data
    acting: Acting
    comment: str | None
    now: datetime


class _Model:
    """The object the `transitions` machine moves; it lives only for the duration of one fire."""

    def __init__(self):
        self.state = None


def start(workflow: str, org_unit: OrgUnit | str, actor: User | None, data: dict | None = None,
          comment: str | None = None, dedupe_key: str | None = None) -> Instance:
    """Start the latest version of `workflow` at `org_unit` as `actor` (None: the system, e.g. the scheduler);
    returns the committed instance. A `dedupe_key` already taken raises Duplicate naming the instance that
    holds it (the scheduler's "at most one per store per period"); a workflow with `once_per` derives the key
    from its start data, so a start by hand collides with the scheduler's."""
    compiled = registry.get(workflow)
    wf = compiled.wf
    with write_transaction():
        unit = org.unit_by_code(org_unit) if isinstance(org_unit, str) else org_unit
        if not unit.active:
            raise InvalidInput(f"org unit '{unit.code}' is not active", field="org_unit")
        now = clock.now()
        acting = SYSTEM if actor is None else may_start(wf.start_roles, unit, actor, now)
        loaded, stored = _validate(wf.start_schema, data, comment, requires_comment=False)
        if dedupe_key is None and wf.once_per:
            dedupe_key = f"{wf.name}:{unit.code}:{stored[wf.once_per]}"
        if dedupe_key is not None:
            taken = db.session.scalar(sa.select(Instance.id).where(Instance.dedupe_key == dedupe_key))
            if taken is not None:
                raise Duplicate(f"'{dedupe_key}' has already been started: instance {taken}", dedupe_key=dedupe_key,
                                instance=taken)
        owner = acting.on_behalf_of or actor
        inst = Instance(workflow=wf.name, definition_version=wf.version, org_unit=unit, state=wf.initial,
                        version=1, state_seq=1, data=stored, created_by_id=_id(owner), created_at=now,
                        updated_at=now, state_entered_at=now, dedupe_key=dedupe_key)
        ctx = Context(inst, "start", loaded, dict(stored), acting, comment, now)
        _check(compiled, wf.start_validators, ctx)
        for hook in wf.on_start:
            compiled.functions[hook](ctx)
        inst.data = ctx.doc
        db.session.add(inst)
        with db.session.no_autoflush:
            _enter_state(compiled, inst, now)
        try:
            db.session.flush()
        except IntegrityError:
            if dedupe_key is None:
                raise
            raise Duplicate(f"'{dedupe_key}' has already been started", dedupe_key=dedupe_key) from None
        _audit(inst, "start", None, acting, inst.data, comment, now)
    return inst


def fire(instance: Instance | int, trigger: str, actor: User | None, data: dict | None = None,
         comment: str | None = None, expected_version: int | None = None) -> Instance:
    """Fire `trigger` on an instance (or instance id) as `actor` (None: the system); returns it committed.

    Raises UnknownInstance, NotAvailable, NotPermitted, InvalidPayload or VersionConflict; then nothing is written.
    """
    with write_transaction():
        return apply_trigger(getattr(instance, "id", instance), trigger, actor, data, comment, expected_version)


def apply_trigger(instance_id: int, trigger: str, actor: User | None, data: dict | None = None,
                  comment: str | None = None, expected_version: int | None = None, lock: bool = True) -> Instance:
    """`fire` inside a transaction the caller owns (timers fire a batch in one transaction)."""
    # The unit comes in the same statement (scope and assignees need it); only the instance row is locked.
    inst = db.session.get(Instance, instance_id, with_for_update={"of": Instance} if lock else None,
                          populate_existing=lock, options=[orm.joinedload(Instance.org_unit, innerjoin=True)])
    if inst is None:
        raise UnknownInstance(f"no instance {instance_id}", instance=instance_id)
    if expected_version is not None and inst.version != expected_version:
        raise VersionConflict(f"instance {inst.id} is at version {inst.version}, not {expected_version}",
                              state=inst.state, version=inst.version)
    now = clock.now()
    compiled, t, acting = _authorise(inst, trigger, actor, now)
    loaded, stored = _validate(t.schema, data, comment, t.requires_comment)
    _apply(compiled, inst, t, loaded, stored, acting, comment, now)
    return inst


def may_fire(instance: Instance, trigger: str, actor: User) -> None:
    """Raise what `fire` would about the state and the actor (NotAvailable, NotPermitted), without locking or
    writing: lets a caller refuse before it reads a costly payload (an uploaded file). `fire` checks again."""
    _authorise(instance, trigger, actor, clock.now())


def _authorise(inst: Instance, trigger: str, actor: User | None, now: datetime) -> tuple[Compiled, Transition, Acting]:
    """The transition `trigger` takes from the instance's state, and how `actor` (None: the system) may fire it."""
    compiled = registry.get(inst.workflow, inst.definition_version)
    candidates = compiled.by_state_trigger.get((inst.state, trigger))
    if not candidates:
        raise NotAvailable(f"'{trigger}' is not available in state '{inst.state}'",
                           state=inst.state, version=inst.version)
    t = candidates[0]  # validation guarantees branches of one trigger share roles, schema and rules
    if actor is None:
        return compiled, t, SYSTEM
    standing = Standing(inst, actor, now)
    acting = standing.check(t)
    if t.signature:
        _check_signature_slot(compiled, inst, t, standing)
    _check_open(compiled, inst, t, now)
    return compiled, t, acting


def available_actions(instance: Instance, actor: User, seen: Seen | None = None) -> list[Transition]:
    """The transitions `actor` may fire on `instance` now (one per trigger, definition order). `seen` shares
    the actor's lookups across many instances (the inbox)."""
    compiled = registry.get(instance.workflow, instance.definition_version)
    now = clock.now()
    standing = Standing(instance, actor, now, seen)
    allowed, seen = [], set()
    for t in compiled.transitions_from(instance.state):
        if t.trigger in seen or t.system_only:
            continue
        seen.add(t.trigger)
        try:
            standing.check(t)
            if t.signature:
                _check_signature_slot(compiled, instance, t, standing)
            _check_open(compiled, instance, t, now)
        except (NotAvailable, NotPermitted):
            continue
        allowed.append(t)
    return allowed


def assignees(compiled: Compiled, inst: Instance, at: datetime | None = None) -> list[Holder]:
    """Who owes the current step, resolved now (delegates stand in for people out of office): only people who
    may take it. Segregation of duties may bar the nearest holders of the state's role (the store manager signed
    the handover they would countersign; the sales manager submitted their own plan): then the same role further
    up the org tree, then each of the state's `assignee_fallback` roles in turn (nearest first). Nobody able:
    nobody (`flask check` lists such steps); the escalation ladder still runs."""
    state = compiled.states[inst.state]
    rule = state.assignee
    if rule is None:
        return []
    at = at or clock.now()
    if rule in (CREATOR, ASSIGNEE):
        user_id = inst.created_by_id if rule == CREATOR else inst.assignee_id
        user = db.session.get(User, user_id) if user_id else None
        if user is None:
            return []
        stand_in = org.delegate_of(user, at)
        return [Holder(stand_in, rule, user) if stand_in else Holder(user, rule)]
    steps = [t for t in compiled.transitions_from(inst.state) if not t.system_only]
    history = History(inst)
    barred = {t.trigger: history.excluded(t) for t in steps}

    def may_act(holder: Holder) -> bool:
        # Every step their role is given here, not just a side one (correcting the book is no approval). A role
        # the state's steps do not name at all is the definition's business (it passes `workflows lint`).
        people = {holder.user.id, _id(holder.on_behalf_of)} - {None}
        theirs = [t for t in steps if holder.role in t.roles]
        return not any(people & barred[t.trigger] for t in theirs)

    for role in (rule, *state.assignee_fallback):
        # the barred are skipped when looking for the nearest unit with a holder: up the tree past them
        skip = set().union(*(barred[t.trigger] for t in steps if role in t.roles))
        able = [h for h in org.holders(role, inst.org_unit, at, exclude=skip) if may_act(h)]
        if able:
            return able
    return []


# ---- inside the transaction ----------------------------------------------------------------------------

def _validate(schema: type[Schema], data, comment, requires_comment: bool) -> tuple[dict, dict]:
    """(loaded, stored): the payload as typed values for guards, and as JSON for the database."""
    if requires_comment and not (comment or "").strip():
        raise InvalidPayload({"comment": ["A comment is required for this action."]})
    if comment is not None and len(comment) > COMMENT_MAX:  # every caller: API, pages, CLI (the trail is for ever)
        raise InvalidPayload({"comment": [f"Longer than maximum length {COMMENT_MAX}."]})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidPayload({"data": ["Must be an object."]})
    s = schema()
    try:
        loaded = s.load(data)
    except ValidationError as e:
        raise InvalidPayload(e.messages_dict if isinstance(e.messages, dict) else {"data": e.messages}) from None
    return loaded, s.dump(loaded)


def _check(compiled: Compiled, validators: tuple[str, ...], ctx: Context) -> None:
    """Run cross-field validators (they only read); any errors → InvalidPayload, nothing written."""
    errors: dict = {}
    for name in validators:
        for field_name, messages in (compiled.functions[name](ctx) or {}).items():
            errors.setdefault(field_name, []).extend(messages)
    if errors:
        raise InvalidPayload(errors)


def opens_at(compiled: Compiled, inst: Instance, t: Transition) -> datetime | None:
    """The earliest instant `t` may be fired on `inst` (its definition's `opens`), or None: no such bound."""
    return compiled.functions[t.opens](inst) if t.opens else None


def state_facts(instance: Instance) -> list[dict]:
    """What whoever owes the instance's current step must see to take it (its state's `facts`), else []."""
    compiled = registry.get(instance.workflow, instance.definition_version)
    state = compiled.states.get(instance.state)
    return compiled.functions[state.facts](instance) if state and state.facts else []


def opening_later(instance: Instance) -> dict[str, datetime]:
    """Trigger → the instant it opens, for the steps out of the instance's state not open yet (a page says
    from when one may sign)."""
    compiled, now = registry.get(instance.workflow, instance.definition_version), clock.now()
    found = {}
    for t in compiled.transitions_from(instance.state):
        opens = opens_at(compiled, instance, t)
        if opens is not None and now < opens:
            found[t.trigger] = opens
    return found


def _check_open(compiled: Compiled, inst: Instance, t: Transition, now: datetime) -> None:
    opens = opens_at(compiled, inst, t)
    if opens is not None and now < opens:
        local = f"{opens.astimezone(ZoneInfo(inst.org_unit.timezone)):%Y-%m-%d %H:%M} ({inst.org_unit.timezone})"
        raise NotAvailable(f"'{t.trigger}' is possible from {local}, not before", state=inst.state,
                           version=inst.version, opens_at=opens.isoformat(), opens_local=local)


def _check_signature_slot(compiled: Compiled, inst: Instance, t: Transition, standing: Standing) -> None:
    signing = compiled.states[inst.state].signing
    if signing and signing.policy == SigningPolicy.ALL and t.trigger in {s.trigger for s in standing.signatures}:
        raise NotAvailable(f"'{t.trigger}' has already been signed on this step", state=inst.state,
                           version=inst.version)


def _apply(compiled: Compiled, inst: Instance, t: Transition, loaded: dict, stored: dict, acting: Acting,
           comment: str | None, now: datetime) -> None:
    """Run the machine for one trigger and write everything it changes (one audit event)."""
    ctx = Context(inst, t.trigger, loaded, {**inst.data, **stored}, acting, comment, now)
    _check(compiled, t.validators, ctx)
    model = _Model()
    machine = compiled.machine()
    machine.add_model(model, initial=inst.state)
    try:
        moved = model.trigger(t.trigger, ctx=ctx)
    finally:
        machine.remove_model(model)
    if not moved:
        raise NotAvailable(f"'{t.trigger}' is not possible now: its conditions are not met", state=inst.state,
                           version=inst.version)
    from_state, from_assignee = inst.state, inst.assignee_id
    # Everything the step changes is staged first and flushed once: one UPDATE of the instance, one version,
    # one audit event.
    with db.session.no_autoflush:
        inst.version += 1
        inst.data = ctx.doc
        inst.updated_at = now
        moved = model.state != from_state
        if moved:
            timers.cancel(inst)
            inst.state = model.state
            inst.state_seq += 1
            inst.state_entered_at = now
        if t.signature:
            db.session.add(Signature(instance=inst, state=inst.state, state_seq=inst.state_seq, trigger=t.trigger,
                                     role=acting.role, user_id=acting.user.id,
                                     on_behalf_of_id=_id(acting.on_behalf_of), signed_at=now))
        # The event first: whom the new state goes to may depend on who just acted (segregation of duties).
        _audit(inst, t.trigger, from_state, acting, stored, comment, now)
        if moved:
            _enter_state(compiled, inst, now)
        elif inst.assignee_id != from_assignee and compiled.states[inst.state].assignee == ASSIGNEE:
            _tell_owners(compiled, inst, now)  # reassigned within the step: tell the new assignee
    db.session.flush()  # the optimistic lock: UPDATE … WHERE version = old, else StaleDataError
    if t.signature:
        _complete_signing_if_met(compiled, inst, now)


def _complete_signing_if_met(compiled: Compiled, inst: Instance, now: datetime) -> None:
    signing = compiled.states[inst.state].signing
    if signing is None:
        return
    rows = db.session.execute(sa.select(Signature.trigger, Signature.user_id).where(
        Signature.instance_id == inst.id, Signature.state_seq == inst.state_seq)).all()
    needed = {t.trigger for t in compiled.transitions_from(inst.state) if t.signature}
    met = {
        SigningPolicy.ALL: lambda: needed <= {r.trigger for r in rows},
        SigningPolicy.ANY: lambda: len(rows) >= 1,
        SigningPolicy.QUORUM: lambda: len({r.user_id for r in rows}) >= signing.quorum,
    }[SigningPolicy(signing.policy)]()
    if met:
        complete = compiled.by_state_trigger[(inst.state, signing.complete)][0]
        _apply(compiled, inst, complete, {}, {}, SYSTEM, None, now)


def _audit(inst: Instance, trigger: str, from_state: str | None, acting: Acting, data: dict, comment: str | None,
           now: datetime) -> None:
    event = AuditEvent(instance_id=inst.id, seq=inst.version, trigger=trigger, from_state=from_state,
                       to_state=inst.state, actor_id=_id(acting.user), on_behalf_of_id=_id(acting.on_behalf_of),
                       data=data, comment=comment, created_at=now)
    audit.seal(event, inst)
    db.session.add(event)


def _enter_state(compiled: Compiled, inst: Instance, now: datetime) -> None:
    """Arm the new state's deadline and ladder, close or reopen, and tell whoever owes the step."""
    state = compiled.states[inst.state]
    inst.closed_at = now if state.final else None
    timers.arm(state, inst, now)
    _tell_owners(compiled, inst, now)


def _tell_owners(compiled: Compiled, inst: Instance, now: datetime) -> None:
    """A task notification (outbox) to each person who owes the current step."""
    owners = assignees(compiled, inst, now)
    facts = state_facts(inst) if owners else []
    for holder in owners:
        db.session.add(Notification(
            instance=inst, user_id=holder.user.id, on_behalf_of_id=_id(holder.on_behalf_of), kind="task",
            idempotency_key=f"task:{uuid.uuid4().hex}",
            context={**mail.step_facts(inst, owners), "facts": facts,
                     "due_at": inst.due_at.isoformat() if inst.due_at else None},
            created_at=now))
        alarm.mail_waiting(db.session)


def _id(user: User | None) -> int | None:
    return user.id if user else None
