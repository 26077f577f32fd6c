"""Webhooks: admins register HTTPS endpoints for events; each delivery is an HMAC-signed JSON POST.

Events are written as delivery rows in the same transaction as what caused them (an outbox, like mail):
`instance.started` and `instance.transitioned` from each new audit event, `step.overdue` and `step.escalated`
from timers as they fire. After commit an RQ job sends them, retrying with backoff; every attempt is logged.
Each event has an id (the same for every endpoint) so receivers can de-duplicate.

Signature: header `X-Signoff-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.

Endpoints are never inside our network (engine/egress.py: checked on registration and on every connect), a
redirect is a failed attempt (never followed), and the log says only "delivery failed" or the HTTP status:
nothing that would tell a closed port from a filtered one. Each webhook's deliveries are sent by a job of its
own, so a slow or dead receiver delays only itself.
"""
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import datetime, timedelta
from enum import Enum
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock, egress
from engine.db import JSONType, UTCDateTime, db, json_dumps
from engine.errors import InvalidInput, UnknownInstance
from engine.models import Instance, Timer
from engine.org import OrgUnit

log = logging.getLogger(__name__)


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
MAX_PER_UNIT = 10
BUDGET = 60  # seconds one sending job spends before it hands the rest to a fresh job
FAILED = "delivery failed"  # the only reason given for an attempt that got no HTTP answer


class Webhook(db.Model):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    secret: Mapped[str] = mapped_column(sa.String(100))
    events: Mapped[list] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # Events of instances at this unit or below are sent (the registering admin's scope).
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("org_units.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    org_unit: Mapped[OrgUnit] = relationship()


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


# ---- registering endpoints -------------------------------------------------------------------------------

def _settings() -> tuple[tuple[str, ...], float]:
    from flask import current_app

    return (egress.allowed_list(current_app.config.get("WEBHOOK_ALLOWED_HOSTS", ())),
            float(current_app.config.get("WEBHOOK_TIMEOUT", TIMEOUT)))


def check_url(url: str, testing: bool = False) -> str:
    """HTTPS only (plain http is allowed in tests, for a local receiver), to a host outside our network: one
    whose every address is public (or that WEBHOOK_ALLOWED_HOSTS lists). A name that does not resolve yet is
    accepted: it is checked again at each connect."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("the endpoint is not a valid URL", field="url") from None
    if not (parts.scheme == "https" or (parts.scheme == "http" and testing)) or not parts.hostname or len(url) > 500:
        raise InvalidInput("the endpoint must be an https:// URL", field="url")
    try:
        egress.check_host(parts.hostname, port, _settings()[0])
    except egress.Unresolvable:
        pass
    except egress.Refused:
        raise InvalidInput("the endpoint must not be a loopback, private, link-local, multicast or reserved "
                           "address (nor a name that resolves to one)", field="url") from None
    return url


def _check_room(org_unit_id: int) -> None:
    """At most WEBHOOK_MAX_PER_UNIT active webhooks per org unit (each event is sent to every one of them)."""
    from flask import current_app

    cap = int(current_app.config.get("WEBHOOK_MAX_PER_UNIT", MAX_PER_UNIT))
    # Lock the unit's row (PostgreSQL) so two admins registering at once cannot both take the last place.
    db.session.execute(sa.select(OrgUnit.id).where(OrgUnit.id == org_unit_id).with_for_update())
    active = db.session.scalar(sa.select(sa.func.count()).select_from(Webhook).where(
        Webhook.org_unit_id == org_unit_id, Webhook.active))
    if active >= cap:
        raise InvalidInput(f"at most {cap} active webhooks per org unit; pause or delete one first",
                           field="org_unit")


def check_events(events: list[str]) -> list[str]:
    known = {e.value for e in Event}
    unknown = [e for e in events if e not in known]
    if unknown or not events:
        raise InvalidInput(f"events must be some of: {', '.join(sorted(known))}", field="events")
    return sorted(set(events))


def create(actor, url: str, events: list[str], org_unit_id: int, testing: bool = False) -> Webhook:
    url, events = check_url(url, testing), check_events(events)
    _check_room(org_unit_id)
    hook = Webhook(url=url, events=events, secret=secrets.token_hex(32),
                   created_by_id=actor.id, org_unit_id=org_unit_id, created_at=clock.now())
    db.session.add(hook)
    db.session.commit()
    _forget_active()
    return hook


def visible(scope_paths: list[str]):
    """Webhooks registered for units inside the given org paths."""
    return sa.select(Webhook).join(OrgUnit, Webhook.org_unit_id == OrgUnit.id).where(
        sa.or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in scope_paths)))


def listed(scope_paths: list[str]) -> list[Webhook]:
    return db.session.scalars(visible(scope_paths).order_by(Webhook.id)).all()


def update(hook: Webhook, url: str | None = None, events: list[str] | None = None, active: bool | None = None,
           testing: bool = False) -> Webhook:
    if url is not None:
        hook.url = check_url(url, testing)
    if events is not None:
        hook.events = check_events(events)
    if active and not hook.active:
        _check_room(hook.org_unit_id)
    if active is not None:
        hook.active = active
    db.session.commit()
    _forget_active()
    return hook


def get(scope_paths: list[str], webhook_id: int) -> Webhook:
    hook = db.session.scalar(visible(scope_paths).where(Webhook.id == webhook_id))
    if hook is None:
        raise UnknownInstance(f"no webhook {webhook_id}", webhook=webhook_id)
    return hook


def deliveries(hook: Webhook, limit: int = 100) -> list[WebhookDelivery]:
    return db.session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
                              .order_by(WebhookDelivery.id.desc()).limit(limit)).all()


# ---- capturing events (inside the transaction that causes them) ------------------------------------------

_PENDING = "signoff_webhooks"


def _subscribers(conn, event: str, unit_paths: dict[int, str]) -> dict[int, list[int]]:
    """unit id → ids of active webhooks for `event` registered at that unit or above."""
    rows = conn.execute(sa.select(Webhook.id, Webhook.events, OrgUnit.path)
                        .join(OrgUnit, Webhook.org_unit_id == OrgUnit.id).where(Webhook.active)).all()
    hooks = [(hid, path) for hid, events, path in rows if event in (events or [])]
    return {uid: [hid for hid, path in hooks if upath.startswith(path)] for uid, upath in unit_paths.items()}


# Whether any webhook is active, asked on every write: remembered for a few seconds per process (a webhook
# created in another process starts receiving events within ACTIVE_TTL; in this one at once).
ACTIVE_TTL = 5.0
_active: list = [None, 0.0]  # [answer, when asked (monotonic)]


def _any_active(session) -> bool:
    answer, asked = _active
    if answer is None or time.monotonic() - asked > ACTIVE_TTL:
        answer = session.connection().execute(sa.select(Webhook.id).where(Webhook.active).limit(1)).first() is not None
        _active[:] = [answer, time.monotonic()]
    return answer


def _forget_active() -> None:
    _active[0] = None


def _queue_events(session, events: list[tuple[str, str, int, dict]]) -> None:
    """Write delivery rows for (event, event id, instance id, body) to every subscribed webhook."""
    if not events:
        return
    if not _any_active(session):
        return
    conn = session.connection()
    inst_ids = {i for _, _, i, _ in events}
    facts = {r.id: r for r in conn.execute(
        sa.select(Instance.id, Instance.workflow, Instance.definition_version, Instance.state, Instance.version,
                  Instance.org_unit_id, OrgUnit.code, OrgUnit.path)
        .join(OrgUnit, Instance.org_unit_id == OrgUnit.id).where(Instance.id.in_(inst_ids)))}
    now = clock.now()
    rows = []
    for event, event_id, inst_id, body in events:
        f = facts.get(inst_id)
        if f is None:
            continue
        for hook_id in _subscribers(conn, event, {f.org_unit_id: f.path})[f.org_unit_id]:
            payload = {"id": event_id, "event": event, "occurred_at": now.isoformat(),
                       "instance": {"id": f.id, "workflow": f.workflow, "definition_version": f.definition_version,
                                    "state": f.state, "version": f.version, "org_unit": f.code}, **body}
            rows.append({"webhook_id": hook_id, "event_id": event_id, "event": event, "payload": payload,
                         "status": DeliveryStatus.PENDING.value, "attempts": 0, "created_at": now})
    if rows:
        conn.execute(sa.insert(WebhookDelivery), rows)
        session.info[_PENDING] = True


def _after_flush(session, _context) -> None:
    from engine.models import AuditEvent

    written = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not written or not _any_active(session):  # every transition passes here: no payloads for nobody
        return
    _queue_events(session, [
        (Event.STARTED.value if e.from_state is None else Event.TRANSITIONED.value, f"audit-{e.id}", e.instance_id,
         {"trigger": e.trigger, "from_state": e.from_state, "to_state": e.to_state, "seq": e.seq,
          "actor_id": e.actor_id, "at": e.created_at.isoformat()})
        for e in written])


def _orm_execute(state) -> None:
    """Timers write in bulk (no ORM objects): escalations are Notification inserts, deadlines passing are
    Timer updates to 'fired'. Read what they wrote from the statements themselves."""
    from engine.models import Notification

    stmt = state.statement
    table = getattr(getattr(stmt, "table", None), "name", None)  # ORM statements carry an annotated copy
    if (state.is_insert and table == Notification.__tablename__ and isinstance(state.parameters, list | tuple)
            and _any_active(state.session)):
        events, seen = [], set()
        for row in state.parameters:
            if row.get("kind") != "escalate":
                continue
            timer = str(row.get("idempotency_key", "")).split(":")[1:2]
            event_id = f"escalate-{timer[0] if timer else row['instance_id']}"
            if event_id in seen:
                continue
            seen.add(event_id)
            context = row.get("context") or {}
            events.append((Event.ESCALATED.value, event_id, row["instance_id"],
                           {"rung": context.get("rung"), "to": context.get("to")}))
        _queue_events(state.session, events)
    elif state.is_update and table == Timer.__tablename__ and _any_active(state.session):
        params = stmt.compile().params
        if params.get("status") != "fired":
            return
        ids = next((v for v in params.values() if isinstance(v, list | tuple)), None)
        if not ids or not _any_active(state.session):
            return
        result = state.invoke_statement()
        due = state.session.connection().execute(
            sa.select(Timer.id, Timer.instance_id, Timer.state, Timer.due_at)
            .where(Timer.id.in_(ids), Timer.rung == 0)).all()
        _queue_events(state.session, [(Event.OVERDUE.value, f"overdue-{t.id}", t.instance_id,
                                       {"state": t.state, "due_at": t.due_at.isoformat()}) for t in due])
        return result


def _after_commit(session) -> None:
    if session.info.pop(_PENDING, False):
        schedule()


def _after_rollback(session) -> None:
    session.info.pop(_PENDING, None)


def install(session_factory) -> None:
    """Listen on the app's sessions (called once by the API's init)."""
    if sa.event.contains(session_factory, "after_flush", _after_flush):
        return
    sa.event.listen(session_factory, "after_flush", _after_flush)
    sa.event.listen(session_factory, "do_orm_execute", _orm_execute)
    sa.event.listen(session_factory, "after_commit", _after_commit)
    sa.event.listen(session_factory, "after_soft_rollback", lambda s, _t: _after_rollback(s))


# ---- sending (an RQ job) -----------------------------------------------------------------------------------

def schedule(at_seconds: float = 0) -> None:
    """Ask a worker to send what is pending (now, or in `at_seconds`). Never raises."""
    from redis.exceptions import RedisError

    from engine import queue

    try:
        q = queue.current()
        if at_seconds <= 0:
            q.enqueue(dispatch, job_id="signoff-webhooks", result_ttl=0, failure_ttl=3600)
        else:
            q.enqueue_in(timedelta(seconds=at_seconds), dispatch,
                         job_id=f"signoff-webhooks-{int(time.time() + at_seconds)}", result_ttl=0)
    except (RedisError, RuntimeError) as e:  # no Redis, or no app context: the commit stands regardless
        log.warning("could not schedule webhook deliveries: %s (the next event or `webhooks send` will)", e)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: int | None = 300) -> bool:
    """What a receiver does: check the signature header (and that it is recent)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if tolerance is not None and abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def _due(now: datetime):
    return sa.and_(WebhookDelivery.status == DeliveryStatus.PENDING.value,
                   sa.or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now))


def dispatch() -> int:
    """RQ job: one sending job per webhook that has deliveries due, so that a slow or unreachable receiver
    holds up only its own deliveries (idle workers send to the others meanwhile). Returns the webhooks."""
    from engine import jobs, queue  # jobs runs this module's functions: imported here, not at the top

    hook_ids = db.session.scalars(sa.select(WebhookDelivery.webhook_id).where(_due(clock.now())).distinct()).all()
    q = queue.current()
    for hook_id in sorted(hook_ids):
        jobs.enqueue_now(q, deliver_pending, f"signoff-webhook-{hook_id}", hook_id)
    return len(hook_ids)


def deliver_pending(webhook_id: int | None = None, limit: int = 100) -> dict:
    """Send due deliveries (of one webhook, or of all); failures are retried with backoff, up to MAX_ATTEMPTS.
    A receiver that gives no answer (unreachable, too slow) is not tried again in this round: its other
    deliveries wait for the next, instead of each costing a timeout. Returns counts."""
    from flask import current_app

    backoff = current_app.config.get("WEBHOOK_BACKOFF", BACKOFF)
    allowed, timeout = _settings()
    http = egress.client(allowed, timeout)
    query = sa.select(WebhookDelivery).where(_due(clock.now())).order_by(WebhookDelivery.id).limit(limit)
    if webhook_id is not None:
        query = query.where(WebhookDelivery.webhook_id == webhook_id)
    due = db.session.scalars(query).all()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    retry_in, silent, started, more = None, set(), time.monotonic(), len(due) == limit
    for d in due:
        if d.webhook_id in silent:
            continue
        if time.monotonic() - started > BUDGET:  # a slow-but-answering receiver: a fresh job goes on
            more = True
            break
        if not _claim(d, timeout):
            continue
        code, error = _post(http, d)
        if code is None:
            silent.add(d.webhook_id)
        d.attempts += 1
        d.last_status_code, d.last_error = code, error
        if error is None:
            d.status, d.delivered_at, d.next_attempt_at = DeliveryStatus.DELIVERED.value, clock.now(), None
            counts["delivered"] += 1
        elif d.attempts >= MAX_ATTEMPTS:
            d.status, d.next_attempt_at = DeliveryStatus.FAILED.value, None
            counts["failed"] += 1
        else:
            wait = backoff[min(d.attempts - 1, len(backoff) - 1)]
            d.next_attempt_at = clock.now() + timedelta(seconds=wait)
            retry_in = wait if retry_in is None else min(retry_in, wait)
            counts["retrying"] += 1
        db.session.commit()  # each attempt is logged even if a later one hangs
    if retry_in is not None:
        schedule(max(retry_in, 1))
    if more:
        schedule()
    # A silent receiver's other deliveries are still due: the next event, retry or reconcile sends them.
    return counts


def _claim(d: WebhookDelivery, timeout: float) -> bool:
    """Take `d` for one attempt, unless another sender has (two jobs for one webhook can overlap: one running,
    one queued behind it): its next attempt moves past the longest this one can take, so should this worker
    die mid-send, the delivery is due again then."""
    now = clock.now()
    taken = db.session.execute(
        sa.update(WebhookDelivery).where(WebhookDelivery.id == d.id, _due(now))
        .values(next_attempt_at=now + timedelta(seconds=4 * timeout + 5)),
        execution_options={"synchronize_session": False}).rowcount
    db.session.commit()
    return taken == 1


def _post(http, d: WebhookDelivery) -> tuple[int | None, str | None]:
    """POST one delivery: (HTTP status or None, None if delivered else the reason for the log). The reason is
    "HTTP <status>" for an answer other than 2xx (a redirect included: it is not followed) and a generic
    FAILED otherwise: the log must not tell refused, timed out and TLS failures apart (that would make the
    webhook a port scanner); the operator's log has the detail."""
    body = json_dumps(d.payload).encode()
    stamp = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Signoff-Webhooks/1",
               "X-Signoff-Event": d.event, "X-Signoff-Event-Id": d.event_id, "X-Signoff-Delivery": str(d.id),
               "X-Signoff-Signature": sign(d.webhook.secret, stamp, body)}
    try:
        with http.stream("POST", d.webhook.url, content=body, headers=headers) as response:
            code = response.status_code  # the body is never read: a receiver cannot make us wait on it
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as e:
        log.info("webhook %s: delivery %s failed: %r", d.webhook_id, d.id, e)
        return None, FAILED
    return (code, None) if 200 <= code < 300 else (code, f"HTTP {code}")


def payload_json(d: WebhookDelivery) -> str:
    return json.dumps(d.payload, ensure_ascii=False)
