"""RQ jobs and the worker that runs them, each job inside its own app context.

Jobs are few and coarse: `fire_due` fires every due timer in batches, `send_mail` drains the outbox.
They are scheduled at the instants timers fall due (one job per distinct second, deduplicated by job id),
and re-armed by the reconciler that every worker runs each RECONCILE_INTERVAL.
"""
import logging
import os
import signal
import time
from contextlib import nullcontext
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import JobStatus

from engine import clock, mail, queue, scheduler, timers, webhooks
from engine.db import db

log = logging.getLogger(__name__)


# RQ's scheduler looks for due jobs once a second, and a forked job takes a moment to start: wake a little
# early and wait for the instant itself, so month-end's deadlines fire on the second.
EARLY = timedelta(seconds=2)


def _status(q: Queue, job_id: str) -> JobStatus | None:
    job = q.fetch_job(job_id)
    return job.get_status(refresh=False) if job is not None else None


def enqueue_now(q: Queue, func, job_id: str, *args) -> None:
    """Enqueue `func` under `job_id` unless that job is waiting in the queue already (it will see everything
    committed before it starts, and a second copy would run beside it under the same id); under `job_id`-next
    while a job of that id is running: when a running job finishes, RQ deletes (and fails) whatever was
    enqueued under its id meanwhile, losing the wake-up."""
    if _status(q, job_id) == JobStatus.STARTED:
        job_id += "-next"
    if q.connection.lpos(q.key, job_id) is None:
        q.enqueue(func, *args, job_id=job_id, result_ttl=0, failure_ttl=3600)


def schedule_fire_due(q: Queue, when: datetime) -> None:
    """Wake a worker just before `when` (at once if that has passed) to fire what is due then."""
    now = clock.now()
    if when <= now:
        enqueue_now(q, fire_due, "signoff-wake-now")
        return
    _enqueue_at(q, max(when - EARLY, now), fire_due, f"signoff-wake-{int(when.timestamp())}", until=when.isoformat())


def _enqueue_at(q: Queue, at: datetime, func, job_id: str, **kwargs) -> None:
    """Schedule `func` at `at` under `job_id` (one per instant) unless that job is armed or running already:
    the reconciler re-arms every interval, and re-enqueuing a running job's id would clash with RQ."""
    if _status(q, job_id) not in (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.STARTED):
        q.enqueue_at(at, func, job_id=job_id, result_ttl=0, failure_ttl=3600, **kwargs)


def _mail_gate(q: Queue) -> str:
    """Set while a send-now job is queued and has not started: that job will see every row committed before
    it starts, so writers need not enqueue another (an RQ enqueue costs more than the rest of a commit)."""
    return f"signoff:mail-wake:{q.name}"


def schedule_send_mail(q: Queue, when: datetime | None = None, force: bool = False) -> None:
    """Wake a sender now (or at `when`, for a retry). `force` (the reconciler) enqueues even while the gate
    says a send-now job is queued: that job may have been lost with the gate still set."""
    if when is None:
        if q.connection.set(_mail_gate(q), 1, nx=True, ex=60) or force:  # the gate expires in case the job is lost
            enqueue_now(q, send_mail, "signoff-mail")
    else:
        _enqueue_at(q, when, send_mail, f"signoff-mail-{int(when.timestamp())}")


def fire_due(until: str | None = None) -> dict:
    """Fire every due timer (waiting first for `until`, the instant this wake-up was set for). When many are
    due, ask the idle workers to help: they claim disjoint batches with SKIP LOCKED."""
    target = datetime.fromisoformat(until) if until else None
    due = timers.count_due(target)
    if due > timers.BATCH:
        q = queue.current()
        for i in range(min(Worker.count(queue=q) - 1, due // timers.BATCH)):
            enqueue_now(q, fire_due_helper, f"signoff-help-{i}", until)
    return fire_due_helper(until)


def fire_due_helper(until: str | None = None) -> dict:
    if until:
        wait = (datetime.fromisoformat(until) - clock.now()).total_seconds()
        if 0 < wait <= EARLY.total_seconds() + 1:  # woken early on purpose; never sleep on a clock far behind
            time.sleep(wait)
    return _summary(timers.run_due())


def _summary(run: timers.Run) -> dict:
    return {"fired": run.fired, "skipped": run.skipped, "busy": run.busy}


def send_mail() -> dict:
    q = queue.current()
    q.connection.delete(_mail_gate(q))  # before claiming: what commits from now on needs a new wake-up
    outcome = mail.send_pending()
    return {"sent": outcome.sent, "retrying": outcome.retrying, "failed": outcome.failed}


def reconcile() -> int:
    return timers.reconcile()


def run_worker(app, burst: bool = False) -> None:
    """Run a worker (with RQ's scheduler) until it is asked to stop (SIGTERM, SIGINT) or, in burst mode, until
    the queue is empty. RQ ends its work loop on some Redis errors, such as a Redis restart caught at the wrong
    moment; a fresh worker takes over then, so a Redis restart never leaves the site without workers."""
    start = app.config.get("CLOCK_START")  # set only by the testing configuration
    with clock.as_of(datetime.fromisoformat(start)) if start else nullcontext():
        _run_worker(app, burst)


def _run_worker(app, burst: bool) -> None:
    pause = 1
    while True:
        worker, started = AppWorker.for_app(app, [queue.current()]), time.monotonic()
        try:
            worker.work(with_scheduler=True, burst=burst)
        except RedisError as e:  # raised while tearing down, with Redis still away
            log.warning("worker stopped: %s", e)
        if burst or worker._shutdown_requested_date is not None:  # RQ's mark of a SIGTERM / SIGINT
            return
        pause = 1 if time.monotonic() - started > 60 else pause  # back off only while it keeps failing
        log.warning("worker stopped without being asked to (Redis unavailable?); a new one starts in %d s", pause)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # RQ's handlers belong to the worker that stopped
        signal.signal(signal.SIGINT, signal.default_int_handler)
        time.sleep(pause)
        pause = min(pause * 2, 30)


class AppWorker(Worker):
    """An RQ worker that runs each job in a Flask app context and reconciles timers every interval."""

    app = None  # set by `flask --app wsgi worker`

    @classmethod
    def for_app(cls, app, queues, **kwargs) -> "AppWorker":
        """A worker for `app` whose maintenance (the reconciler) runs at least every RECONCILE_INTERVAL."""
        cls.app = app
        interval = app.config["RECONCILE_INTERVAL"]
        # RQ runs maintenance only between blocking dequeues, so an idle worker reconciled up to two intervals
        # apart: block for a sixth of the interval and run maintenance one such step early.
        step = max(1, interval // 6)
        worker = cls(queues, connection=queues[0].connection, maintenance_interval=max(1, interval - step),
                     worker_ttl=interval + 15, **kwargs)
        worker.poll = step
        return worker

    poll = None  # seconds to block on Redis for a job (None: RQ's default)

    @property
    def dequeue_timeout(self) -> int:
        return self.poll or super().dequeue_timeout

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
        try:
            super().run_maintenance_tasks()
        except RedisError as e:  # RQ would stop the worker; the reconciler below re-arms what Redis lost
            log.warning("RQ maintenance failed (Redis unavailable?): %s", e)
        with self.app.app_context():
            try:
                armed = timers.reconcile()
                log.info("reconciled timers: %d wake-ups armed", armed)
                started = scheduler.run()
                if started:
                    log.info("scheduled instances started: %s", started)
                webhooks.schedule()  # deliveries that Redis forgot
            except Exception:  # the next interval tries again; a worker must not die of it
                log.exception("timer reconcile or scheduled starts failed")
            finally:
                db.session.remove()
