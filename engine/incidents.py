"""Incidents: what failed with nobody there to see it — RQ jobs that raised, emails that could not be delivered —
listed for administrators, each with a retry and a resolve action. Every action is logged with who took it.

Failed jobs belong to the whole company (timers and mail of every store run in them): only administrators
of the top unit see them. Failed emails are listed to the administrators of the instance's unit or above.
A resolved email stays `failed` (it was never delivered, and the instance's history keeps saying so); it
only leaves the list (`context.resolved` records who resolved it and when).
"""
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from engine import admin, alarm, clock, org, queue
from engine.admin import UnknownObject
from engine.db import db, write_transaction
from engine.errors import NotAvailable, NotPermitted
from engine.models import Instance, Notification, NotificationStatus
from engine.org import OrgUnit, Role, User

log = logging.getLogger(__name__)

LIMIT = 200


@dataclass(frozen=True)
class FailedJob:
    id: str
    function: str
    error: str  # the last line of the traceback: the exception and its message
    failed_at: datetime | None


# ---- failed RQ jobs ---------------------------------------------------------------------------------------

def _scope(actor: User) -> tuple[list[str], bool]:
    """The org paths `actor` administers (NotPermitted when none), and whether that is the whole company."""
    paths = admin.admin_paths(actor)
    return paths, any(role == Role.ADMIN.value and unit.parent_id is None for role, unit in org.roles_of(actor))


def _company_admin(actor: User) -> None:
    if not _scope(actor)[1]:
        raise NotPermitted(f"'{actor.login}' is not an administrator of the whole company", reason="admin_scope")


def may_see_jobs(actor: User) -> bool:
    """Whether `actor` sees the failed jobs (administrators of the top unit)."""
    try:
        _company_admin(actor)
    except NotPermitted:
        return False
    return True


def _registry() -> FailedJobRegistry:
    return FailedJobRegistry(queue=queue.current())


def failed_jobs(actor: User, limit: int = LIMIT) -> list[FailedJob]:
    """The queue's failed jobs, most recent first."""
    _company_admin(actor)
    registry = _registry()
    ids = list(reversed(registry.get_job_ids()))[:limit]
    jobs = [j for j in Job.fetch_many(ids, connection=registry.connection) if j is not None]
    return [FailedJob(j.id, j.func_name or "?", _last_line(_traceback(j)), j.ended_at) for j in jobs]


def _traceback(job: Job) -> str | None:
    result = job.latest_result()
    return result.exc_string if result is not None else None


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _job_in_registry(job_id: str) -> FailedJobRegistry:
    registry = _registry()
    if job_id not in registry:
        raise UnknownObject(f"no failed job '{job_id}'", job=job_id)
    return registry


def retry_job(actor: User, job_id: str) -> None:
    """Put a failed job back on the queue (a worker runs it again)."""
    _company_admin(actor)
    try:
        _job_in_registry(job_id).requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError):  # gone meanwhile (expired, or retried by someone else)
        raise UnknownObject(f"no failed job '{job_id}'", job=job_id) from None
    log.info("incident: %s retried failed job %s", actor.login, job_id)


def resolve_job(actor: User, job_id: str) -> None:
    """Forget a failed job (it is deleted; what it was for is re-armed from the database if still due)."""
    _company_admin(actor)
    _job_in_registry(job_id).remove(job_id, delete_job=True)
    log.info("incident: %s resolved (deleted) failed job %s", actor.login, job_id)


# ---- failed emails ----------------------------------------------------------------------------------------

def _visible_emails(actor: User):
    paths, company = _scope(actor)
    in_scope = sa.or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in paths))
    return (sa.select(Notification).outerjoin(Instance, Notification.instance_id == Instance.id)
            .outerjoin(OrgUnit, Instance.org_unit_id == OrgUnit.id)
            .where(sa.or_(in_scope, Notification.instance_id.is_(None)) if company else in_scope))


def unresolved():
    """The condition "failed for good and not resolved" on notifications (the list, and the metrics gauge)."""
    return sa.and_(Notification.status == NotificationStatus.FAILED.value,
                   Notification.context["resolved"].as_string().is_(None))


def failed_emails(actor: User, limit: int = LIMIT) -> list[Notification]:
    """Emails that failed for good and are not resolved, in `actor`'s scope, most recent first."""
    return db.session.scalars(_visible_emails(actor).where(unresolved())
                              .order_by(Notification.id.desc()).limit(limit)).all()


def _failed_email(actor: User, notification_id: int) -> Notification:
    n = db.session.scalar(_visible_emails(actor).where(Notification.id == notification_id)
                           .with_for_update(of=Notification))
    if n is None:
        raise UnknownObject(f"no email #{notification_id}", notification=notification_id)
    if n.status != NotificationStatus.FAILED.value or (n.context or {}).get("resolved"):
        raise NotAvailable(f"email #{notification_id} is not a failed email (already retried or resolved)",
                           notification=notification_id, status=n.status)
    return n


def retry_email(actor: User, notification_id: int) -> Notification:
    """Send a failed email again: back to pending with its attempts reset, and a mail sender woken."""
    with write_transaction():
        n = _failed_email(actor, notification_id)
        n.status, n.attempts, n.next_attempt_at, n.sent_at = NotificationStatus.PENDING.value, 0, None, None
        alarm.mail_waiting(db.session)
    log.info("incident: %s retried email #%s to user %s (last error: %s)", actor.login, n.id, n.user_id,
                n.last_error)
    return n


def resolve_email(actor: User, notification_id: int) -> Notification:
    """Take a failed email off the incidents list; it stays failed in the instance's history."""
    with write_transaction():
        n = _failed_email(actor, notification_id)
        n.context = {**(n.context or {}), "resolved": {"by": actor.login, "at": clock.now().isoformat()}}
    log.info("incident: %s resolved email #%s to user %s (last error: %s)", actor.login, n.id, n.user_id,
                n.last_error)
    return n
