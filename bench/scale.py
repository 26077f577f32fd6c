"""Benchmark: do the queries people wait on stay flat as history grows? Loads instances (with their audit
events and timers) into PostgreSQL in bulk, and times each query at the small size and again at the large
size in the same run; prints the ratio (large ÷ small). Target: every ratio ≤ 1.5.
Run: `python -m bench.scale --help` (defaults: 10,000 then 1,000,000 instances).
"""
import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import bench_env, ensure_database, fresh_app

OPEN_SHARE = 0.05  # of all instances, still open; the rest closed over the last three years


def load(upto: int, already: int, now: datetime) -> None:
    """Add instances already+1 … upto: complaints spread over the demo stores, 5 % open (half of those
    overdue), each with 3 audit events and 4 timers, created over three years."""
    from engine.db import db

    db.session.execute(db.text("""
        WITH units AS (SELECT array_agg(id ORDER BY id) AS ids FROM org_units WHERE kind = 'store'),
             agents AS (SELECT array_agg(user_id ORDER BY user_id) AS ids FROM role_assignments
                        WHERE role = 'assistant')
        INSERT INTO instances (workflow, definition_version, org_unit_id, state, state_seq, data, version,
                               created_by_id, assignee_id, created_at, updated_at, state_entered_at, due_at,
                               closed_at)
        SELECT 'complaint', 1, units.ids[1 + g % array_length(units.ids, 1)],
               CASE WHEN g % 20 = 0 THEN 'assigned' ELSE 'closed' END, 3,
               jsonb_build_object('customer', 'c' || g, 'severity', 'medium', 'category', 'service'), 3,
               agents.ids[1 + g % array_length(agents.ids, 1)], agents.ids[1 + g % array_length(agents.ids, 1)],
               :now - make_interval(secs => (g * 97) % (3 * 365 * 86400)),
               :now - make_interval(secs => (g * 97) % (3 * 365 * 86400)) + interval '2 days',
               :now - make_interval(secs => (g * 97) % (3 * 365 * 86400)) + interval '1 day',
               CASE WHEN g % 20 = 0 THEN :now + CASE WHEN g % 40 = 0 THEN interval '-1 day'
                                                     ELSE interval '3 days' END END,
               CASE WHEN g % 20 = 0 THEN NULL ELSE :now - make_interval(secs => (g * 97) % (3 * 365 * 86400))
                                                   + interval '3 days' END
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g, units, agents"""),
        {"first": already + 1, "last": upto, "now": now.replace(tzinfo=None)})
    db.session.execute(db.text("""
        INSERT INTO audit_events (instance_id, seq, "trigger", from_state, to_state, actor_id, data, created_at)
        SELECT i.id, s.seq, (ARRAY['start', 'assign', 'resolve'])[s.seq],
               (ARRAY[NULL, 'received', 'assigned'])[s.seq], (ARRAY['received', 'assigned', 'resolved'])[s.seq],
               i.created_by_id, '{}'::jsonb, i.created_at + make_interval(hours => s.seq * 5)
        FROM instances i CROSS JOIN generate_series(1, 3) AS s(seq) WHERE i.id > CAST(:already AS bigint)"""),
        {"already": already})
    db.session.execute(db.text("""
        INSERT INTO timers (instance_id, state, state_seq, rung, action, due_at, status, fired_at)
        SELECT i.id, 'assigned', 3, r.rung, (ARRAY['deadline', 'remind', 'escalate', 'escalate'])[r.rung + 1],
               coalesce(i.due_at, i.created_at + interval '5 days') + make_interval(hours => r.rung),
               CASE WHEN i.closed_at IS NULL THEN 'pending' ELSE 'cancelled' END, NULL
        FROM instances i CROSS JOIN generate_series(0, 3) AS r(rung) WHERE i.id > CAST(:already AS bigint)"""),
        {"already": already})
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()


def measure(repeat: int) -> dict[str, float]:
    """Median milliseconds of each query people wait on."""
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
        db.session.rollback()

    month_end = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    cases = {
        "store manager's inbox": lambda: engine.inbox(manager),
        "list: unit + state + overdue": lambda: queries.list_instances(manager, org_unit="SH01", state="assigned",
                                                                       overdue=True),
        "instance page": instance_page,
        "overdue report": lambda: reports.overdue(region),
        "SLA report, one month": lambda: reports.sla(region, "complaint", month_end - timedelta(days=30), month_end),
        "timer-claim batch": timer_claim,
    }
    result = {}
    for name, fn in cases.items():
        fn()  # warm
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
            db.session.rollback()
        result[name] = statistics.median(times)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://root@localhost", help="PostgreSQL server URL")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    app = fresh_app(bench_env(ensure_database(args.pg, "signoff_bench"), args.redis_url))
    now = datetime.now(UTC)
    with app.app_context():
        from engine.db import db
        from engine.models import Instance

        already = db.session.scalar(db.select(db.func.max(Instance.id))) or 0
        figures = {}
        for size in (args.small, args.large):
            started = time.perf_counter()
            load(size + already, already if size == args.small else args.small + already, now)
            print(f"loaded {size:,} instances (+{3 * size:,} audit events, +{4 * size:,} timers) in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            figures[size] = measure(args.repeat)
    print(f"\n{'query (median ms)':<32}{args.small:>12,}{args.large:>14,}{'ratio':>8}")
    worst = 0.0
    for name in figures[args.small]:
        small, large = figures[args.small][name], figures[args.large][name]
        worst = max(worst, large / small)
        print(f"{name:<32}{small:>12.1f}{large:>14.1f}{large / small:>8.2f}")
    print(f"target: every ratio <= 1.5 — {'met' if worst <= 1.5 else f'not met (worst {worst:.1f})'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
