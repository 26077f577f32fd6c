"""Runtime records: workflow instances, their audit trail, signatures, timers and outbox notifications."""
from datetime import datetime
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import JSONType, UTCDateTime, db
from engine.org import OrgUnit, User


class TimerStatus(str, Enum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"  # the instance left the state first
    SKIPPED = "skipped"      # found stale when it fell due (defensive: leaving a state cancels its timers)


class NotificationStatus(str, Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Instance(db.Model):
    """One running (or finished) workflow, pinned to the definition version it started on."""

    __tablename__ = "instances"
    __table_args__ = (
        sa.Index("ix_instances_workflow_state", "workflow", "state"),
        # Open work by due time (overdue report, overdue filters): stays the size of open work, not of history.
        sa.Index("ix_instances_open_due", "due_at", postgresql_where=sa.text("closed_at IS NULL"),
                 sqlite_where=sa.text("closed_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow: Mapped[str] = mapped_column(sa.String(64))
    definition_version: Mapped[int]
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(64))
    # Bumped on every state change (not on signatures within a state): timers remember the one that armed them.
    state_seq: Mapped[int] = mapped_column(default=1)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the current step's deadline, if any
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the scheduler ("stocktake:SH01:2026-11"): at most one instance per store per period.
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    # The hash of the latest audit event: the next one chains to it without reading the trail back.
    audit_hash: Mapped[str | None] = mapped_column(sa.String(64))

    org_unit: Mapped[OrgUnit] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    # The engine bumps `version` once per fired trigger; SQLAlchemy adds "AND version = :old" to the UPDATE
    # and raises StaleDataError when another transaction got there first: the optimistic lock.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class AuditEvent(db.Model):
    """Append-only: one row per fired trigger. (instance_id, seq) is unique, so no version gets two events."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.UniqueConstraint("instance_id", "seq", name="uq_audit_events_instance_seq"),
                      sa.Index("ix_audit_events_created_at", "created_at"))  # reports over a period
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("instances.id"))
    seq: Mapped[int]
    trigger: Mapped[str] = mapped_column(sa.String(64))
    from_state: Mapped[str | None] = mapped_column(sa.String(64))
    to_state: Mapped[str] = mapped_column(sa.String(64))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # None: the system
    on_behalf_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))  # the chain: see engine/audit.py
    hash: Mapped[str | None] = mapped_column(sa.String(64))

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    on_behalf_of: Mapped[User | None] = relationship(foreign_keys=[on_behalf_of_id])


class Signature(db.Model):
    """A person's signature on a multi-signature step; one per person per visit to the step."""

    __tablename__ = "signatures"
    __table_args__ = (sa.UniqueConstraint("instance_id", "state_seq", "user_id", name="uq_signatures_person"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("instances.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(64))
    state_seq: Mapped[int]
    trigger: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(32))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    on_behalf_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    on_behalf_of: Mapped[User | None] = relationship(foreign_keys=[on_behalf_of_id])
    instance: Mapped[Instance] = relationship()


class Timer(db.Model):
    """A deadline or escalation rung, armed on entering a state and cancelled on leaving it.

    The database row is the source of truth; Redis only wakes a worker up.
    """

    __tablename__ = "timers"
    __table_args__ = (sa.Index("ix_timers_status_due", "status", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("instances.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(64))
    state_seq: Mapped[int]
    rung: Mapped[int]  # 0 is the deadline itself; 1.. are the ladder's rungs in definition order
    action: Mapped[str] = mapped_column(sa.String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default=TimerStatus.PENDING.value)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(sa.Text)  # e.g. why an automatic trigger did nothing

    instance: Mapped[Instance] = relationship()


class Notification(db.Model):
    """Outbox: written in the transaction that causes it, sent later by a worker."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_status", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey("instances.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    on_behalf_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    context: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=NotificationStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set while retrying with backoff
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    on_behalf_of: Mapped[User | None] = relationship(foreign_keys=[on_behalf_of_id])
    instance: Mapped[Instance | None] = relationship()


class ApiToken(db.Model):
    """A bearer token for the API. Only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
