"""Attachments on instances: photos of the cash sheet, complaint evidence. Files live under the instance
folder (instance/attachments/<instance id>/), rows in the database; each upload shows in the history.

Limits (size, types) are checked here, so every entry point enforces the same ones. Who may see an attachment
is who may see its instance; callers check that first (`queries.visible_instance`).
"""
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock
from engine.db import UTCDateTime, db
from engine.errors import EngineError, InvalidPayload, UnknownInstance
from engine.models import Instance
from engine.org import User

MAX_BYTES = 10 * 1024 * 1024
# Sniffed from the first bytes: the client's Content-Type is not trusted.
SIGNATURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
    b"%PDF-": "application/pdf",
}
ALLOWED_TYPES = set(SIGNATURES.values()) | {"image/webp"}


class Attachment(db.Model):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("instances.id"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    stored_name: Mapped[str] = mapped_column(sa.String(100))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    uploaded_by: Mapped[User | None] = relationship()


class TooLarge(EngineError):
    status = 413
    code = "too_large"


class UnsupportedType(EngineError):
    status = 415
    code = "unsupported_media_type"


def sniff(head: bytes) -> str | None:
    """The content type the first bytes announce, or None when it is not one we accept."""
    for magic, kind in SIGNATURES.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def folder(root: Path, instance_id: int) -> Path:
    """Where an instance's files live: <instance folder>/attachments/<instance id>/."""
    return Path(root) / "attachments" / str(int(instance_id))


def add(root: Path, inst: Instance, user: User, filename: str, stream, max_bytes: int = MAX_BYTES) -> Attachment:
    """Store an uploaded file for `inst` (already checked visible to `user`) and record it."""
    name = Path((filename or "").replace("\\", "/")).name.strip()[:255] or "upload"
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"files may be at most {max_bytes} bytes", limit=max_bytes)
    if not data:
        raise InvalidPayload({"file": ["The file is empty."]})
    kind = sniff(data[:16])
    if kind is None:
        raise UnsupportedType(f"only {', '.join(sorted(ALLOWED_TYPES))} files are accepted",
                              allowed=sorted(ALLOWED_TYPES))
    target = folder(root, inst.id)
    target.mkdir(parents=True, exist_ok=True)
    stored = uuid.uuid4().hex
    (target / stored).write_bytes(data)
    att = Attachment(instance_id=inst.id, filename=name, content_type=kind, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), stored_name=stored, uploaded_by_id=user.id,
                     created_at=clock.now())
    db.session.add(att)
    try:
        db.session.commit()
    except BaseException:
        (target / stored).unlink(missing_ok=True)
        raise
    return att


def of(instance_id: int) -> list[Attachment]:
    """An instance's attachments, oldest first."""
    return db.session.scalars(sa.select(Attachment).where(Attachment.instance_id == instance_id)
                              .order_by(Attachment.id)).all()


def get(instance_id: int, attachment_id: int) -> Attachment:
    """One attachment of one instance (an id under another instance is unknown)."""
    att = db.session.get(Attachment, attachment_id)
    if att is None or att.instance_id != instance_id:
        raise UnknownInstance(f"no attachment {attachment_id} on instance {instance_id}", attachment=attachment_id)
    return att


def path(root: Path, att: Attachment) -> Path:
    """The stored file of an attachment."""
    return folder(root, att.instance_id) / att.stored_name


@dataclass(frozen=True)
class AttachmentEntry:
    """An upload as a history entry."""

    at: datetime
    kind: str
    actor: User | None
    detail: str
    data: dict


def history_entries(instance_id: int) -> list[AttachmentEntry]:
    """The uploads as history entries, for `queries.full_history`."""
    return [AttachmentEntry(a.created_at, "attachment", a.uploaded_by, a.filename,
                            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size})
            for a in of(instance_id)]
