"""Fault: Redis loses everything (FLUSHDB, or a restart of a server without persistence) while 500 timers and
100 emails wait for their wake-ups on it.

Redis is only the alarm clock: the workers' reconciler re-arms every wake-up from the database within one
reconcile interval, and everything fires and is delivered once: 0 lost, 0 duplicates.
"""
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from rq import Worker
from rq.registry import ScheduledJobRegistry

from engine import alarm, queue, timers
from engine.db import db, write_transaction
from engine.models import Instance, Notification, Timer
from tests.conftest import needs_postgres
from tests.fault_fixtures import (
    count_deliveries,
    load_due_timers,
    notification_statuses,
    private_redis_fixture,  # noqa: F401
    timer_statuses,
    wait_until,
    workers_fixture,  # noqa: F401
)

INTERVAL = 3  # RECONCILE_INTERVAL for the test (production: 30 s)
N_TIMERS, N_MAILS = 500, 100


def wait_for_retry(instance_ids: list[int], at: datetime) -> list[str]:
    """N_MAILS reminders whose next attempt is at `at`, armed on Redis the way a failed attempt arms its retry.
    Returns their Message-IDs."""
    creators = dict(db.session.execute(sa.select(Instance.id, Instance.created_by_id)
                                       .where(Instance.id.in_(instance_ids))).all())
    users = [creators[iid] for iid in instance_ids]
    context = {"workflow": "discount_request", "version": 1, "state": "store_review", "org_unit": "S1",
               "org_unit_name": "unit S1", "unit_tz": "Asia/Shanghai", "owners": []}
    with write_transaction():
        db.session.execute(sa.insert(Notification), [
            {"instance_id": iid, "user_id": uid, "kind": "remind", "idempotency_key": f"retry:{iid}:{uid}",
             "context": context, "status": "pending", "attempts": 1, "next_attempt_at": at, "created_at": at,
             "last_error": "ConnectionRefusedError"} for iid, uid in zip(instance_ids, users, strict=True)])
        alarm.mail_waiting(db.session, at)
    return [f"<retry.{iid}.{uid}@signoff>" for iid, uid in zip(instance_ids, users, strict=True)]


def armed(conn) -> int:
    """Wake-ups waiting on Redis: scheduled jobs plus jobs already queued."""
    q = queue.current()
    return ScheduledJobRegistry(queue=q).count + q.count


@needs_postgres
@pytest.mark.parametrize("wipe", ["flushdb", "restart"])
def test_redis_wiped_while_500_timers_and_100_emails_wait(app, people, smtp, private_redis, workers, monkeypatch, wipe):
    monkeypatch.setattr(app.config["SIGNOFF_CONFIG"], "REDIS_URL", private_redis.url)  # this process arms there too
    monkeypatch.setitem(app.config, "RECONCILE_INTERVAL", INTERVAL)
    conn = queue.current().connection
    group = workers(2, redis_url=private_redis.url, RECONCILE_INTERVAL=INTERVAL)
    assert wait_until(lambda: Worker.count(connection=conn) == 2, timeout=60)

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    loaded = load_due_timers(N_TIMERS, due, spread=0, rungs=(0, 0, 1, 2, 0))  # 200 of them send mail
    retries = wait_for_retry(loaded.instance_ids[:N_MAILS], due)
    timers.reconcile()  # the wake-ups the commits that armed these would have enqueued
    before, server = armed(conn), conn.info("server")["run_id"]
    assert before >= 2 and datetime.now(UTC) < due - timedelta(seconds=4)
    if wipe == "flushdb":
        conn.flushdb()
    else:
        private_redis.restart()
        assert conn.info("server")["run_id"] != server  # a new, empty server (a worker may re-arm at once)
    wiped = time.monotonic()
    right_after = armed(conn)
    assert wait_until(lambda: armed(conn) > 0, timeout=INTERVAL + 5, step=0.05)
    restored = time.monotonic() - wiped

    def done():
        return (timer_statuses(loaded.timer_ids) == {"fired": N_TIMERS}
                and notification_statuses(loaded) == {"sent": len(loaded.expected)}
                and notification_statuses(loaded, "retry:%") == {"sent": N_MAILS})

    assert wait_until(done, timeout=180, step=0.5), (timer_statuses(loaded.timer_ids), notification_statuses(loaded),
                                                     notification_statuses(loaded, "retry:%"))
    time.sleep(1)
    alive = [p.poll() is None for p in group.procs]
    group.stop()
    db.session.rollback()
    late = [(f - d).total_seconds() for d, f in db.session.execute(
        sa.select(Timer.due_at, Timer.fired_at).where(Timer.id.in_(loaded.timer_ids)))]
    counts = count_deliveries(smtp, loaded)
    retried = [str(m["Message-ID"]) for m in smtp.messages if str(m["Message-ID"]).startswith("<retry.")]
    print(f"{wipe}: wake-ups on Redis {before} before, {right_after} right after; re-armed after {restored:.1f} s "
          f"(interval {INTERVAL} s); workers alive {alive}; {N_TIMERS} timers fired {len(late)}, "
          f"lateness max {max(late):.1f} s; timer mail {counts}; waiting mail: {len(retried)} delivered, "
          f"{len(set(retried))} distinct of {N_MAILS}")
    assert all(alive), alive  # no worker process gave up when Redis went away
    assert restored <= INTERVAL + 1  # within one reconcile interval (+1 s for the reconcile itself)
    assert max(late) <= INTERVAL + 3  # nothing waited for a wake-up that was lost
    assert counts.missing == counts.redelivered == counts.unexpected == counts.distinct_duplicates == 0
    assert counts.distinct == len(loaded.expected)
    assert sorted(retried) == sorted(retries)  # each waiting email once
