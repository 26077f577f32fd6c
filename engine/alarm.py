"""The alarm clock. A transaction notes when its timers fall due and that it wrote mail; only after it
commits are RQ jobs enqueued to wake the workers then. Redis losing them loses nothing: the reconciler
re-arms from the database.

The reconciler runs on every worker each RECONCILE_INTERVAL and arms whatever falls due within the horizon
(four intervals), so a commit only enqueues the wake-ups the reconciler might not see in time: a step whose
deadline is hours away costs no wake-up on Redis.
"""
import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError

from engine import clock

log = logging.getLogger(__name__)

_WAKE, _MAIL = "signoff_wake", "signoff_mail"


def horizon() -> timedelta:
    """How far ahead wake-ups are armed: four reconcile intervals, so a wake-up is on Redis long before the
    reconciler would be too late to arm it (and again after Redis lost it)."""
    from flask import current_app

    return timedelta(seconds=4 * current_app.config["RECONCILE_INTERVAL"])


def second_of(when: datetime) -> datetime:
    """The whole second at or after `when`: wake-ups go by the second, and one rounded down would wake a worker
    before the timer is due; it would find nothing to fire, and the timer would wait for the reconciler."""
    return when if not when.microsecond else when.replace(microsecond=0) + timedelta(seconds=1)


def wake_instant(when: datetime, now: datetime) -> datetime:
    """When to wake a worker for a timer due at `when`: `now` itself if it is already due (so the wake-up is
    queued at once, not scheduled: rounding an overdue instant up to the next second put it a moment into the
    future, where a burst worker, whose one scheduler pass was over, never saw it), else its whole second."""
    return now if when <= now else second_of(when)


def wake_at(session, when: datetime) -> None:
    """Note that a timer falls due at `when` (only the near ones need a wake-up of their own)."""
    if when <= clock.now() + horizon():
        session.info.setdefault(_WAKE, set()).add(when)


def mail_waiting(session, when: datetime | None = None) -> None:
    """Note that mail is waiting to be sent now (or, for a retry, at `when`)."""
    session.info.setdefault(_MAIL, set()).add(when)


def discard(session) -> None:
    session.info.pop(_WAKE, None)
    session.info.pop(_MAIL, None)


def after_commit(session) -> None:
    """Enqueue the wake-ups the committed transaction noted. Never raises: the commit already stands."""
    wake, mail = session.info.pop(_WAKE, set()), session.info.pop(_MAIL, set())
    if not wake and not mail:
        return
    from engine import jobs, queue

    try:
        q, now = queue.current(), clock.now()
        for when in sorted({wake_instant(w, now) for w in wake}):
            jobs.schedule_fire_due(q, when)
        for when in {second_of(w) if w else None for w in mail}:
            jobs.schedule_send_mail(q, when)
    except RedisError as e:  # the reconciler will re-arm from the database
        log.warning("could not reach Redis to schedule wake-ups: %s", e)
