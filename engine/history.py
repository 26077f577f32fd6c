"""An instance's history: its audit events and what became of the mail it caused, in time order."""
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine.db import db
from engine.models import AuditEvent, Notification, NotificationStatus


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str            # "event" (a fired trigger) or "mail_failed"
    event: AuditEvent | None = None
    notification: Notification | None = None


def history(instance_id: int) -> list[Entry]:
    """Every audit event, plus every notification that could not be delivered, oldest first."""
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                .order_by(AuditEvent.seq)).all()
    failed = db.session.scalars(sa.select(Notification).where(
        Notification.instance_id == instance_id, Notification.status == NotificationStatus.FAILED.value)).all()
    entries = [Entry(e.created_at, "event", event=e) for e in events]
    entries += [Entry(n.sent_at or n.created_at, "mail_failed", notification=n) for n in failed]
    return sorted(entries, key=lambda e: (e.at, e.kind != "event"))
