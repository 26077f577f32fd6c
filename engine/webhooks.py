"""Webhooks: admins register HTTPS endpoints for events; each delivery is an HMAC-signed JSON POST.

Events are written as delivery rows in the same transaction as what caused them (an outbox, like mail):
`instance.started` and `instance.transitioned` from each new audit event, `step.overdue` and `step.escalated`
from timers as they fire. After commit an RQ job sends them, retrying with backoff; every attempt is logged.
Each event has an id (the same for every endpoint) so receivers can de-duplicate.

Signature: header `X-Signoff-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
"""
from datetime import datetime
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import JSONType, UTCDateTime, db


class Event(str, Enum):
    STARTED = "instance.started"
    TRANSITIONED = "instance.transitioned"
    OVERDUE = "step.overdue"
    ESCALATED = "step.escalated"


class DeliveryStatus(str, Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


MAX_ATTEMPTS = 6
BACKOFF = [10, 60, 300, 1800, 7200]  # seconds before attempts 2, 3, ...
TIMEOUT = 10


class Webhook(db.Model):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    secret: Mapped[str] = mapped_column(sa.String(100))
    events: Mapped[list] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
                      sa.Index("ix_webhook_deliveries_status", "status", "next_attempt_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id"), index=True)
    event_id: Mapped[str] = mapped_column(sa.String(64))
    event: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    webhook: Mapped[Webhook] = relationship()
