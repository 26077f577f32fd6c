"""Fault: the whole worker process tree SIGKILLed again and again while 1,000 deadlines fall due.

Every rung fires exactly once and the SMTP server receives every expected email: 0 missing. Mail is at least
once across a crash between the server's 250 and our commit; the Message-ID is the same on every attempt,
so a copy is recognisable, and there is at most one such copy per killed sender (each sender leases only
the message it is sending).
"""
import random
import time
from datetime import UTC, datetime, timedelta

from rq import Worker

from tests.conftest import needs_postgres
from tests.fault_fixtures import (
    count_deliveries,
    load_due_timers,
    notification_statuses,
    timer_statuses,
    wait_until,
    workers_fixture,  # noqa: F401
)

N_TIMERS = 1000
N_WORKERS = 2
KILLS = 5
SETTINGS = {"RECONCILE_INTERVAL": 2, "MAIL_LEASE": 4}  # short, so the test waits seconds, not minutes


@needs_postgres
def test_sigkill_the_workers_while_1000_deadlines_fall_due(app, people, smtp, rq_queue, workers):
    group = workers(N_WORKERS, **SETTINGS)
    assert wait_until(lambda: Worker.count(connection=rq_queue.connection) == N_WORKERS, timeout=60)
    started = time.monotonic()
    loaded = load_due_timers(N_TIMERS, datetime.now(UTC) + timedelta(seconds=2), spread=10)
    total = len(loaded.expected)

    def progress() -> tuple[int, int]:
        return timer_statuses(loaded.timer_ids).get("fired", 0), notification_statuses(loaded).get("sent", 0)

    rng = random.Random(8)
    at_kills = []
    while group.kills < KILLS:
        # Kill only once the restarted workers are at work again, a random moment later: mid-batch, mid-send.
        before = progress()
        if not wait_until(lambda b=before: progress() != b, timeout=60, step=0.1):
            break
        time.sleep(rng.uniform(0.2, 1.5))
        at_kills.append(progress())
        group.kill()
        group.start(N_WORKERS)
    print(f"(timers fired, mails sent) at each kill: {at_kills}")

    done = wait_until(lambda: progress() == (N_TIMERS, total), timeout=120, step=0.5)
    elapsed = time.monotonic() - started
    time.sleep(1)  # anything still in flight lands before counting
    group.stop()
    counts = count_deliveries(smtp, loaded)
    timers, mails = timer_statuses(loaded.timer_ids), notification_statuses(loaded)
    print(f"{N_TIMERS} timers, {total} emails expected, {group.kills} kills of {N_WORKERS} workers; done after "
          f"{elapsed:.1f} s: timers {timers}, notifications {mails}; {counts}")
    assert done, (timers, mails)
    assert group.kills == KILLS and all(sent < total for _, sent in at_kills)  # every kill hit work in progress
    assert timers == {"fired": N_TIMERS}  # every rung fired, none twice (firing is one status change)
    assert mails == {"sent": total}  # exactly the expected notifications, no extra rows
    assert counts.missing == 0 and counts.unexpected == 0 and counts.distinct_duplicates == 0
    assert counts.distinct == total
    assert counts.redelivered <= group.kills * N_WORKERS  # at most the one in-flight message per killed sender
