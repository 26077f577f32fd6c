"""Benchmark: committed workflow steps per second through `engine.fire` on PostgreSQL, with 1 and 4 client
processes, against pgbench's built-in TPC-B script with the same client count on the same server, in the
same run. The step is a realistic one: a complaint's `resolve` by its assignee — lock, permission check,
payload validation, guards, state change, audit event, timer swap (cancel 4, arm 3), outbox rows.
Run: `python -m bench.engine --help`.
"""
import argparse
import multiprocessing
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import bench_env, ensure_database, fresh_app

COMPLAINT = {"customer": "基准", "contact": "138", "channel": "phone", "order_ref": None, "category": "service",
             "severity": "medium", "description": "bench"}


def load(app, n: int) -> list[tuple[int, int]]:
    """n complaints assigned to a shop assistant of their store, with their step's timers: (id, assignee)."""
    import sqlalchemy as sa

    from engine.db import db
    from engine.models import Instance, Timer
    from engine.org import OrgUnit, RoleAssignment

    with app.app_context():
        staff = db.session.execute(sa.select(OrgUnit.id, RoleAssignment.user_id)
                                   .join(RoleAssignment, RoleAssignment.org_unit_id == OrgUnit.id)
                                   .where(OrgUnit.kind == "store", RoleAssignment.role == "assistant")).all()
        now = datetime.now(UTC)
        rows = [{"workflow": "complaint", "definition_version": 1, "org_unit_id": staff[i % len(staff)][0],
                 "state": "assigned", "state_seq": 3, "data": COMPLAINT | {"assignee": "x"}, "version": 3,
                 "created_by_id": staff[i % len(staff)][1], "assignee_id": staff[i % len(staff)][1],
                 "created_at": now, "updated_at": now, "state_entered_at": now, "due_at": now + timedelta(days=5)}
                for i in range(n)]
        ids = db.session.scalars(sa.insert(Instance).returning(Instance.id), rows).all()
        db.session.execute(sa.insert(Timer), [
            {"instance_id": iid, "state": "assigned", "state_seq": 3, "rung": rung, "action": action,
             "due_at": now + timedelta(days=5), "status": "pending"}
            for iid in ids for rung, action in enumerate(("deadline", "remind", "escalate", "escalate"))])
        db.session.commit()
        return [(iid, rows[i]["assignee_id"]) for i, iid in enumerate(ids)]


def client(env: dict, work: list[tuple[int, int]], seconds: float, barrier, results) -> None:
    import config
    import engine
    from engine.db import db
    from engine.org import User
    from web import create_app

    app = create_app(config.DevelopmentConfig(env))
    with app.app_context():
        users = {u.id: u for u in db.session.scalars(db.select(User))}
        db.session.commit()
        engine.fire(work[0][0], "resolve", users[work[0][1]], {"resolution": "warm-up"})  # load definitions etc.
        barrier.wait()
        done, start = 0, time.perf_counter()
        for instance_id, assignee in work[1:]:
            engine.fire(instance_id, "resolve", users[assignee], {"resolution": "已处理"})
            done += 1
            if time.perf_counter() - start >= seconds:
                break
        results.put((done, time.perf_counter() - start))


def ours(env: dict, work, clients: int, seconds: float) -> float:
    mp = multiprocessing.get_context("spawn")
    barrier, results = mp.Barrier(clients), mp.Queue()
    chunks = [work[i::clients] for i in range(clients)]
    procs = [mp.Process(target=client, args=(env, chunk, seconds, barrier, results)) for chunk in chunks]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(done for done, _ in outcomes) / max(elapsed for _, elapsed in outcomes)


def pgbench(url: str, clients: int, seconds: float) -> float:
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", str(clients), "-T", str(int(seconds)), url],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://root@localhost", help="PostgreSQL server URL")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--instances", type=int, default=40_000, help="complaints to resolve (enough for the run)")
    parser.add_argument("--clients", default="1,4")
    args = parser.parse_args()

    env = bench_env(ensure_database(args.pg, "signoff_bench"), args.redis_url)
    pg_url = ensure_database(args.pg, "signoff_pgbench")
    subprocess.run(["pgbench", "-i", "-q", "-s", "10", pg_url], check=True, capture_output=True)
    print(f"{'clients':>8}{'engine.fire steps/s':>22}{'pgbench TPC-B tps':>20}{'ratio':>8}")
    app = fresh_app(env)
    for clients in (int(c) for c in args.clients.split(",")):
        work = load(app, args.instances)
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
        steps = ours(env, work, clients, args.seconds)
        tps = pgbench(pg_url, clients, args.seconds)
        print(f"{clients:>8}{steps:>22.0f}{tps:>20.0f}{steps / tps:>8.2f}", flush=True)
    print("target: >= 0.50 at 4 clients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
