"""Notification emails: rendered in each recipient's language, sent over SMTP from the outbox.

A sender claims one row at a time with a short lease (status "sending" until MAIL_LEASE; FOR UPDATE SKIP
LOCKED while claiming), sends it and commits the outcome at once. A killed sender so leaves exactly one
message behind, taken up again when its lease runs out (the reconciler wakes a sender for it).

Delivery is at least once: a sender killed between the SMTP server's 250 and our commit sends that one message
again. No protocol closes that gap (the server's commit and ours cannot be one), so the Message-ID is derived
from the idempotency key and stays the same on every attempt: receivers can tell the copy from a new message.

Temporary failures retry with backoff (MAIL_BACKOFF); a permanent refusal, or running out of attempts, ends
the row as failed: visible in `flask --app wsgi mail failed` and in the instance's history.
"""
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.dates import format_datetime, format_timedelta
from flask import current_app
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import joinedload

from engine import alarm, clock, metrics, registry
from engine.db import db, write_transaction
from engine.models import Notification, NotificationStatus
from engine.org import User
from engine.org_rules import one_line

log = logging.getLogger(__name__)

BACKOFF = [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30),
           timedelta(hours=2)]
SENDING = "sending"

_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates" / "mail"),
                         autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


@dataclass
class Outcome:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


class PermanentFailure(Exception):
    pass


def step_facts(inst, owners: list) -> dict:
    """What an email states about the step, captured when the notification is written (`render` reads it)."""
    unit = inst.org_unit
    return {"workflow": inst.workflow, "version": inst.definition_version, "state": inst.state,
            "org_unit": unit.code, "org_unit_name": unit.name, "unit_tz": unit.timezone,
            "owners": [h.user.name for h in owners]}


def render(n: Notification, user: User, base_url: str, sender: str, now: datetime) -> EmailMessage:
    """The email for one notification, in the recipient's language (zh unless they chose en)."""
    lang = "en" if user.locale == "en" else "zh"
    babel_locale = "en" if lang == "en" else "zh_Hans_CN"
    ctx = n.context
    compiled = registry.get(ctx["workflow"], ctx.get("version"))
    wf = compiled.wf
    state = wf.state(ctx["state"])
    tz = ZoneInfo(ctx.get("unit_tz") or "Asia/Shanghai")
    due = datetime.fromisoformat(ctx["due_at"]) if ctx.get("due_at") else None
    # Names are data (a unit's, a person's, captured when the step was entered): each is made one line, so a
    # CR/LF or a control character stored in one can neither fail the message nor add a header to it.
    facts = {
        "kind": n.kind, "name": one_line(user.name), "workflow": wf.title[lang], "step": state.title[lang],
        "unit": one_line(ctx.get("org_unit_name") or ctx.get("org_unit")),
        "owners": [one_line(o) for o in ctx.get("owners") or []],
        "due": format_datetime(due, "yyyy-MM-dd HH:mm", tzinfo=tz, locale=babel_locale) if due else None,
        "overdue": format_timedelta(now - due, locale=babel_locale, threshold=1.5) if due and due < now else None,
        "link": f"{base_url}/instances/{n.instance_id}",
        "on_behalf_of": one_line(n.on_behalf_of.name) if n.on_behalf_of else None,
        "details": [(one_line(f["label"][lang]), one_line(f["value"][lang] if isinstance(f["value"], dict)
                                                          else f["value"])) for f in ctx.get("facts") or []],
    }
    msg = EmailMessage()
    msg["Subject"] = one_line(_templates.get_template(f"subject.{lang}.txt").render(**facts).strip())
    msg["From"] = sender
    msg["To"] = recipient(user)
    msg["Message-ID"] = f"<{n.idempotency_key.replace(':', '.')}@signoff>"
    msg["X-Signoff-Notification"] = str(n.id)
    msg.set_content(_templates.get_template(f"body.{lang}.txt").render(**facts))
    msg.add_alternative(_templates.get_template(f"body.{lang}.html").render(**facts), subtype="html")
    if n.kind == "task" and n.instance is not None:
        for name in state.attachments:
            for filename, mime, content in compiled.functions[name](n.instance, lang):
                maintype, _, subtype = mime.partition("/")
                if maintype == "text":  # as text, so it is sent with its charset (UTF-8), not as bare bytes
                    msg.add_attachment(content.decode("utf-8"), subtype=subtype, filename=filename)
                else:
                    msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg


class BadAddress(PermanentFailure):
    """The recipient's stored address is not one (no retry can help)."""


def recipient(user: User) -> Address:
    """The To header for `user`: their name (made one line) and their address, which must be a single valid
    address (BadAddress otherwise: a stored address with a CR/LF or a second recipient is never sent to)."""
    email = user.email or ""
    try:
        if one_line(email) != email or email.count("@") != 1:
            raise ValueError(email)
        return Address(display_name=one_line(user.name), addr_spec=email)
    except (ValueError, IndexError, HeaderParseError):
        raise BadAddress(f"not a valid email address: {one_line(email)!r}") from None


def due(now: datetime):
    """The notifications a sender should take now: pending and due, or leased by a sender that never finished."""
    return sa.or_(
        sa.and_(Notification.status == NotificationStatus.PENDING.value,
                sa.or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now)),
        sa.and_(Notification.status == SENDING, Notification.next_attempt_at <= now))


@dataclass
class _Attempt:
    """One send attempt and what came of it."""

    id: int
    attempts: int  # before this one
    email: str
    at: datetime
    error: str | None = None
    permanent: bool = False


def _claim(now: datetime, lease: timedelta) -> Notification | None:
    """Lease the next due notification to this sender (only the one it is about to send), in the caller's
    transaction; returns it with its recipients loaded."""
    oldest = (sa.select(Notification.id).where(due(now)).order_by(Notification.id).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())
    nid = db.session.scalar(sa.update(Notification).where(Notification.id == oldest)
                            .values(status=SENDING, next_attempt_at=now + lease).returning(Notification.id),
                            execution_options={"synchronize_session": False})
    if nid is None:
        return None
    return db.session.scalars(sa.select(Notification).where(Notification.id == nid)
                              .options(joinedload(Notification.user), joinedload(Notification.on_behalf_of))
                              .execution_options(populate_existing=True)).one()


def backoff(cfg) -> list[timedelta]:
    """The waits between attempts: MAIL_BACKOFF (seconds) when configured, else BACKOFF."""
    return [timedelta(seconds=s) for s in cfg["MAIL_BACKOFF"]] or BACKOFF


def send_pending(now: datetime | None = None) -> Outcome:
    """Send every notification that is due, one at a time, until none is left; returns the counts.

    Each message is sent outside any transaction, and its outcome committed on its own the moment the server
    has replied: the window in which a crash makes a re-delivery is one UPDATE and its COMMIT (taking the next
    lease in the same transaction would save a commit per message but widen the window)."""
    cfg = current_app.config
    lease = timedelta(seconds=cfg["MAIL_LEASE"])
    outcome, smtp = Outcome(), None
    try:
        while True:
            with write_transaction():
                n = _claim(now or clock.now(), lease)
            if n is None:
                break
            attempt = _Attempt(n.id, n.attempts, n.user.email, now or clock.now())
            smtp = _send(n, smtp, cfg, attempt)
            with write_transaction():
                _record(attempt, cfg, outcome)
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
    return outcome


def _send(n: Notification, smtp, cfg, attempt: _Attempt):
    """Send one notification; notes any error on `attempt`; returns the connection to reuse (or None)."""
    try:
        msg = render(n, n.user, cfg["BASE_URL"], cfg["MAIL_FROM"], attempt.at)
    except BadAddress as e:
        attempt.error, attempt.permanent = str(e), True
        return smtp
    except Exception as e:  # a template or definition problem: retried with backoff, then failed visibly
        log.exception("notification %s could not be rendered", n.id)
        attempt.error = f"cannot render: {type(e).__name__}: {e}"
        return smtp
    try:
        smtp = smtp or _connect(cfg)
        refused = smtp.send_message(msg)
        if refused:
            raise PermanentFailure(f"refused: {refused}")
    except smtplib.SMTPRecipientsRefused as e:
        attempt.error, attempt.permanent = f"recipient refused: {e.recipients}", True
    except smtplib.SMTPResponseException as e:
        attempt.error, attempt.permanent = f"{e.smtp_code} {e.smtp_error!r}", 500 <= e.smtp_code < 600
        smtp = None if not attempt.permanent else smtp
    except PermanentFailure as e:
        attempt.error, attempt.permanent = str(e), True
    except (smtplib.SMTPException, OSError) as e:
        attempt.error, smtp = f"{type(e).__name__}: {e}", None
    return smtp


def _record(a: _Attempt, cfg, outcome: Outcome) -> None:
    """Write the outcome of an attempt (inside the caller's transaction)."""
    tries = a.attempts + 1
    waits = backoff(cfg)
    if a.error is None:
        values = {"status": NotificationStatus.SENT.value, "sent_at": a.at, "next_attempt_at": None,
                  "last_error": None}
        outcome.sent += 1
    elif a.permanent or tries > len(waits):
        # sent_at records when it was given up on, so the instance's history can place it
        values = {"status": NotificationStatus.FAILED.value, "sent_at": a.at, "next_attempt_at": None,
                  "last_error": a.error}
        outcome.failed += 1
        log.error("notification %s to %s failed for good: %s", a.id, a.email, a.error)
    else:
        values = {"status": NotificationStatus.PENDING.value, "next_attempt_at": a.at + waits[tries - 1],
                  "last_error": a.error}
        outcome.retrying += 1
        alarm.mail_waiting(db.session, values["next_attempt_at"])
    db.session.execute(sa.update(Notification).where(Notification.id == a.id).values(attempts=tries, **values),
                       execution_options={"synchronize_session": False})
    metrics.email_outcome(db.session, values["status"])  # counted when this outcome commits


def _connect(cfg) -> smtplib.SMTP:
    cls = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    smtp = cls(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"])
    if cfg["MAIL_USE_TLS"]:
        smtp.starttls()
    if cfg["MAIL_USERNAME"]:
        smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
    return smtp


def failed() -> list[Notification]:
    """Notifications that ended as failed, newest first (for `mail failed`)."""
    return db.session.scalars(sa.select(Notification).where(Notification.status == NotificationStatus.FAILED.value)
                              .order_by(Notification.id.desc())).all()
