"""Managing the organisation: units, people, role assignments and delegations, within an admin's scope.

An admin manages the units at and below where they hold the `admin` role, and the people who hold a role
there (or none yet). Anything outside that scope is reported as unknown, like an instance one may not see.
"""
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from engine import clock, dates, org, org_rules, tokens
from engine.db import db
from engine.errors import EngineError, InvalidInput, NotPermitted
from engine.org import Delegation, OrgUnit, Role, RoleAssignment, User


class UnknownObject(EngineError):
    status = 404
    code = "not_found"


def admin_paths(actor: User) -> list[str]:
    """The org paths `actor` administers; NotPermitted when none."""
    paths = sorted(unit.path for role, unit in org.roles_of(actor) if role == Role.ADMIN.value) if actor.active else []
    if not paths:
        raise NotPermitted(f"'{actor.login}' is not an administrator", reason="admin_only")
    return paths


def _in_scope(paths: list[str]):
    return sa.or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in paths))


def units(actor: User) -> list[OrgUnit]:
    return db.session.scalars(sa.select(OrgUnit).where(_in_scope(admin_paths(actor))).order_by(OrgUnit.path)).all()


def unit(actor: User, code: str) -> OrgUnit:
    found = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == code, _in_scope(admin_paths(actor))))
    if found is None:
        raise UnknownObject(f"no org unit '{code}'", org_unit=code)
    return found


def _check_timezone(name: str | None) -> None:
    if name is None:
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown timezone '{name}'", field="timezone") from None


def create_unit(actor: User, code: str, name: str, kind: str, parent: str | None, **fields) -> OrgUnit:
    _check_timezone(fields.get("timezone"))
    if parent is None:
        if "/" not in admin_paths(actor):
            raise NotPermitted("only an administrator of the whole company may add a top-level unit",
                               reason="admin_scope")
        if db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.parent_id.is_(None))):
            raise InvalidInput("the company already exists: give a parent", field="parent")
    else:
        _unit_for_write(actor, parent, "parent")
    created = org.add_unit(code, name, kind, parent, **fields)
    db.session.commit()
    return created


def _unit_for_write(actor: User, code: str, field: str) -> OrgUnit:
    try:
        return unit(actor, code)
    except UnknownObject:
        raise InvalidInput(f"unknown org unit '{code}'", field=field) from None


def update_unit(actor: User, code: str, name: str | None = None, timezone: str | None = None,
                opens_at: time | None = None, closes_at: time | None = None, active: bool | None = None) -> OrgUnit:
    target = unit(actor, code)
    _check_timezone(timezone)
    if name is not None:
        org_rules.check_name(name)
    org_rules.check_time_of_day(opens_at, "opens_at")
    org_rules.check_time_of_day(closes_at, "closes_at")
    org_rules.check_hours(opens_at or target.opens_at, closes_at or target.closes_at)
    for attr, value in (("name", name), ("timezone", timezone), ("opens_at", opens_at), ("closes_at", closes_at),
                        ("active", active)):
        if value is not None:
            setattr(target, attr, value)
    db.session.commit()
    return target


def _visible_users(actor: User):
    """Who the actor administers: everyone holding a role in their scope, and the people without a role whose
    home unit is in their scope (no home unit: the company's, so the administrators of the whole company)."""
    paths = admin_paths(actor)
    in_scope = (sa.select(RoleAssignment.user_id).join(OrgUnit, RoleAssignment.org_unit_id == OrgUnit.id)
                .where(_in_scope(paths)))
    home_in_scope = sa.select(OrgUnit.id).where(_in_scope(paths))
    company = db.session.scalar(sa.select(OrgUnit.path).where(OrgUnit.parent_id.is_(None))) in paths
    home = User.home_unit_id.in_(home_in_scope)
    if company:
        home = sa.or_(home, User.home_unit_id.is_(None))
    return sa.or_(User.id.in_(in_scope), sa.and_(User.id.not_in(sa.select(RoleAssignment.user_id)), home))


def users(actor: User) -> list[User]:
    return db.session.scalars(sa.select(User).where(_visible_users(actor)).order_by(User.login)).all()


def user(actor: User, login: str) -> User:
    found = db.session.scalar(sa.select(User).where(User.login == login, _visible_users(actor)))
    if found is None:
        raise UnknownObject(f"no user '{login}'", user=login)
    return found


def _outside(paths: list[str], person: User) -> list[str]:
    """The codes of the units outside `paths` where `person` holds a role."""
    return sorted({unit.code for _role, unit in org.roles_of(person) if not any(unit.path.startswith(p)
                                                                                 for p in paths)})


def _wholly_managed(actor: User, target: User) -> User:
    """`target`, when every role they hold, and every delegation they hold or give, lies in the actor's scope;
    NotPermitted otherwise. Whoever manages an account can take it over (reset the password, sign in): an
    account with authority outside the scope, its own or lent by a delegation, is for a higher administrator.
    A delegation lies in the scope when the other party's roles do; ended delegations lend nothing."""
    paths = admin_paths(actor)
    outside = _outside(paths, target)
    if outside:
        raise NotPermitted(f"'{target.login}' also holds roles outside your scope ({', '.join(outside)}): "
                           f"an administrator of the whole organisation must do this", reason="admin_scope")
    open_delegations = db.session.scalars(sa.select(Delegation).where(
        sa.or_(Delegation.from_user_id == target.id, Delegation.to_user_id == target.id),
        Delegation.ends_at > clock.now()).order_by(Delegation.id)).all()
    for d in open_delegations:
        gives = d.from_user_id == target.id
        other = d.to_user if gives else d.from_user
        outside = _outside(paths, other)
        if outside:
            raise NotPermitted(f"'{target.login}' {'gives a delegation to' if gives else 'holds a delegation from'} "
                               f"'{other.login}', who holds roles outside your scope ({', '.join(outside)}): an "
                               f"administrator of the whole organisation must do this", reason="admin_scope")
    return target


def _home_unit(actor: User, role_units: list[OrgUnit]) -> OrgUnit:
    """The unit that answers for a new person while they hold no role: the actor's topmost admin unit (the one
    covering all the given roles, when there is one)."""
    admin_units = sorted((u for role, u in org.roles_of(actor) if role == Role.ADMIN.value),
                         key=lambda u: (len(u.ancestor_ids), u.path))
    covering = [u for u in admin_units if all(u.contains(r) for r in role_units)]
    return (covering or admin_units)[0]


def create_user(actor: User, login: str, name: str, email: str, password: str, locale: str = "zh",
                roles: list[tuple[str, str]] = ()) -> User:
    """Add a person; only an administrator may, with roles inside their scope. The person belongs to the
    administrator's scope (their home unit) for as long as they hold no role."""
    admin_paths(actor)  # NotPermitted for anyone who is not an administrator, with roles or without
    role_units = [_unit_for_write(actor, code, "roles") for _, code in roles]
    created = org.add_user(login, name, email, password, list(roles), locale=locale,
                           home_unit=_home_unit(actor, role_units))
    db.session.commit()
    return created


def update_user(actor: User, login: str, name: str | None = None, email: str | None = None,
                locale: str | None = None, password: str | None = None, active: bool | None = None) -> User:
    target = _wholly_managed(actor, user(actor, login))
    if name is not None:
        org_rules.check_name(name)
    if email is not None:
        org_rules.check_email(email)
    if locale is not None and locale not in ("zh", "en"):
        raise InvalidInput(f"unknown locale '{locale}' (zh or en)", field="locale")
    if active is False and target.id == actor.id:
        raise InvalidInput("you cannot deactivate yourself", field="active")
    for attr, value in (("name", name), ("email", email), ("locale", locale), ("active", active)):
        if value is not None:
            setattr(target, attr, value)
    if password is not None:
        target.set_password(password)
    if password is not None or active is False:
        tokens.revoke_all(target)  # a reset or a deactivation ends every token and session, for good
    db.session.commit()
    return target


def roles(actor: User, login: str) -> list[RoleAssignment]:
    target = user(actor, login)
    return db.session.scalars(sa.select(RoleAssignment).where(RoleAssignment.user_id == target.id)
                              .order_by(RoleAssignment.id)).all()


def grant(actor: User, login: str, role: str, unit_code: str) -> RoleAssignment:
    target = _wholly_managed(actor, user(actor, login))
    _unit_for_write(actor, unit_code, "org_unit")
    exists = db.session.scalar(sa.select(RoleAssignment).join(OrgUnit, RoleAssignment.org_unit_id == OrgUnit.id)
                               .where(RoleAssignment.user_id == target.id, RoleAssignment.role == role,
                                      OrgUnit.code == unit_code))
    if exists:
        raise InvalidInput(f"'{login}' already holds {role} at {unit_code}", field="role")
    assignment = org.grant(target, role, unit_code)
    db.session.commit()
    return assignment


def revoke(actor: User, login: str, assignment_id: int) -> None:
    target = user(actor, login)
    paths = admin_paths(actor)
    assignment = db.session.get(RoleAssignment, assignment_id)
    if (assignment is None or assignment.user_id != target.id
            or not any(assignment.org_unit.path.startswith(p) for p in paths)):
        raise UnknownObject(f"no role assignment {assignment_id} for '{login}'", assignment=assignment_id)
    _wholly_managed(actor, target)
    if assignment.user_id == actor.id and assignment.role == Role.ADMIN.value:
        raise InvalidInput("you cannot remove your own admin role", field="role")
    db.session.delete(assignment)
    db.session.commit()


def delegations(actor: User) -> list[Delegation]:
    visible = sa.select(User.id).where(_visible_users(actor))
    return db.session.scalars(sa.select(Delegation).where(Delegation.from_user_id.in_(visible))
                              .order_by(Delegation.starts_at, Delegation.id)).all()


def create_delegation(actor: User, from_login: str, to_login: str, starts_at: datetime,
                      ends_at: datetime) -> Delegation:
    dates.check(starts_at, "starts_at")
    dates.check(ends_at, "ends_at")
    try:
        source, target = user(actor, from_login), user(actor, to_login)
    except UnknownObject as e:
        raise InvalidInput(e.message, field="from_user" if "'" + from_login + "'" in e.message else "to_user") from None
    # the delegate acts in all of the source's roles: both ends, and what they already lend, must be ours
    _wholly_managed(actor, source)
    _wholly_managed(actor, target)
    d = org.delegate(source, target, starts_at, ends_at)
    db.session.commit()
    return d


def delete_delegation(actor: User, delegation_id: int) -> None:
    d = db.session.get(Delegation, delegation_id)
    visible = {u.id for u in users(actor)}
    if d is None or d.from_user_id not in visible:
        raise UnknownObject(f"no delegation {delegation_id}", delegation=delegation_id)
    paths = admin_paths(actor)
    outside = _outside(paths, d.from_user) + _outside(paths, d.to_user)
    if outside:
        raise NotPermitted(f"delegation {delegation_id} lends authority outside your scope "
                           f"({', '.join(sorted(set(outside)))}): an administrator of the whole organisation must "
                           f"end it", reason="admin_scope")
    db.session.delete(d)
    db.session.commit()


def scope_unit(actor: User, code: str | None) -> OrgUnit:
    """The unit `code` inside the actor's scope (InvalidInput if not), or the top of their scope."""
    if code:
        return _unit_for_write(actor, code, "org_unit")
    top = admin_paths(actor)[0]
    return db.session.scalar(sa.select(OrgUnit).where(OrgUnit.path == top))


def targets(actor: User, year: int) -> list:
    """The annual targets of `year` inside the actor's scope."""
    from engine.targets import AnnualTarget

    return db.session.scalars(
        sa.select(AnnualTarget).join(OrgUnit, AnnualTarget.org_unit_id == OrgUnit.id)
        .where(AnnualTarget.year == year, _in_scope(admin_paths(actor))).order_by(OrgUnit.path, AnnualTarget.id)).all()


def set_targets(actor: User, rows: list[dict]) -> list:
    """Record annual targets (year, org_unit, user or None, amount, new_customers, visits), all or none."""
    from engine import targets as annual

    saved = []
    for i, row in enumerate(rows):
        unit = _unit_for_write(actor, row["org_unit"], f"{i}.org_unit")
        person = user(actor, row["user"]) if row.get("user") else None
        saved.append(annual.set_annual(row["year"], unit.id, person.id if person else None, row["amount"],
                                       row["new_customers"], row["visits"]))
    db.session.commit()
    return saved
