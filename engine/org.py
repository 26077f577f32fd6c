"""The organisation: units in a tree, people, their roles at units, and out-of-office delegations.

A role held at a unit covers every unit below it. Units carry a materialised `path` ("/1/4/9/") so
"is this unit inside that one" is a string prefix test, and "the nearest unit above" needs no recursion.
"""
import functools
from dataclasses import dataclass
from datetime import datetime, time
from enum import Enum

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from engine import clock, org_rules
from engine.db import JSONType, UTCDateTime, db
from engine.errors import InvalidInput


class Role(str, Enum):
    REP = "rep"
    STORE_MANAGER = "store_manager"
    DEPUTY_MANAGER = "deputy_manager"
    ASSISTANT = "assistant"
    SALES_MANAGER = "sales_manager"
    REGIONAL_MANAGER = "regional_manager"
    ACCOUNTANT = "accountant"
    SERVICE_AGENT = "service_agent"
    TRAINER = "trainer"
    ADMIN = "admin"


class UnitKind(str, Enum):
    COMPANY = "company"
    REGION = "region"
    STORE = "store"
    TEAM = "team"


# Whom a holder of each role reports to, nearest unit first. Used for "manager of" and escalations.
REPORTS_TO = {
    Role.ASSISTANT: (Role.STORE_MANAGER,),
    Role.DEPUTY_MANAGER: (Role.STORE_MANAGER,),
    Role.SERVICE_AGENT: (Role.STORE_MANAGER, Role.SALES_MANAGER),
    Role.REP: (Role.SALES_MANAGER,),
    Role.TRAINER: (Role.SALES_MANAGER,),
    Role.ACCOUNTANT: (Role.REGIONAL_MANAGER,),
    Role.STORE_MANAGER: (Role.REGIONAL_MANAGER,),
    Role.SALES_MANAGER: (Role.REGIONAL_MANAGER,),
    Role.REGIONAL_MANAGER: (Role.REGIONAL_MANAGER,),
    Role.ADMIN: (),
}
# When a person holds several roles, the most senior one decides whom they report to.
SENIORITY = [Role.REGIONAL_MANAGER, Role.SALES_MANAGER, Role.STORE_MANAGER, Role.ACCOUNTANT, Role.DEPUTY_MANAGER,
             Role.TRAINER, Role.SERVICE_AGENT, Role.REP, Role.ASSISTANT]


class OrgUnit(db.Model):
    __tablename__ = "org_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id"))
    path: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Shanghai")
    opens_at: Mapped[time] = mapped_column(sa.Time, default=time(9, 0))
    closes_at: Mapped[time] = mapped_column(sa.Time, default=time(21, 0))
    active: Mapped[bool] = mapped_column(default=True)
    # Per-unit settings, inherited down the tree: thresholds set per company, a store's handover time, …
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)

    parent: Mapped["OrgUnit | None"] = relationship(remote_side=[id])

    @property
    def ancestor_ids(self) -> list[int]:
        """This unit's id and its ancestors' ids, nearest first."""
        return [int(p) for p in reversed(self.path.strip("/").split("/"))]

    def contains(self, other: "OrgUnit") -> bool:
        """True when `other` is this unit or below it."""
        return other.path.startswith(self.path)


class User(db.Model):
    __tablename__ = "users"
    # one login per spelling: `Li` and `li` would share a lockout counter and confuse every list of people
    __table_args__ = (sa.Index("uq_users_login_lower", sa.func.lower(sa.text("login")), unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254))
    locale: Mapped[str] = mapped_column(sa.String(8), default="zh")
    password_hash: Mapped[str] = mapped_column(sa.String(255), default="")
    active: Mapped[bool] = mapped_column(default=True)
    # Part of every sign-in session's id: raising it (engine.tokens.end_sessions) ends all of them at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # Who answers for this person while they hold no role: the unit of the admin who created them (only admins
    # at or above it see and manage them). None: the company's administrators.
    home_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id", name="fk_users_home_unit"))

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)


class RoleAssignment(db.Model):
    __tablename__ = "role_assignments"
    __table_args__ = (sa.UniqueConstraint("user_id", "role", "org_unit_id", name="uq_role_assignment"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(sa.String(32))
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("org_units.id"), index=True)

    user: Mapped[User] = relationship()
    org_unit: Mapped[OrgUnit] = relationship()


class Delegation(db.Model):
    """While active, `to_user` may act in all of `from_user`'s roles, on their behalf."""

    __tablename__ = "delegations"
    id: Mapped[int] = mapped_column(primary_key=True)
    from_user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    to_user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)

    from_user: Mapped[User] = relationship(foreign_keys=[from_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])


@dataclass(frozen=True)
class Holder:
    """Someone who acts in a role: `user` acts, for `on_behalf_of` when delegated (else None)."""

    user: User
    role: str
    on_behalf_of: User | None = None


# ---- writes (used by the CLI, the demo and the admin API) ----------------------------------------------

def add_unit(code: str, name: str, kind: str, parent_code: str | None = None, **fields) -> OrgUnit:
    """Create an org unit under `parent_code` (None for the company root)."""
    org_rules.check_code(code)
    org_rules.check_name(name)
    org_rules.check_time_of_day(fields.get("opens_at"), "opens_at")
    org_rules.check_time_of_day(fields.get("closes_at"), "closes_at")
    org_rules.check_hours(fields.get("opens_at") or time(9, 0), fields.get("closes_at") or time(21, 0))
    if kind not in {k.value for k in UnitKind}:
        raise InvalidInput(f"unknown kind '{kind}'", field="kind")
    if db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == code)):
        raise InvalidInput(f"org unit '{code}' already exists", field="code")
    parent = unit_by_code(parent_code) if parent_code else None
    unit = OrgUnit(code=code, name=name, kind=kind, parent=parent, **fields)
    db.session.add(unit)
    db.session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    return unit


def add_user(login: str, name: str, email: str, password: str, roles: list[tuple[str, str]] = (),
             locale: str = "zh", home_unit: OrgUnit | None = None) -> User:
    """Create a user with roles given as (role, org unit code) pairs; `home_unit` answers for them while they
    hold no role (None: the company)."""
    org_rules.check_login(login)
    if db.session.scalar(sa.select(User.id).where(sa.func.lower(User.login) == login.lower())):
        raise InvalidInput(f"user '{login}' already exists", field="login")
    org_rules.check_name(name)
    org_rules.check_email(email)
    if locale not in ("zh", "en"):
        raise InvalidInput(f"unknown locale '{locale}' (zh or en)", field="locale")
    user = User(login=login, name=name, email=email, locale=locale, home_unit_id=home_unit.id if home_unit else None)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    for role, code in roles:
        grant(user, role, code)
    return user


def grant(user: User, role: str, unit_code: str) -> RoleAssignment:
    """Give `user` role `role` at the unit with `unit_code`."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"unknown role '{role}'", field="role")
    assignment = RoleAssignment(user_id=user.id, role=role, org_unit=unit_by_code(unit_code))
    db.session.add(assignment)
    return assignment


def delegate(from_user: User, to_user: User, starts_at: datetime, ends_at: datetime) -> Delegation:
    """Record an out-of-office delegation from one user to another for [starts_at, ends_at)."""
    if from_user.id == to_user.id:
        raise InvalidInput("a user cannot delegate to themselves", field="to_user")
    if ends_at <= starts_at:
        raise InvalidInput("a delegation must end after it starts", field="ends_at")
    d = Delegation(from_user_id=from_user.id, to_user_id=to_user.id, starts_at=starts_at, ends_at=ends_at)
    db.session.add(d)
    return d


# ---- queries -------------------------------------------------------------------------------------------

def unit_by_code(code: str) -> OrgUnit:
    unit = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise InvalidInput(f"unknown org unit '{code}'", field="org_unit")
    return unit


def user_by_login(login: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.login == login))
    if user is None:
        raise InvalidInput(f"unknown user '{login}'", field="login")
    return user


def _active_delegations(at: datetime):
    return sa.and_(Delegation.starts_at <= at, Delegation.ends_at > at)


def delegate_of(user: User, at: datetime | None = None) -> User | None:
    """The active stand-in for `user` at `at`, if they are out of office."""
    return _stand_ins([user.id], at or clock.now()).get(user.id)


def principals(user: User, at: datetime | None = None) -> list[tuple[User, User | None]]:
    """Whom `user` can act as right now: themselves, then everyone who delegated to them (actor, on behalf of)."""
    delegators = db.session.scalars(_delegators_q(), {"user_id": user.id, "at": at or clock.now()}).all()
    return [(user, None)] + [(user, d) for d in delegators]


def principals_with_roles(user: User, unit: OrgUnit, at: datetime) -> tuple[list, dict[int, set[str]]]:
    """`principals(user, at)`, and the roles each of those people holds covering `unit`, in one query."""
    rows = db.session.execute(_principals_roles_q(), {"user_id": user.id, "units": unit.ancestor_ids, "at": at}).all()
    roles: dict[int, set[str]] = {}
    delegators: dict[int, User] = {}
    for person, role in rows:
        roles.setdefault(person.id, set())
        if role:
            roles[person.id].add(role)
        if person.id != user.id:
            delegators[person.id] = person
    return [(user, None)] + [(user, d) for d in delegators.values()], roles


# The hot lookups (every transition makes them) are built once with bound parameters: building a statement
# costs more Python than running it.

@functools.cache
def _delegators_q():
    at = sa.bindparam("at")
    return (sa.select(User).join(Delegation, Delegation.from_user_id == User.id)
            .where(Delegation.to_user_id == sa.bindparam("user_id"), Delegation.starts_at <= at,
                   Delegation.ends_at > at, User.active))


@functools.cache
def _principals_roles_q():
    at = sa.bindparam("at")
    user_id = sa.bindparam("user_id")
    delegators = sa.select(Delegation.from_user_id).where(Delegation.to_user_id == user_id, Delegation.starts_at <= at,
                                                          Delegation.ends_at > at)
    return (sa.select(User, RoleAssignment.role)
            .outerjoin(RoleAssignment, sa.and_(RoleAssignment.user_id == User.id,
                                               RoleAssignment.org_unit_id.in_(sa.bindparam("units", expanding=True))))
            .where(sa.or_(User.id == user_id, sa.and_(User.id.in_(delegators), User.active)))
            .order_by(User.id))


@functools.cache
def _roles_at_q():
    return sa.select(RoleAssignment.role).where(RoleAssignment.user_id == sa.bindparam("user_id"),
                                                RoleAssignment.org_unit_id.in_(sa.bindparam("units", expanding=True)))


@functools.cache
def _holders_q():
    at = sa.bindparam("at")
    delegate = orm.aliased(User)
    stand_in = (sa.select(Delegation.from_user_id, Delegation.starts_at, delegate)
                .join(delegate, Delegation.to_user_id == delegate.id)
                .where(Delegation.starts_at <= at, Delegation.ends_at > at, delegate.active).subquery())
    stand_in_user = orm.aliased(User, stand_in)
    return (sa.select(User, RoleAssignment.org_unit_id, stand_in_user)
            .join(RoleAssignment, RoleAssignment.user_id == User.id)
            .outerjoin(stand_in, stand_in.c.from_user_id == User.id)
            .where(RoleAssignment.role == sa.bindparam("role"),
                   RoleAssignment.org_unit_id.in_(sa.bindparam("units", expanding=True)), User.active)
            .order_by(User.id, stand_in.c.starts_at))


def setting(unit: OrgUnit, key: str, default=None):
    """A unit's setting, inherited: the nearest unit at or above `unit` that sets `key` decides."""
    units = {u.id: u for u in db.session.scalars(sa.select(OrgUnit).where(OrgUnit.id.in_(unit.ancestor_ids)))}
    for unit_id in unit.ancestor_ids:
        settings = units[unit_id].settings or {}
        if key in settings:
            return settings[key]
    return default


def roles_of(user: User) -> list[tuple[str, OrgUnit]]:
    """The user's own (role, unit) assignments."""
    rows = db.session.execute(
        sa.select(RoleAssignment.role, OrgUnit).join(OrgUnit, RoleAssignment.org_unit_id == OrgUnit.id)
        .where(RoleAssignment.user_id == user.id)).all()
    return [(role, unit) for role, unit in rows]


def roles_at(user: User, unit: OrgUnit) -> set[str]:
    """The roles `user` holds that cover `unit` (held at it or at a unit above it)."""
    return set(db.session.scalars(_roles_at_q(), {"user_id": user.id, "units": unit.ancestor_ids}))


def holders(role: str, unit: OrgUnit, at: datetime | None = None, exclude: set[int] = frozenset()) -> list[Holder]:
    """Who holds `role` at `unit` or the nearest unit above that has an active holder.

    A holder who is out of office is replaced by their delegate (acting on their behalf).
    """
    # Holders and their active stand-ins in one query (a step's owners are resolved on every transition).
    rows = db.session.execute(_holders_q(), {"role": role, "units": unit.ancestor_ids,
                                             "at": at or clock.now()}).all()
    for unit_id in unit.ancestor_ids:
        found: dict[int, Holder] = {}
        for user, at_unit, delegate_user in rows:
            if at_unit == unit_id and user.id not in exclude:
                # later rows win: the latest delegation
                found[user.id] = Holder(delegate_user, role, user) if delegate_user else Holder(user, role)
        if found:
            return list(found.values())
    return []


def holding_unit(role: str, unit: OrgUnit, at: datetime | None = None) -> OrgUnit | None:
    """The nearest unit at or above `unit` where someone active holds `role` (as `holders` finds them)."""
    rows = db.session.execute(_holders_q(), {"role": role, "units": unit.ancestor_ids, "at": at or clock.now()}).all()
    held = {at_unit for _, at_unit, _ in rows}
    nearest = next((unit_id for unit_id in unit.ancestor_ids if unit_id in held), None)
    return db.session.get(OrgUnit, nearest) if nearest is not None else None


def nearest_unit_of(user_id: int, unit: OrgUnit) -> OrgUnit | None:
    """The nearest unit at or above `unit` where the person holds any role."""
    held = set(db.session.scalars(sa.select(RoleAssignment.org_unit_id).where(
        RoleAssignment.user_id == user_id, RoleAssignment.org_unit_id.in_(unit.ancestor_ids))))
    nearest = next((unit_id for unit_id in unit.ancestor_ids if unit_id in held), None)
    return db.session.get(OrgUnit, nearest) if nearest is not None else None


def _stand_ins(user_ids: list[int], at: datetime) -> dict[int, User]:
    """Active delegates of the people in `user_ids` (one query), latest delegation first."""
    rows = db.session.execute(
        sa.select(Delegation.from_user_id, User).join(User, Delegation.to_user_id == User.id)
        .where(Delegation.from_user_id.in_(user_ids), _active_delegations(at), User.active)
        .order_by(Delegation.starts_at)).all()
    return {from_id: user for from_id, user in rows}  # later rows win: the latest delegation


def manager_of(user: User, unit: OrgUnit, at: datetime | None = None) -> list[Holder]:
    """Whom `user` reports to for work at `unit`: by their most senior role covering `unit`, the nearest
    holder of the role they report to, at or above the unit where they hold that role."""
    held = dict(db.session.execute(
        sa.select(RoleAssignment.role, OrgUnit).join(OrgUnit, RoleAssignment.org_unit_id == OrgUnit.id)
        .where(RoleAssignment.user_id == user.id, RoleAssignment.org_unit_id.in_(unit.ancestor_ids))
        .order_by(sa.func.length(OrgUnit.path))).all())  # on duplicates the nearest unit wins
    role = next((r for r in SENIORITY if r.value in held), None)
    if role is None:
        return []
    for boss_role in REPORTS_TO[role]:
        found = holders(boss_role.value, held[role.value], at, exclude={user.id})
        if found:
            return found
    return []
