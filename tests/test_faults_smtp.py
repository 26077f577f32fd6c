"""Fault: the SMTP server down for a while, then back; and a sender killed in the middle of its work.

While the server is down, worker processes fire the deadlines and retry each email with backoff; once it is
back every email arrives exactly once. An address the server refuses for good (550) ends as failed, in
`flask --app wsgi mail failed` and in the instance's history (engine and API), not silently.
"""
import dataclasses
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from rq import Worker

import engine
from engine import mail, timers, tokens
from engine.db import db
from engine.models import Notification
from tests.conftest import needs_postgres
from tests.fault_fixtures import (
    REQUEST,
    ROOT,
    Loaded,
    count_deliveries,
    load_due_timers,
    notification_statuses,
    timer_statuses,
    wait_until,
    workers_fixture,  # noqa: F401
)

BACKOFF = [1, 2, 4, 4, 4, 4, 4, 4]  # seconds: 1, 2, then every 4 s (production: 30 s, 2 min, 10 min, …)
SETTINGS = {"RECONCILE_INTERVAL": 2, "MAIL_BACKOFF": ",".join(map(str, BACKOFF)), "MAIL_LEASE": 20}
OUTAGE = 6  # seconds the server stays down after the first attempt


@needs_postgres
def test_smtp_down_then_back_delivers_each_once_and_a_refused_address_fails_visibly(app, people, smtp, rq_queue,
                                                                                      workers):
    smtp.refuse.add("sm3@example.com")  # S3's store manager: the server will refuse him for good (550)
    smtp.stop()
    group = workers(1, **SETTINGS)
    assert wait_until(lambda: Worker.count(connection=rq_queue.connection) == 1, timeout=60)
    loaded = load_due_timers(60, datetime.now(UTC) + timedelta(seconds=1), spread=1)
    refused = {mid for mid, (_, login) in loaded.expected.items() if login == "sm3"}
    delivered = dataclasses.replace(loaded, expected={k: v for k, v in loaded.expected.items() if k not in refused})

    def attempts() -> list[int]:
        db.session.rollback()
        return db.session.scalars(sa.select(Notification.attempts).where(
            Notification.instance_id.in_(loaded.instance_ids))).all()

    assert wait_until(lambda: len(attempts()) == len(loaded.expected) and min(attempts()) >= 1, timeout=60)
    time.sleep(OUTAGE)
    db.session.rollback()
    snapshot, rows = datetime.now(UTC), db.session.execute(sa.select(Notification.attempts, Notification.created_at)
                                                           .where(Notification.instance_id.in_(loaded.instance_ids))).all()
    during = [a for a, _ in rows]
    # The k-th attempt comes no sooner than the sum of the first k-1 waits after the first (written at firing).
    ages = [(a, (snapshot - created).total_seconds()) for a, created in rows]
    too_many = [(a, round(age, 1)) for a, age in ages if a > sum(sum(BACKOFF[:k]) <= age for k in range(len(BACKOFF)))]
    errors = set(db.session.scalars(sa.select(Notification.last_error).where(
        Notification.instance_id.in_(loaded.instance_ids))))
    statuses_down = notification_statuses(loaded)
    smtp.start()
    assert wait_until(lambda: set(notification_statuses(loaded)) <= {"sent", "failed"}, timeout=60, step=0.5)
    time.sleep(1)
    counts = count_deliveries(smtp, delivered)
    statuses = notification_statuses(loaded)
    print(f"{len(loaded.timer_ids)} timers {timer_statuses(loaded.timer_ids)}; {len(loaded.expected)} emails, "
          f"{len(refused)} to the refused address; while down for {OUTAGE} s: {statuses_down}, attempts per email "
          f"min {min(during)} max {max(during)}; after: {statuses}; {counts}")
    assert timer_statuses(loaded.timer_ids) == {"fired": len(loaded.timer_ids)}
    assert statuses_down == {"pending": len(loaded.expected)} or set(statuses_down) <= {"pending", "sending"}
    assert all("refused" in (e or "").lower() or "connect" in (e or "").lower() for e in errors), errors
    # Retried (at least twice in a 6 s outage), and with backoff: never sooner than 1 s, 2 s, 4 s, … apart.
    assert min(during) >= 2 and not too_many, (min(during), too_many)
    assert statuses == {"sent": len(delivered.expected), "failed": len(refused)}
    assert counts.missing == 0 and counts.redelivered == 0 and counts.unexpected == 0
    assert counts.distinct == len(delivered.expected)
    assert not [m for m in smtp.messages if "sm3@" in str(m["To"])]

    # Visible: the CLI lists each failed email, and the instance's history shows it (engine and API).
    cli = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "mail", "failed"], cwd=ROOT, env=group.env,
                         capture_output=True, text=True, timeout=60)
    ours = {f"instance {iid} " for iid in loaded.instance_ids}  # not the handovers the workers' scheduler starts
    failed_lines = [line for line in cli.stdout.splitlines() if line.split("  ")[1] + " " in ours]
    assert len(failed_lines) == len(refused), cli.stdout
    assert all("remind  to sm3 <sm3@example.com>" in line and "recipient refused" in line for line in failed_lines)
    failed = db.session.scalars(sa.select(Notification).where(Notification.status == "failed",
                                                               Notification.instance_id.in_(loaded.instance_ids))).first()
    assert [(e.kind, e.notification.user.login) for e in engine.history(failed.instance_id)] == [("mail_failed", "sm3")]
    token = tokens.issue(people["sm3"])
    response = app.test_client().get(f"/api/v1/instances/{failed.instance_id}/history",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    [entry] = response.get_json()
    assert entry["kind"] == "mail_failed" and entry["detail"].startswith("remind to sm3: recipient refused")


# ---- a sender killed mid-run leaves only the message it was sending ------------------------------------------

def _send_then_die(app, after: int) -> None:
    """A sender SIGKILLed as it starts its (after+1)th message: leased, not yet handed to the server."""
    with app.app_context():
        db.engine.dispose(close=False)
        original, sent = smtplib.SMTP.send_message, 0

        def send_message(self, msg, *args, **kwargs):
            nonlocal sent
            if sent == after:
                os.kill(os.getpid(), signal.SIGKILL)
            sent += 1
            return original(self, msg, *args, **kwargs)

        smtplib.SMTP.send_message = send_message
        mail.send_pending()


def _mail_job_queued(rq_queue) -> bool:
    return "signoff-mail" in rq_queue.job_ids


def test_a_killed_sender_leaves_only_its_one_message_behind(app, people, clock, smtp, rq_queue):
    started = Loaded([engine.start("discount_request", "S1", people["a1"], REQUEST).id for _ in range(10)], [], {})
    child = multiprocessing.get_context("fork").Process(target=_send_then_die, args=(app, 4))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    db.session.rollback()
    left = notification_statuses(started, "task:%")
    print(f"after the kill: {left}")
    assert left == {"sent": 4, "sending": 1, "pending": 5}  # before: the other 5 were leased too, for 5 minutes

    rq_queue.connection.flushdb()  # as after a restart of everything: only the reconciler knows
    timers.reconcile()
    assert _mail_job_queued(rq_queue)  # the 5 pending
    assert mail.send_pending().sent == 5  # another sender takes them at once
    assert notification_statuses(started, "task:%") == {"sent": 9, "sending": 1}

    rq_queue.connection.flushdb()
    clock.advance(seconds=app.config["MAIL_LEASE"] - 1)
    timers.reconcile()
    assert not _mail_job_queued(rq_queue)  # the lease still holds: its sender might be alive and sending
    assert mail.send_pending().sent == 0
    clock.advance(seconds=2)
    timers.reconcile()
    assert _mail_job_queued(rq_queue)  # the lease ran out: a sender is woken for it
    assert mail.send_pending().sent == 1
    ids = [str(m["Message-ID"]) for m in smtp.messages]
    print(f"delivered {len(ids)}, distinct {len(set(ids))}")
    assert len(ids) == len(set(ids)) == 10
