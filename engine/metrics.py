"""Prometheus metrics shared by every process: the web processes and the RQ workers, on any number of machines.

Counters live in one Redis hash (HINCRBY), not in process memory: prometheus_client's multiprocess mode only
adds up the processes of one machine and needs a shared directory and gunicorn hooks, while the workers run
elsewhere and Redis is already shared by all. What a transaction counts (transitions, timers fired, emails)
is buffered on the session and written only after it commits, so a rolled-back transaction or savepoint
counts nothing. Gauges (timers pending and overdue, emails waiting, queue depth) are read at scrape time
from the database (indexed counts) and Redis. /metrics exposes both through a prometheus_client Collector.

If Redis cannot be reached, counting is skipped for a few seconds at a time (it must never slow a request or
a commit down) and those counts are lost; counters also restart from zero when Redis loses its data, which
Prometheus' rate() treats as a counter reset.
"""
import bisect
import logging
import time
from collections import Counter
from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError
from sqlalchemy.orm import scoped_session

from engine import clock
from engine.db import db

log = logging.getLogger(__name__)

KEY = "signoff:metrics"
SEP = "\x1f"  # between the metric's name and its label values in a hash field
LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# name → (help, label names); exposed as signoff_<name>_total
COUNTERS = {
    "http_requests": ("HTTP requests answered, by method, endpoint and status", ("method", "endpoint", "status")),
    "transitions": ("Workflow transitions committed (one per audit event)", ("workflow", "trigger")),
    "timers_fired": ("Timers fired: deadlines passing, reminders, escalations, automatic actions", ()),
    "emails": ("Notification emails by outcome of a send attempt: sent, retrying, failed", ("outcome",)),
}
LATENESS = "timer_lateness_seconds"

_FIRED = SEP.join(("timers_fired",))
_BUCKET_FIELDS = [SEP.join((LATENESS, "bucket", str(b))) for b in (*LATENESS_BUCKETS, "+Inf")]
_SUM_FIELD = SEP.join((LATENESS, "sum"))

_BUFFER = "signoff_metrics"
_PAUSE = 5.0  # seconds without trying Redis after it failed
_paused_until: dict[str, float] = {}  # per Redis (URL or embedded instance): one lost Redis pauses only itself


# ---- counting ---------------------------------------------------------------------------------------------

def _field(name: str, labels: tuple) -> str:
    return SEP.join((name, *(str(v) for v in labels)))


def _txn(session):
    if isinstance(session, scoped_session):
        session = session()
    # Nothing run yet: begin the transaction now, so that its rollback is seen (it would begin at the next
    # statement anyway).
    return session.get_nested_transaction() or session.get_transaction() or session.begin()


def _buffer(session) -> Counter:
    """The counts of the session's current transaction (or savepoint), written when the outermost commits."""
    buffers = session.info.setdefault(_BUFFER, {})
    txn = _txn(session)
    if txn not in buffers:
        buffers[txn] = Counter()
    return buffers[txn]


def count(session, name: str, *labels, n: int = 1) -> None:
    """Count `n` of metric `name` (with its label values) when the session's transaction commits."""
    _buffer(session)[_field(name, labels)] += n


def email_outcome(session, status: str) -> None:
    """One send attempt ended with the notification in `status` (sent, failed, or pending again: retrying)."""
    count(session, "emails", {"pending": "retrying"}.get(status, status))


def timers_fired(session, due_times: list[datetime], fired_at: datetime) -> None:
    """Count fired timers (given their due times) and how late each fired into the lateness histogram."""
    if not due_times:
        return
    buf = _buffer(session)
    buf[_FIRED] += len(due_times)
    total = 0.0
    for due in due_times:
        late = max((fired_at - due).total_seconds(), 0.0)
        buf[_BUCKET_FIELDS[bisect.bisect_left(LATENESS_BUCKETS, late)]] += 1  # the first bucket with late <= le
        total += late
    buf[_SUM_FIELD] += total


def record_request(config, method: str, endpoint: str, status: int) -> None:
    """Count one answered HTTP request (written at once: a request is not a transaction)."""
    _write(config, Counter({_field("http_requests", (method, endpoint, status)): 1}))


def _write(config, counts: Counter) -> None:
    redis_key = config.REDIS_URL or str(config.INSTANCE_PATH)
    if not counts or time.monotonic() < _paused_until.get(redis_key, 0.0):
        return
    from engine.health import quick_redis

    try:
        pipe = quick_redis(config, timeout=0.5).pipeline(transaction=False)
        for field, n in counts.items():
            if isinstance(n, float):
                pipe.hincrbyfloat(KEY, field, n)
            else:
                pipe.hincrby(KEY, field, n)
        pipe.execute()
    except RedisError as e:
        _paused_until[redis_key] = time.monotonic() + _PAUSE
        log.warning("metrics not counted (Redis unreachable, pausing %.0f s): %s", _PAUSE, e)


# ---- session events: transitions, and writing after commit ------------------------------------------------

def _after_flush(session, _context) -> None:
    from engine.models import AuditEvent, Instance

    events = [o for o in session.new if isinstance(o, AuditEvent)]
    if not events:
        return
    workflows = {}
    mapper = sa.inspect(Instance)
    for e in events:
        inst = session.identity_map.get(mapper.identity_key_from_primary_key([e.instance_id]))
        if inst is not None:
            workflows[e.instance_id] = inst.workflow
    missing = {e.instance_id for e in events} - set(workflows)
    if missing:
        workflows.update(session.connection().execute(
            sa.select(Instance.id, Instance.workflow).where(Instance.id.in_(missing))).all())
    for e in events:
        count(session, "transitions", workflows.get(e.instance_id, "unknown"), e.trigger)


def _after_commit(session) -> None:
    buffers = session.info.pop(_BUFFER, None)
    if not buffers:
        return
    from flask import current_app, has_app_context

    if not has_app_context():
        return
    total = Counter()
    for counts in buffers.values():
        total.update(counts)
    _write(current_app.config["SIGNOFF_CONFIG"], total)


def _after_soft_rollback(session, previous) -> None:
    buffers = session.info.get(_BUFFER)
    if not buffers:
        return
    if previous.parent is None:  # the whole transaction
        session.info.pop(_BUFFER, None)
        return
    for txn in list(buffers):  # a savepoint: what was counted inside it
        t = txn
        while t is not None and t is not previous:
            t = t.parent
        if t is previous:  # counted inside what was just rolled back
            del buffers[txn]


def install(session_factory) -> None:
    """Listen on the app's sessions: count transitions and write every transaction's counts after commit."""
    if sa.event.contains(session_factory, "after_commit", _after_commit):
        return
    sa.event.listen(session_factory, "after_flush", _after_flush)
    sa.event.listen(session_factory, "after_commit", _after_commit)
    sa.event.listen(session_factory, "after_soft_rollback", _after_soft_rollback)


# ---- exposition -------------------------------------------------------------------------------------------

def database_gauges(now: datetime | None = None) -> dict[str, int]:
    """Timers pending and overdue, emails waiting and failed: counts on indexed status columns."""
    from engine import incidents
    from engine.models import Notification, Timer

    now = now or clock.now()

    def n(q):
        return db.session.scalar(sa.select(sa.func.count()).select_from(q.subquery()))

    timers = sa.select(Timer.id).where(Timer.status == "pending")
    mail = sa.select(Notification.id)
    gauges = {"timers_pending": n(timers), "timers_overdue": n(timers.where(Timer.due_at <= now)),
              "emails_waiting": n(mail.where(Notification.status.in_(("pending", "sending")))),
              "emails_failed": n(mail.where(incidents.unresolved()))}
    db.session.rollback()
    return gauges


GAUGE_HELP = {
    "timers_pending": "Timers armed and not yet fired",
    "timers_overdue": "Timers due but not yet fired (should stay near 0 while workers run)",
    "emails_waiting": "Notification emails waiting to be sent or retried",
    "emails_failed": "Notification emails that failed for good and are not resolved (see the incidents page)",
}


class Collector:
    """Everything /metrics shows, read at scrape time. A dependency that cannot be read is reported by
    signoff_up{dependency=...} = 0 and its metrics are left out; the scrape itself still succeeds."""

    def __init__(self, config):
        self.config = config

    def collect(self):
        from engine import health

        up = GaugeMetricFamily("signoff_up", "Whether the dependency answered this scrape", labels=["dependency"])
        try:
            conn = health.quick_redis(self.config)
            yield from self._counters(conn.hgetall(KEY))
            yield from _queue(self.config, conn)
            up.add_metric(["redis"], 1)
        except RedisError as e:
            log.warning("metrics: Redis unreachable: %s", e)
            up.add_metric(["redis"], 0)
        try:
            gauges = database_gauges()
        except sa.exc.SQLAlchemyError as e:
            log.warning("metrics: database unreachable: %s", e)
            db.session.rollback()
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            for name, value in gauges.items():
                yield GaugeMetricFamily(f"signoff_{name}", GAUGE_HELP[name], value=value)
        yield up

    def _counters(self, raw: dict):
        families = {name: CounterMetricFamily(f"signoff_{name}", help_, labels=list(labels))
                    for name, (help_, labels) in COUNTERS.items()}
        buckets, total = Counter(), 0.0
        for key, value in raw.items():
            name, *labels = key.decode().split(SEP)
            if name == LATENESS:
                if labels[0] == "sum":
                    total = float(value)
                else:
                    buckets[labels[1]] = int(value)
            elif name in families and len(labels) == len(COUNTERS[name][1]):
                families[name].add_metric(labels, float(value))
        yield from families.values()
        cumulative, rows = 0, []
        for bound in (*(str(b) for b in LATENESS_BUCKETS), "+Inf"):
            cumulative += buckets.get(bound, 0)
            rows.append((bound, cumulative))
        yield HistogramMetricFamily(f"signoff_{LATENESS}", "How late timers fired after they fell due",
                                    buckets=rows, sum_value=total)

    def describe(self):
        return []  # collected at scrape time only (never while registering)


def _queue(config, conn):
    from rq import Queue, Worker
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    q = Queue(config.REDIS_QUEUE, connection=conn)
    jobs = GaugeMetricFamily("signoff_queue_jobs", "RQ jobs by state (queued is the queue depth)", labels=["state"])
    jobs.add_metric(["queued"], q.count)
    for state, registry in (("scheduled", ScheduledJobRegistry), ("started", StartedJobRegistry),
                            ("failed", FailedJobRegistry)):
        jobs.add_metric([state], registry(queue=q).get_job_count(cleanup=False))  # a scrape changes nothing
    yield jobs
    yield GaugeMetricFamily("signoff_workers", "RQ workers alive on the queue", value=Worker.count(queue=q))
