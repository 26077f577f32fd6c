"""/metrics: counters shared by the web and the RQ worker processes (kept in Redis), gauges read from the
database and the queue at scrape time, the optional bearer token, and scrapes that survive Redis being down."""
import copy
import time

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

import engine
from engine import metrics
from engine.db import db, write_transaction
from engine.errors import NotAvailable
from engine.models import Notification, Timer

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def scrape(app, headers=None) -> dict:
    """{(sample name, ((label, value), ...)): value} from one GET /metrics."""
    r = app.test_client().get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def test_transitions_timers_and_mail_counted_across_worker_processes(app, people, clock, smtp, work):
    smtp.refuse.add("east@example.com")  # the escalation to the regional manager will fail for good
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    with pytest.raises(NotAvailable):  # refused: writes nothing, counts nothing
        engine.fire(inst.id, "submit", people["a1"])
    before = scrape(app)
    assert value(before, "signoff_transitions_total", workflow="discount_request", trigger="start") == 1
    assert value(before, "signoff_transitions_total", workflow="discount_request", trigger="submit") == 1
    assert value(before, "signoff_timers_pending") == 4  # remind, deadline, escalate, escalate further
    assert value(before, "signoff_timers_overdue") == 0
    assert value(before, "signoff_queue_jobs", state="queued") >= 1  # the mail sender was woken

    clock.advance(hours=5)  # the reminder (due at +3 h), the deadline and the escalation (+4 h) are late
    assert value(scrape(app), "signoff_timers_overdue") == 3
    work()  # a real RQ worker: the jobs run in forked work horses, not in this process
    after = scrape(app)
    # The worker also started the stores' daily handovers (due at 14:00), whose timers fired as well: compare
    # with what the database says fired, and how late.
    fired = db.session.execute(sa.select(Timer.instance_id, Timer.due_at, Timer.fired_at)
                               .where(Timer.status == "fired")).all()
    ours = sorted((t.fired_at - t.due_at).total_seconds() for t in fired if t.instance_id == inst.id)
    assert ours == [3600, 3600, 7200]  # deadline and escalation (both due at +4 h), reminder (+3 h)
    lateness = [(t.fired_at - t.due_at).total_seconds() for t in fired]
    assert value(after, "signoff_timers_fired_total") == len(fired)
    assert value(after, "signoff_timers_overdue") == 0
    assert value(after, "signoff_timer_lateness_seconds_count") == len(fired)
    assert value(after, "signoff_timer_lateness_seconds_sum") == sum(lateness)
    for le in (900, 3600):
        assert value(after, "signoff_timer_lateness_seconds_bucket", le=f"{le:.1f}") == sum(x <= le for x in lateness)
    assert value(after, "signoff_timer_lateness_seconds_bucket", le="+Inf") == len(fired)
    sent, failed = (db.session.scalar(sa.select(sa.func.count()).where(Notification.status == s))
                    for s in ("sent", "failed"))
    assert failed >= 1 and sent >= 5
    assert value(after, "signoff_emails_total", outcome="sent") == sent
    assert value(after, "signoff_emails_total", outcome="failed") == failed
    assert value(after, "signoff_emails_failed") == failed  # on the incidents page until resolved
    print(f"\ntimers fired {len(fired)} (3 of the discount request), emails sent {sent}, failed {failed}")


def test_requests_by_endpoint_and_status_and_the_bearer_token(app, rq_queue, monkeypatch):
    c = app.test_client()
    for _ in range(2):
        assert c.get("/healthz").status_code == 200
    assert c.get("/no/such/page").status_code == 404
    assert c.post("/api/v1/instances", json={}).status_code == 401
    samples = scrape(app)
    assert value(samples, "signoff_http_requests_total", method="GET", endpoint="ops.healthz", status=200) == 2
    assert value(samples, "signoff_http_requests_total", method="GET", endpoint="unmatched", status=404) == 1
    assert value(samples, "signoff_http_requests_total", method="POST", endpoint="api_instances.Instances",
                 status=401) == 1
    assert value(samples, "signoff_up", dependency="database") == 1 and value(samples, "signoff_up",
                                                                             dependency="redis") == 1

    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-scrape")
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert value(scrape(app, {"Authorization": "Bearer s3cret-scrape"}), "signoff_up", dependency="redis") == 1


def test_nothing_counted_for_rolled_back_work(ctx, rq_queue):
    with pytest.raises(RuntimeError), write_transaction():
        metrics.count(db.session, "transitions", "wf", "lost")
        raise RuntimeError("rolled back")
    with write_transaction():
        metrics.count(db.session, "transitions", "wf", "kept")
        try:
            with db.session.begin_nested():
                metrics.count(db.session, "transitions", "wf", "savepoint")
                raise RuntimeError("savepoint rolled back")
        except RuntimeError:
            pass
    samples = scrape(ctx)
    assert value(samples, "signoff_transitions_total", workflow="wf", trigger="kept") == 1
    assert value(samples, "signoff_transitions_total", workflow="wf", trigger="lost") == 0
    assert value(samples, "signoff_transitions_total", workflow="wf", trigger="savepoint") == 0


def test_redis_down_neither_slows_requests_nor_breaks_the_scrape(app, ctx, monkeypatch):
    down = copy.copy(app.config["SIGNOFF_CONFIG"])
    down.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(metrics, "_paused_until", {})
    started = time.monotonic()
    for _ in range(20):
        metrics.record_request(down, "GET", "ui.inbox", 200)
    assert time.monotonic() - started < 2  # one failed attempt, then a pause: not 20 timeouts
    families = {f.name: f for f in metrics.Collector(down).collect()}
    up = {s.labels["dependency"]: s.value for s in families["signoff_up"].samples}
    assert up == {"redis": 0, "database": 1}
    assert "signoff_timers_pending" in families  # the database's gauges are still there
