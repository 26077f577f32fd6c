"""Wake-ups go by the whole second: never before the timer is due (a worker woken early finds nothing to fire,
and the timer would wait for the reconciler, up to RECONCILE_INTERVAL late)."""
from datetime import datetime, timedelta

from rq.registry import ScheduledJobRegistry

import engine
from engine import alarm, timers
from engine.db import db, write_transaction
from engine.models import Timer

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


def wake_ups(q) -> list[datetime]:
    """The instants the scheduled wake-up jobs will wait for."""
    jobs = [q.fetch_job(i) for i in ScheduledJobRegistry(queue=q).get_job_ids()]
    return sorted(datetime.fromisoformat(j.kwargs["until"]) for j in jobs if j and j.func_name.endswith("fire_due"))


def test_a_wake_up_is_never_before_the_timer_it_is_for(people, clock, rq_queue):
    inst = engine.start("discount_request", "S1", people["a1"], REQUEST)
    due = clock.now() + timedelta(seconds=30, milliseconds=400)  # a due time within a second, as most are
    with write_transaction():  # what the transaction that armed the timer notes for after its commit
        db.session.add(Timer(instance_id=inst.id, state=inst.state, state_seq=inst.state_seq, rung=9,
                             action="remind", due_at=due, status="pending"))
        alarm.wake_at(db.session, due)
    assert wake_ups(rq_queue) == [due.replace(microsecond=0) + timedelta(seconds=1)]

    rq_queue.connection.flushdb()  # Redis forgot: the reconciler arms it again, just as late and no earlier
    timers.reconcile(clock.now())
    assert wake_ups(rq_queue) == [due.replace(microsecond=0) + timedelta(seconds=1)]
