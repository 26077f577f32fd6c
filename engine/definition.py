"""The format of a workflow definition (plain data) and its validation.

A definition lives in `workflows/<name>.py` as a `Workflow(...)` literal. Guards and hooks are referenced by
name and resolved from the functions written below the data in the same module. `validate` returns every
problem found, each naming the workflow and the element, so `workflows lint` can list them all at once.
"""
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from marshmallow import Schema

from engine import deadlines
from engine.org import Role

# Roles that are not held at an org unit but follow from the instance itself.
CREATOR = "creator"        # whoever started the instance
ASSIGNEE = "assignee"      # the person the instance is assigned to (instance.assignee_id)
PSEUDO_ROLES = {CREATOR, ASSIGNEE}
SIGNERS = "signers"        # in `not_by`: anyone who has signed this instance


class SigningPolicy(str, Enum):
    ALL = "all"          # every signature trigger of the step fired once, each by a different person
    ANY = "any"          # one signature is enough
    QUORUM = "quorum"    # `quorum` signatures by different people


class RungAction(str, Enum):
    REMIND = "remind"      # remind the assignee
    ESCALATE = "escalate"  # tell the assignee's manager (`to`: manager, manager+1, or role:<role>)
    FIRE = "fire"          # fire `trigger` as the system


@dataclass(frozen=True)
class Rung:
    """One step of an escalation ladder, timed relative to the deadline (`at`: "-1 hour", "0", "+1 day")."""

    at: str
    action: RungAction | str
    to: str = "assignee"
    trigger: str | None = None


@dataclass(frozen=True)
class Deadline:
    """When a step is due, counted from entering its state. `due` is one expression, or a mapping from the
    value of the data field `by` to an expression ("*" for any other value), e.g. by severity."""

    due: str | dict
    ladder: tuple[Rung, ...] = ()
    by: str | None = None

    def expressions(self) -> list[str]:
        return list(self.due.values()) if isinstance(self.due, dict) else [self.due]

    def expression_for(self, data: dict) -> str:
        if not isinstance(self.due, dict):
            return self.due
        return self.due.get(str(data.get(self.by)), self.due["*"])


@dataclass(frozen=True)
class Schedule:
    """Start an instance by itself at every active unit of a kind, once per period: `every` "month" at `at`
    (a deadline expression counted from the first of the month, e.g. "last day of the month at 19:00") or
    every "day" at the time `at` ("14:00", or the unit's setting named `at_setting` when it has one).
    `data` names the function (unit, instant) → start payload."""

    every: str
    at: str
    data: str
    unit_kind: str = "store"
    at_setting: str | None = None


@dataclass(frozen=True)
class Signing:
    """A multi-signature step: its signature transitions stay in the state until the policy is met,
    then the engine fires `complete` by itself."""

    policy: SigningPolicy | str = SigningPolicy.ALL
    quorum: int | None = None
    complete: str = "signed"


@dataclass(frozen=True)
class State:
    name: str
    title: dict
    final: bool = False
    assignee: str | None = None     # a role resolved at the instance's org unit, or creator / assignee
    # Roles tried in order when nobody holding `assignee` may take any step out of the state (segregation of
    # duties: the store manager signed the handover they would countersign): the step goes to the first of these
    # roles with someone who may.
    assignee_fallback: tuple[str, ...] = ()
    deadline: Deadline | None = None
    signing: Signing | None = None
    # Files attached to the task email of whoever is given the step, built when the email is sent (so they show
    # the instance as it is then): functions fn(instance, lang) -> [(filename, mime type, bytes)].
    attachments: tuple[str, ...] = ()
    # fn(instance) -> [{"label": {zh, en}, "value": str | {zh, en}}]: what whoever owes the step must see to take
    # it (the countersigner: the figures they sign for); on the page, in the API (`step_facts`) and the task email
    facts: str | None = None


@dataclass(frozen=True)
class Transition:
    trigger: str
    source: str | tuple[str, ...]
    dest: str | None                # None: stay in the state (a signature, an edit)
    roles: tuple[str, ...] = ()     # empty: only the system may fire it (timers, step completion)
    schema: type[Schema] | None = None
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    requires_comment: bool = False
    not_by: tuple[str, ...] = ()    # "creator", "signers", or a trigger: not by whoever fired it on this instance
    signature: bool = False
    validators: tuple[str, ...] = ()  # checks across fields: fn(ctx) -> {field: [messages]}, empty when valid
    after: tuple[str, ...] = ()     # hooks run after the state change, inside the transaction
    # fn(instance) -> the earliest instant it may be fired, or None: not offered before (a signature from
    # shortly before the handover time, never days early)
    opens: str | None = None
    inbox: bool = True              # False: a system integration's step (the till's figures), never a person's task
    title: dict = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)

    @property
    def system_only(self) -> bool:
        return not self.roles


@dataclass(frozen=True)
class Workflow:
    name: str
    version: int
    title: dict
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    initial: str
    start_roles: tuple[str, ...]
    start_schema: type[Schema] | None = None
    start_validators: tuple[str, ...] = ()
    on_start: tuple[str, ...] = ()  # hooks that complete the start payload (e.g. pre-fill from targets)
    schedule: Schedule | None = None
    description: dict = field(default_factory=dict)
    # A start-data field: at most one instance per unit and value of it ("one stocktake per store per month"),
    # whether started by hand or by the scheduler (both use the dedupe key "<name>:<unit code>:<value>").
    once_per: str | None = None

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)


KNOWN_ROLES = {r.value for r in Role} | PSEUDO_ROLES


def validate(wf: Workflow, functions: dict) -> list[str]:
    """Every problem with `wf`, as messages naming the workflow and the element; empty when valid."""
    where = f"workflow '{getattr(wf, 'name', '?')}' v{getattr(wf, 'version', '?')}"
    problems: list[str] = []

    def bad(element: str, message: str) -> None:
        problems.append(f"{where}: {element}: {message}")

    if not isinstance(wf.version, int) or wf.version < 1:
        bad("version", "must be a positive integer")
    for lang in ("zh", "en"):
        if not wf.title.get(lang):
            bad("title", f"missing '{lang}' title")
    names = [s.name for s in wf.states]
    states = {s.name: s for s in wf.states}
    for name in {n for n in names if names.count(n) > 1}:
        bad(f"state '{name}'", "defined twice")
    if wf.initial not in states:
        bad("initial", f"unknown state '{wf.initial}'")
    if not any(s.final for s in wf.states):
        bad("states", "no final state")
    triggers = {t.trigger for t in wf.transitions}

    for role in wf.start_roles:
        if role not in KNOWN_ROLES - {ASSIGNEE}:
            bad("start_roles", f"unknown role '{role}'")
    if not wf.start_roles:
        bad("start_roles", "nobody may start it")
    if not _is_schema(wf.start_schema):
        bad("start_schema", "missing marshmallow schema")
    for name in (*wf.start_validators, *wf.on_start, *([wf.schedule.data] if wf.schedule else [])):
        if not callable(functions.get(name)):
            bad("start", f"unknown validator or hook '{name}' (define it in the workflow's module)")
    if wf.schedule:
        problems.extend(f"{where}: schedule: {p}" for p in _schedule_problems(wf.schedule))
    if wf.once_per and _is_schema(wf.start_schema) and wf.once_per not in wf.start_schema().fields:
        bad("once_per", f"'{wf.once_per}' is not a field of the start schema")

    for t in wf.transitions:
        element = f"transition '{t.trigger}'"
        for src in t.sources:
            if src not in states:
                bad(element, f"unknown source state '{src}'")
        if t.dest is not None and t.dest not in states:
            bad(element, f"unknown destination state '{t.dest}'")
        for role in t.roles:
            if role not in KNOWN_ROLES:
                bad(element, f"unknown role '{role}'")
        if not _is_schema(t.schema):
            bad(element, "missing marshmallow schema")
        for name in (*t.conditions, *t.unless, *t.validators, *t.after, *([t.opens] if t.opens else [])):
            if not callable(functions.get(name)):
                bad(element, f"unknown guard or hook '{name}' (define it in the workflow's module)")
        for rule in t.not_by:
            if rule not in (CREATOR, SIGNERS) and rule not in triggers:
                bad(element, f"unknown segregation rule '{rule}' (creator, signers, or a trigger)")
        if t.signature and t.dest is not None:
            bad(element, "a signature transition stays in its state (dest=None)")
        if t.signature and t.system_only:
            bad(element, "a signature needs signer roles")

    by_trigger: dict[tuple[str, str], Transition] = {}
    for t in wf.transitions:
        for src in t.sources:
            first = by_trigger.setdefault((src, t.trigger), t)
            if first is not t and _rules(first) != _rules(t):
                bad(f"transition '{t.trigger}' from '{src}'", "branches of one trigger must share roles, schema, "
                    "requires_comment, not_by, signature and validators")

    for s in wf.states:
        element = f"state '{s.name}'"
        for lang in ("zh", "en"):
            if not s.title.get(lang):
                bad(element, f"missing '{lang}' title")
        if s.assignee and s.assignee not in KNOWN_ROLES:
            bad(element, f"unknown assignee role '{s.assignee}'")
        if s.facts and not callable(functions.get(s.facts)):
            bad(element, f"unknown facts function '{s.facts}' (define it in the workflow's module)")
        for role in s.assignee_fallback:
            if role not in KNOWN_ROLES - PSEUDO_ROLES:
                bad(element, f"unknown fallback assignee role '{role}'")
        for name in s.attachments:
            if not callable(functions.get(name)):
                bad(element, f"unknown attachment builder '{name}' (define it in the workflow's module)")
        outgoing = [t for t in wf.transitions if s.name in t.sources]
        leaves = [t for t in outgoing if t.dest not in (None, s.name)]
        if not s.final and not leaves:
            bad(element, "dead end: not final and no transition leaves it")
        if s.deadline:
            if s.final:
                bad(element, "a final state cannot have a deadline")
            problems.extend(f"{where}: {element}: {p}" for p in _deadline_problems(s.deadline, outgoing))
        if s.signing:
            problems.extend(f"{where}: {element}: {p}" for p in _signing_problems(s.signing, outgoing))

    for name in sorted(set(states) - _reachable(wf, states)):
        bad(f"state '{name}'", f"unreachable from the initial state '{wf.initial}'")
    return problems


def _rules(t: Transition) -> tuple:
    return (t.roles, t.schema, t.requires_comment, t.not_by, t.signature, t.validators, t.opens)


def _schedule_problems(schedule: Schedule) -> list[str]:
    from engine.org import UnitKind

    problems = []
    if schedule.every not in ("month", "day"):
        problems.append(f"every '{schedule.every}': must be 'month' or 'day'")
    if schedule.unit_kind not in {k.value for k in UnitKind}:
        problems.append(f"unknown unit kind '{schedule.unit_kind}'")
    try:
        if schedule.every == "day":
            deadlines.time_of_day(schedule.at)
        else:
            deadlines.parse(schedule.at)
    except ValueError as e:
        problems.append(f"at '{schedule.at}': {e}")
    return problems


def _is_schema(schema) -> bool:
    return isinstance(schema, type) and issubclass(schema, Schema)


def _deadline_problems(deadline: Deadline, outgoing: list[Transition]) -> list[str]:
    problems = []
    if isinstance(deadline.due, dict) and (not deadline.by or "*" not in deadline.due):
        problems.append("a deadline by field needs `by` and a '*' entry for other values")
    for expr in (*deadline.expressions(), *(r.at for r in deadline.ladder)):
        try:
            deadlines.parse(expr)
        except ValueError as e:
            problems.append(f"deadline expression '{expr}': {e}")
    for i, rung in enumerate(deadline.ladder, 1):
        if rung.action not in {a.value for a in RungAction}:
            problems.append(f"rung {i}: unknown action '{rung.action}'")
        if rung.action == RungAction.FIRE and rung.trigger not in {t.trigger for t in outgoing}:
            problems.append(f"rung {i}: trigger '{rung.trigger}' does not leave this state")
        if rung.action == RungAction.ESCALATE and not _valid_recipient(rung.to):
            problems.append(f"rung {i}: unknown recipient '{rung.to}'")
    return problems


def _valid_recipient(to: str) -> bool:
    if to in ("assignee", "manager") or to.startswith("manager+") and to[8:].isdigit():
        return True
    return to.startswith("role:") and to[5:] in KNOWN_ROLES


def _signing_problems(signing: Signing, outgoing: list[Transition]) -> list[str]:
    problems = []
    if signing.policy not in {p.value for p in SigningPolicy}:
        problems.append(f"unknown signing policy '{signing.policy}'")
    if signing.policy == SigningPolicy.QUORUM and not (isinstance(signing.quorum, int) and signing.quorum >= 1):
        problems.append("a quorum policy needs quorum >= 1")
    if not any(t.signature for t in outgoing):
        problems.append("a signing step needs at least one signature transition")
    complete = [t for t in outgoing if t.trigger == signing.complete]
    if not complete:
        problems.append(f"completion trigger '{signing.complete}' does not leave this state")
    elif any(not t.system_only for t in complete):
        problems.append(f"completion trigger '{signing.complete}' must be system-only (no roles)")
    return problems


def _reachable(wf: Workflow, states: dict) -> set[str]:
    seen, queue = set(), deque([wf.initial] if wf.initial in states else [])
    while queue:
        name = queue.popleft()
        if name in seen:
            continue
        seen.add(name)
        queue.extend(t.dest for t in wf.transitions if name in t.sources and t.dest)
    return seen
