"""Idempotency keys for API writes: a repeat of the same request with the same key gets the first response
and changes nothing; the same key with a different request is refused.

A key is reserved (committed) before the write runs, so a concurrent duplicate sees it in progress instead of
writing twice; the response is stored once the write is done. Records are per user.
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock
from engine.db import JSONType, UTCDateTime, db
from engine.errors import EngineError, InvalidPayload


class RecordStatus(str, Enum):
    IN_PROGRESS = "in_progress"
    DONE = "done"


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_idempotency_records_user_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default=RecordStatus.IN_PROGRESS.value)
    response_status: Mapped[int | None]
    response_body: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InProgress(EngineError):
    """The first request with this key is still being processed."""

    status = 409
    code = "idempotency_in_progress"


class KeyReused(EngineError):
    status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


def request_hash(method: str, path: str, body) -> str:
    """A stable digest of what was asked (method, path, and the JSON body with keys sorted)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def begin(user_id: int, key: str, digest: str) -> Replay | None:
    """Reserve `key` for this request, or return the stored response of the earlier identical request.

    Raises KeyReused when the key was used for a different request, InProgress while the first one runs.
    """
    if not key or len(key) > 255:
        raise InvalidPayload({"Idempotency-Key": ["Must be 1 to 255 characters."]})
    record = IdempotencyRecord(user_id=user_id, key=key, request_hash=digest, created_at=clock.now())
    db.session.commit()
    try:
        with db.session.begin_nested():
            db.session.add(record)
        db.session.commit()
        return None
    except IntegrityError:
        db.session.rollback()
    existing = db.session.scalar(sa.select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))
    if existing.request_hash != digest:
        raise KeyReused("this Idempotency-Key was already used for a different request",
                        errors={"Idempotency-Key": ["Already used for a different request."]})
    if existing.status != RecordStatus.DONE.value:
        raise InProgress("the first request with this Idempotency-Key is still being processed")
    return Replay(existing.response_status, existing.response_body)


def storable(value):
    """`value` with every string made storable in any database's JSON column: NUL (which PostgreSQL refuses) and
    unpaired surrogates (which cannot be encoded) become U+FFFD. Everything else is unchanged."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def finish(user_id: int, key: str, status: int, body: dict) -> None:
    """Store the response of the request that reserved `key` (made storable: see `storable`)."""
    db.session.rollback()
    db.session.execute(sa.update(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key).values(
        status=RecordStatus.DONE.value, response_status=status, response_body=storable(body)))
    db.session.commit()


def abandon(user_id: int, key: str) -> None:
    """Forget a reservation whose request failed unexpectedly, so a retry can run."""
    db.session.rollback()
    db.session.execute(sa.delete(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key,
        IdempotencyRecord.status == RecordStatus.IN_PROGRESS.value))
    db.session.commit()
