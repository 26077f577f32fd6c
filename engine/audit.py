"""The audit trail is the legal record of who signed off what: append-only, and hash-chained per instance so
that `flask --app wsgi audit verify` detects — and names — any row changed or removed behind the app's back.

Each event's hash is SHA-256 over its canonical JSON (everything it records) and the previous event's hash.
"""
import hashlib
import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.db import _json_default, db
from engine.models import AuditEvent


def digest(event: AuditEvent, prev_hash: str | None) -> str:
    record = {"instance": event.instance_id, "seq": event.seq, "trigger": event.trigger, "from": event.from_state,
              "to": event.to_state, "actor": event.actor_id, "on_behalf_of": event.on_behalf_of_id,
              "data": event.data, "comment": event.comment, "at": event.created_at.isoformat(), "prev": prev_hash}
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


def seal(event: AuditEvent, instance) -> None:
    """Chain a new event to the instance's previous one (inside the writing transaction, the instance locked),
    and make it the instance's chain head."""
    event.prev_hash = instance.audit_hash
    event.hash = digest(event, event.prev_hash)
    instance.audit_hash = event.hash


@dataclass(frozen=True)
class Problem:
    instance_id: int
    seq: int
    event_id: int | None
    what: str

    def __str__(self) -> str:
        where = f"instance {self.instance_id}, event {self.seq}" + (f" (id {self.event_id})" if self.event_id else "")
        return f"{where}: {self.what}"


def verify(instance_id: int | None = None, batch: int = 5000) -> tuple[int, list[Problem]]:
    """Walk every chain (or one instance's) against the instance's version, which counts its events;
    returns (events checked, problems found)."""
    from engine.models import Instance

    versions_q = sa.select(Instance.id, Instance.version)
    q = sa.select(AuditEvent).order_by(AuditEvent.instance_id, AuditEvent.seq)
    if instance_id is not None:
        versions_q = versions_q.where(Instance.id == instance_id)
        q = q.where(AuditEvent.instance_id == instance_id)
    versions = dict(db.session.execute(versions_q).all())
    problems: list[Problem] = []
    checked, current, prev, expected_seq = 0, None, None, 1

    def close(chain_of: int | None, next_seq: int) -> None:
        if chain_of is not None and next_seq <= versions.get(chain_of, 0):
            problems.append(Problem(chain_of, next_seq, None,
                                    f"missing (the instance is at version {versions[chain_of]}): removed"))

    for event in db.session.scalars(q.execution_options(yield_per=batch)):
        if event.instance_id != current:
            close(current, expected_seq)
            versions.pop(current, None)
            current, prev, expected_seq = event.instance_id, None, 1
        checked += 1
        if event.seq != expected_seq:
            problems.append(Problem(event.instance_id, expected_seq, None,
                                    f"missing (the next one is event {event.seq}): removed"))
        if event.prev_hash != prev:
            problems.append(Problem(event.instance_id, event.seq, event.id, "does not follow the event before it"))
        if event.hash != digest(event, event.prev_hash):
            problems.append(Problem(event.instance_id, event.seq, event.id, "changed after it was written"))
        prev, expected_seq = event.hash, event.seq + 1
    close(current, expected_seq)
    versions.pop(current, None)
    problems += [Problem(i, 1, None, "has no audit events at all: removed") for i in sorted(versions)]
    return checked, problems


def _refuse_changes(session: Session, _context, _instances) -> None:
    if any(isinstance(o, AuditEvent) for o in (*session.dirty, *session.deleted)):
        raise RuntimeError("audit events are append-only: they are never updated or deleted")


def _refuse_bulk_changes(state) -> None:
    if (state.is_update or state.is_delete) and any(
            getattr(m, "class_", None) is AuditEvent for m in state.all_mappers):
        raise RuntimeError("audit events are append-only: they are never updated or deleted")


def install(session_factory) -> None:
    """Guard the sessions: no ORM code path may update or delete an audit event."""
    if not sa.event.contains(session_factory, "before_flush", _refuse_changes):
        sa.event.listen(session_factory, "before_flush", _refuse_changes)
        sa.event.listen(session_factory, "do_orm_execute", _refuse_bulk_changes)
