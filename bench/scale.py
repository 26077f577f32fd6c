"""Benchmark: do the queries people wait on stay flat as history grows? Loads instances (with their audit
events and timers) into PostgreSQL in bulk, and times each query at the small size and again at the large
size in the same run; prints the ratio (large ÷ small). Target: every ratio ≤ 1.5.
The two sizes live in two databases, loaded first, and are measured call by call in turn.
Run: `python -m bench.scale --help` (defaults: 10,000 and 1,000,000 instances).
"""
import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import bench_env, ensure_database, fresh_app

# History grows at a steady pace: instance g (1 = the newest) was created g × SPACING seconds ago, so 10,000
# instances are the last month and 1,000,000 are 8½ years. What is still open is recent (the last OPEN_DAYS),
# so a bigger company history adds closed instances, not open work: the open set is the same at both sizes.
SPACING = 270
OPEN_DAYS = 10


def load(first: int, last: int, total: int, already: int, now: datetime) -> None:
    """Add instances g = first … last of `total` (g = 1 the newest): complaints spread over the demo stores,
    a quarter of the last OPEN_DAYS' still open (half of those overdue), each with its audit events (2 if
    open, 3 if closed) and 4 timers. Ids ascend with time, as they would have been issued."""
    from engine.db import db

    params = {"first": first, "last": last, "total": total, "already": already, "spacing": SPACING,
              "open_days": OPEN_DAYS, "now": now.replace(tzinfo=None)}
    db.session.execute(db.text("""
        WITH units AS (SELECT array_agg(id ORDER BY id) AS ids FROM org_units WHERE kind = 'store'),
             agents AS (SELECT array_agg(user_id ORDER BY user_id) AS ids FROM role_assignments
                        WHERE role = 'assistant'),
             gen AS (SELECT g, :now - make_interval(secs => g * :spacing) AS born,
                            g * :spacing < :open_days * 86400 AND g % 4 = 0 AS open
                     FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g)
        INSERT INTO instances (id, workflow, definition_version, org_unit_id, state, state_seq, data, version,
                               created_by_id, assignee_id, created_at, updated_at, state_entered_at, due_at,
                               closed_at)
        SELECT :already + :total - g + 1, 'complaint', 1, units.ids[1 + g % array_length(units.ids, 1)],
               CASE WHEN open THEN 'assigned' ELSE 'closed' END, CASE WHEN open THEN 2 ELSE 3 END,
               jsonb_build_object('customer', 'c' || g, 'severity', 'medium', 'category', 'service'),
               CASE WHEN open THEN 2 ELSE 3 END,
               agents.ids[1 + g % array_length(agents.ids, 1)], agents.ids[1 + g % array_length(agents.ids, 1)],
               born, least(:now, born + interval '10 hours'), born + interval '5 hours',
               CASE WHEN open THEN :now + CASE WHEN g % 8 = 0 THEN interval '-1 day' ELSE interval '3 days' END END,
               CASE WHEN open THEN NULL ELSE least(:now, born + interval '10 hours') END
        FROM gen, units, agents"""), params)
    ids = {"lo": already + total - last + 1, "hi": already + total - first + 1}
    db.session.execute(db.text("""
        INSERT INTO audit_events (instance_id, seq, "trigger", from_state, to_state, actor_id, data, created_at)
        SELECT i.id, s.seq, (ARRAY['start', 'assign', 'close'])[s.seq],
               (ARRAY[NULL, 'received', 'assigned'])[s.seq], (ARRAY['received', 'assigned', 'closed'])[s.seq],
               i.created_by_id, '{}'::jsonb, least(i.updated_at, i.created_at + make_interval(hours => (s.seq - 1) * 5))
        FROM instances i CROSS JOIN generate_series(1, 3) AS s(seq)
        WHERE i.id BETWEEN :lo AND :hi AND s.seq <= i.version"""), ids)
    db.session.execute(db.text("""
        INSERT INTO timers (instance_id, state, state_seq, rung, action, due_at, status, fired_at)
        SELECT i.id, 'assigned', 2, r.rung, (ARRAY['deadline', 'remind', 'escalate', 'escalate'])[r.rung + 1],
               coalesce(i.due_at, i.created_at + interval '3 days') + make_interval(hours => r.rung),
               CASE WHEN i.closed_at IS NULL THEN 'pending' ELSE 'cancelled' END, NULL
        FROM instances i CROSS JOIN generate_series(0, 3) AS r(rung) WHERE i.id BETWEEN :lo AND :hi"""), ids)
    db.session.execute(db.text("SELECT setval('instances_id_seq', (SELECT max(id) FROM instances))"))
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()


def cases() -> dict:
    """The queries people wait on, as functions to call inside the app's context."""
    import engine
    from engine import queries, reports
    from engine.db import db
    from engine.models import Instance, Timer
    from engine.org import user_by_login

    manager, region = user_by_login("dianzhang1"), user_by_login("sun.jingli")
    now = datetime.now(UTC)
    some_open = db.session.scalar(db.select(Instance.id).where(Instance.closed_at.is_(None))
                                  .order_by(Instance.id.desc()).limit(1))

    def instance_page():
        inst = queries.visible_instance(some_open, manager)
        engine.available_actions(inst, manager)
        queries.pending_deadlines(inst)
        queries.signatures(inst)
        queries.full_history(inst.id)

    def timer_claim():
        db.session.execute(db.select(Timer.id).where(Timer.status == "pending", Timer.due_at <= now)
                           .order_by(Timer.due_at, Timer.id).limit(500).with_for_update(skip_locked=True)).all()

    return {
        "store manager's inbox": lambda: engine.inbox(manager),
        "list: unit + state + overdue": lambda: queries.list_instances(manager, org_unit="SH01", state="assigned",
                                                                       overdue=True),
        "instance page": instance_page,
        "overdue report": lambda: reports.overdue(region),
        "SLA report, last 30 days": lambda: reports.sla(region, "complaint", now - timedelta(days=30), now),
        "timer-claim batch": timer_claim,
    }


def measure(apps: list, repeat: int) -> list[dict[str, float]]:
    """Median milliseconds of each query on each app's database. The databases take turns, call by call, so
    both sizes see the same load on a shared machine."""
    from engine.db import db

    fns = []
    for app in apps:
        with app.app_context():
            fns.append(cases())
    times: list[dict[str, list[float]]] = [{name: [] for name in fns[0]} for _ in apps]
    for name in fns[0]:
        for r in range(repeat + 1):
            for i, app in enumerate(apps):
                with app.app_context():
                    start = time.perf_counter()
                    fns[i][name]()
                    elapsed = (time.perf_counter() - start) * 1000
                    db.session.rollback()
                if r:  # the first call of each warms caches
                    times[i][name].append(elapsed)
    return [{name: statistics.median(ts) for name, ts in t.items()} for t in times]


def prepare(args, name: str, size: int, now: datetime):
    """An app on database `name` holding the newest `size` instances of the history (loaded unless --reuse
    finds them there)."""
    import config
    from web import create_app

    env = bench_env(ensure_database(args.pg, name), args.redis_url)
    if args.reuse:
        app = create_app(config.DevelopmentConfig(env))
        with app.app_context():
            from engine.db import db
            from engine.models import Instance

            if (db.session.scalar(db.select(db.func.count()).select_from(Instance)) or 0) >= size:
                return app
    app = fresh_app(env)
    with app.app_context():
        from engine.db import db
        from engine.models import Instance

        already = db.session.scalar(db.select(db.func.max(Instance.id))) or 0
        started = time.perf_counter()
        load(1, size, size, already, now)
        print(f"loaded {size:,} instances (with their audit events and 4 timers each) into {name} in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://root@localhost", help="PostgreSQL server URL")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="keep databases already loaded by an earlier run")
    args = parser.parse_args()
    now = datetime.now(UTC)
    apps = [prepare(args, "signoff_scale_small", args.small, now), prepare(args, "signoff_scale", args.large, now)]
    small, large = measure(apps, args.repeat)
    print(f"\n{'query (median ms)':<32}{args.small:>12,}{args.large:>14,}{'ratio':>8}")
    worst = 0.0
    for name in small:
        worst = max(worst, large[name] / small[name])
        print(f"{name:<32}{small[name]:>12.1f}{large[name]:>14.1f}{large[name] / small[name]:>8.2f}")
    print(f"target: every ratio <= 1.5 — {'met' if worst <= 1.5 else f'not met (worst {worst:.1f})'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
