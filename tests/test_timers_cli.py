"""`flask --app wsgi timers …` and the real worker command."""
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import engine
from engine import queue
from engine.db import db
from engine.models import Timer

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    db.session.rollback()
    db.session.expire_all()
    return result


def test_list_run_due_and_time_travel(app, people, clock, smtp, monkeypatch):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    engine.start("discount_request", "S3", people["a3"], REQUEST)
    out = cli(app, "timers", "list").output.splitlines()
    assert len(out) == 4 and out[0].startswith("2026-11-02 13:00  S1") and "rung 1: remind" in out[0]
    assert cli(app, "timers", "list", "--overdue").output == ""
    assert cli(app, "timers", "list", "--org", "SOUTH").output == ""
    bad = cli(app, "timers", "list", "--org", "MARS")
    assert bad.exit_code == 1 and "unknown org unit 'MARS'" in bad.output

    r = cli(app, "timers", "run-due", "--now", "2026-11-02T13:00:00+08:00")  # the remind rung, 1 h early
    assert r.exit_code == 0 and "fired 1" in r.output
    assert "sent 6" in r.output  # 4 task emails waiting (a1, sm1, sm1asst, a3) + 2 reminders
    assert len([m for m in smtp.messages if str(m["Subject"]).startswith("【提醒】")]) == 2
    assert "rung 1" not in cli(app, "timers", "list").output

    r = cli(app, "timers", "run-due", "--now", "2026-11-02 17:59")  # naive: the company timezone
    assert "fired 2" in r.output  # the deadline and the escalation (the +4 h rung is not due yet)

    monkeypatch.setitem(app.config, "ALLOW_TIME_TRAVEL", False)
    refused = cli(app, "timers", "run-due", "--now", "2999-01-01T00:00:00+00:00")
    assert refused.exit_code == 1 and "ALLOW_TIME_TRAVEL" in refused.output
    assert cli(app, "timers", "run-due", "--now", "yesterday").exit_code == 2
    pending = db.session.scalars(sa.select(Timer.rung).where(Timer.status == "pending")).all()
    assert pending == [3]


def test_reconcile_command(app, people, clock, rq_queue):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    rq_queue.connection.flushdb()
    clock.advance(hours=3, minutes=30)
    r = cli(app, "timers", "reconcile")
    assert r.exit_code == 0 and "armed" in r.output
    assert rq_queue.count >= 1  # a wake-up for what is due, and the mail sender


@pytest.mark.parametrize("hour", [9, 15])
def test_the_real_worker_command_fires_and_mails(app, people, smtp, rq_queue, clock, hour):
    # Armed on Monday 10:00; the worker process runs on Tuesday at `hour` (Shanghai) by its own clock
    # (SIGNOFF_CLOCK_START), when all four timers are overdue. Before 14:00 no scheduled start (the day's
    # handovers) queues a wake-up of its own: the overdue timers alone must wake a burst worker.
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    engine.fire(inst.id, "submit", people["a1"])
    worker_now = datetime(2026, 11, 3, hour, 0, tzinfo=SHANGHAI)
    cfg = app.config["SIGNOFF_CONFIG"]
    env = dict(os.environ, SIGNOFF_ENV="testing", SIGNOFF_INSTANCE=str(cfg.INSTANCE_PATH),
               TEST_REDIS_URL=cfg.REDIS_URL or queue.embedded_url(cfg), MAIL_SERVER="127.0.0.1",
               MAIL_PORT=str(smtp.port), SIGNOFF_CLOCK_START=worker_now.isoformat())
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # Only this request's mail: at 15:00 the worker also starts the day's handovers.
    subjects = sorted(str(m["Subject"])[:6] for m in smtp.messages if "折扣" in str(m["Subject"]))
    assert subjects == ["【待办】折扣"] * 3 + ["【提醒】折扣"] * 2 + ["【超时升级】"] * 2  # east, then boss
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Timer.status).where(Timer.instance_id == inst.id)).all()
    assert statuses == ["fired"] * 4
