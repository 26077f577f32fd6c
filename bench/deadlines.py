"""Benchmark: thousands of deadlines falling due in the same second, as at month end.

Loads N timers due at the same instant into PostgreSQL, starts W real worker processes
(`flask --app wsgi worker`) and measures how late each timer fired, whether any fired twice, and the
throughput. In the same run, the reference: raw RQ with one `enqueue_at` job per timer (1,000 jobs) on W
plain `rq worker --with-scheduler` processes. Run: `make bench-deadlines` or
`python -m bench.deadlines --help`.
"""
import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import ROOT, bench_env, ensure_database, fresh_app, percentiles, smtp_sink


def raw_job(scheduled: float) -> None:
    """The reference job: record how late it started."""
    from rq import get_current_job

    get_current_job().connection.rpush("bench:raw-lateness", time.time() - scheduled)


def start_workers(cmd: list[str], env: dict, n: int) -> list[subprocess.Popen]:
    """W worker processes; their logs go to $BENCH_LOG_DIR/worker-N.log when that is set."""
    log_dir = os.environ.get("BENCH_LOG_DIR")
    procs = []
    for i in range(n):
        out = open(os.path.join(log_dir, f"worker-{i}.log"), "a") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_for_workers(conn, n: int, timeout: float = 60) -> None:
    from rq import Worker

    end = time.time() + timeout
    while Worker.count(connection=conn) < n:
        if time.time() > end:
            raise SystemExit("workers did not start")
        time.sleep(0.2)


def load_timers(n: int, due: datetime) -> int:
    """Bulk-load n instances waiting for their store manager, each with one ladder rung due at `due`.
    Half are reminders (to the store manager), half escalations (to the regional manager): one email each."""
    import sqlalchemy as sa

    from engine.db import db
    from engine.models import Instance, Timer
    from engine.org import OrgUnit, RoleAssignment

    stores = db.session.execute(sa.select(OrgUnit.id, RoleAssignment.user_id)
                                .join(RoleAssignment, RoleAssignment.org_unit_id == OrgUnit.id)
                                .where(OrgUnit.kind == "store", RoleAssignment.role == "assistant")).all()
    now = datetime.now(UTC)
    data = {"customer": "基准", "amount": "100.00", "discount_percent": "5", "reason": "bench"}
    rows = [{"workflow": "discount_request", "definition_version": 1, "org_unit_id": stores[i % len(stores)][0],
             "state": "store_review", "state_seq": 2, "data": data, "version": 2,
             "created_by_id": stores[i % len(stores)][1], "created_at": now, "updated_at": now,
             "state_entered_at": now, "due_at": due} for i in range(n)]
    ids = db.session.scalars(sa.insert(Instance).returning(Instance.id), rows).all()
    db.session.execute(sa.insert(Timer), [
        {"instance_id": iid, "state": "store_review", "state_seq": 2, "rung": 1 + i % 2,
         "action": "remind" if i % 2 == 0 else "escalate", "due_at": due, "status": "pending"}
        for i, iid in enumerate(ids)])
    db.session.commit()
    return n


def signoff_run(args, env: dict) -> dict:
    import sqlalchemy as sa

    from engine import jobs, queue
    from engine.db import db
    from engine.models import Instance, Notification, Timer

    app = fresh_app(env)
    with app.app_context():
        # The demo's own (back-dated, overdue) timers and mail are not part of the measure.
        db.session.execute(sa.update(Timer).values(status="cancelled"))
        db.session.execute(sa.delete(Notification))
        db.session.commit()
        due = datetime.now(UTC) + timedelta(seconds=args.lead)
        print(f"loading {args.timers} timers due at {due:%H:%M:%S}…", flush=True)
        load_timers(args.timers, due)
        q = queue.current()
        q.connection.flushdb()
        workers = start_workers([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env, args.workers)
        try:
            wait_for_workers(q.connection, args.workers)
            jobs.schedule_fire_due(q, due)  # what the commit that armed them would have done
            # Only the loaded timers: the workers' scheduler may start today's handovers, with timers of their own.
            pending = sa.select(sa.func.count()).select_from(Timer).where(Timer.status == "pending",
                                                                          Timer.due_at == due)
            end = time.time() + args.lead + args.timeout
            while db.session.scalar(pending) and time.time() < end:
                db.session.rollback()
                time.sleep(0.2)
            time.sleep(1)
        finally:
            stop(workers)
        db.session.rollback()
        fired = db.session.execute(sa.select(Timer.due_at, Timer.fired_at)
                                   .where(Timer.status == "fired", Timer.due_at == due)).all()
        notes = db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                  .join(Instance, Instance.id == Notification.instance_id)
                                  .where(Instance.workflow == "discount_request"))
        late = [(f - d).total_seconds() for d, f in fired]
        span = (max(f for _, f in fired) - due).total_seconds() if fired else float("nan")
        return {"count": args.timers, "fired": len(fired), "duplicates": max(0, notes - len(fired)),
                "missing_notifications": max(0, len(fired) - notes), "throughput": len(fired) / span if span else 0,
                **percentiles(late)}


def raw_rq_run(args, redis_url: str) -> dict:
    from redis import Redis
    from rq import Queue

    conn = Redis.from_url(redis_url)
    conn.flushdb()
    q = Queue("bench-raw", connection=conn)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    workers = start_workers([sys.executable, "-m", "rq.cli", "worker", "-u", redis_url, "--with-scheduler",
                             "bench-raw"], env, args.workers)
    try:
        wait_for_workers(conn, args.workers)
        due = datetime.now(UTC) + timedelta(seconds=args.lead)
        for _ in range(args.raw_jobs):
            q.enqueue_at(due, "bench.deadlines.raw_job", due.timestamp())
        end = time.time() + args.lead + args.timeout
        while conn.llen("bench:raw-lateness") < args.raw_jobs and time.time() < end:
            time.sleep(0.2)
    finally:
        stop(workers)
    late = [float(x) for x in conn.lrange("bench:raw-lateness", 0, -1)]
    conn.flushdb()
    span = max(late) if late else float("nan")
    return {"count": args.raw_jobs, "fired": len(late), "duplicates": max(0, len(late) - args.raw_jobs),
            "missing_notifications": 0, "throughput": len(late) / span if span else 0, **percentiles(late)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--raw-jobs", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default="signoff_bench", help="PostgreSQL database (dropped and rebuilt)")
    parser.add_argument("--pg", default="postgresql://root@localhost", help="PostgreSQL server URL")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--lead", type=float, default=10, help="seconds between loading and falling due")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    database_url = ensure_database(args.pg, args.database)
    with smtp_sink() as port:
        env = bench_env(database_url, args.redis_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port))
        ours = signoff_run(args, env)
        raw = raw_rq_run(args, args.redis_url)

    print(f"\n{'':<28}{'signoff':>14}{'raw RQ':>14}")
    for key, label in [("count", "timers due at one instant"), ("fired", "fired"), ("duplicates", "duplicates"),
                       ("p50", "lateness p50 (s)"), ("p99", "lateness p99 (s)"), ("max", "lateness max (s)"),
                       ("throughput", "fired per second")]:
        fmt = "{:>14.3f}" if isinstance(ours[key], float) else "{:>14}"
        print(f"{label:<28}" + fmt.format(ours[key]) + fmt.format(raw[key]))
    print(f"\nratio of p99 lateness, signoff ÷ raw RQ: {ours['p99'] / raw['p99']:.3f} "
          f"(signoff fired {ours['count'] // raw['count']}× as many)")
    print(f"ratio of throughput, signoff ÷ raw RQ: {ours['throughput'] / raw['throughput']:.1f}")
    ok = ours["fired"] == ours["count"] and ours["duplicates"] == 0 and ours["p99"] <= 2.0
    print("target (all fired, 0 duplicates, p99 <= 2 s):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
