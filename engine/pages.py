"""Read helpers the web pages need beyond the engine's public API: where a person may start each workflow."""
import sqlalchemy as sa

from engine import clock, org, registry
from engine.db import db
from engine.org import OrgUnit, User
from engine.registry import Compiled


def startable(actor: User) -> list[tuple[Compiled, list[OrgUnit]]]:
    """Each latest workflow `actor` may start (as themselves or for whoever delegated to them), with the active
    units where they may: the units where they hold a start role, and the units below them."""
    persons = [principal or user for user, principal in org.principals(actor, clock.now())] if actor.active else []
    held = [(role, unit) for person in persons for role, unit in org.roles_of(person)]
    result = []
    for compiled in registry.latest():
        paths = sorted({unit.path for role, unit in held if role in compiled.wf.start_roles})
        if not paths:
            continue
        units = db.session.scalars(sa.select(OrgUnit).where(
            OrgUnit.active, sa.or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in paths)))
            .order_by(OrgUnit.path)).all()
        if units:
            result.append((compiled, list(units)))
    return result


def may_edit_calendar(actor: User) -> bool:
    """The business calendar is company-wide: only an administrator at the top of the org tree edits it."""
    from engine import admin
    from engine.errors import NotPermitted

    try:
        return any(path.count("/") == 2 for path in admin.admin_paths(actor))
    except NotPermitted:
        return False
