"""RQ jobs and the worker that runs them, each job inside its own app context.

Jobs are few and coarse: `fire_due` fires every due timer in batches, `send_mail` drains the outbox.
They are scheduled at the instants timers fall due (one job per distinct second, deduplicated by job id),
and re-armed by the reconciler that every worker runs each RECONCILE_INTERVAL.
"""
import logging
import os
from datetime import datetime

from rq import Queue, Worker

from engine import clock, mail, queue, timers
from engine.db import db

log = logging.getLogger(__name__)


def schedule_fire_due(q: Queue, when: datetime) -> None:
    """Wake a worker at `when` (at once if that has passed) to fire what is due."""
    if when <= clock.now():
        q.enqueue(fire_due, job_id="signoff-wake-now", result_ttl=0, failure_ttl=3600)
    else:
        q.enqueue_at(when, fire_due, job_id=f"signoff-wake-{int(when.timestamp())}", result_ttl=0,
                     failure_ttl=3600)


def schedule_send_mail(q: Queue, when: datetime | None = None) -> None:
    if when is None:
        q.enqueue(send_mail, job_id="signoff-mail", result_ttl=0, failure_ttl=3600)
    else:
        q.enqueue_at(when, send_mail, job_id=f"signoff-mail-{int(when.timestamp())}", result_ttl=0)


def fire_due() -> dict:
    """Fire every due timer. When many are due, ask the idle workers to help (they claim disjoint batches
    with SKIP LOCKED), so month-end does not wait on one process."""
    due = timers.count_due()
    if due > timers.BATCH:
        q = queue.current()
        for i in range(min(Worker.count(queue=q) - 1, due // timers.BATCH)):
            q.enqueue(fire_due_helper, job_id=f"signoff-help-{i}", result_ttl=0)
    return timers.run_due().__dict__


def fire_due_helper() -> dict:
    return timers.run_due().__dict__


def send_mail() -> dict:
    return mail.send_pending().__dict__


def reconcile() -> int:
    return timers.reconcile()


class AppWorker(Worker):
    """An RQ worker that runs each job in a Flask app context and reconciles timers every interval."""

    app = None  # set by `flask --app wsgi worker`

    def perform_job(self, job, queue) -> bool:
        with self.app.app_context():
            if os.getpid() != self._parent_pid:
                db.engine.dispose(close=False)  # a forked work horse must not share the parent's connections
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()

    def work(self, *args, **kwargs):
        self._parent_pid = os.getpid()
        return super().work(*args, **kwargs)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        with self.app.app_context():
            try:
                armed = timers.reconcile()
                log.info("reconciled timers: %d wake-ups armed", armed)
            except Exception:  # the next interval tries again; a worker must not die of it
                log.exception("timer reconcile failed")
            finally:
                db.session.remove()
