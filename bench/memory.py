"""Benchmark: does a worker's memory stay flat as it fires timer after timer?

One `flask --app wsgi worker` process (RQ forks a work horse per job) fires N timers arriving in waves: each
wave bulk-loads W instances with one ladder rung due a few seconds later (bench/deadlines.py's load), the
worker fires them, writing one email each (sent to an SMTP sink on loopback only with --mail: sending is
far slower than firing). psutil samples the resident
memory of the worker and of its horses throughout. The reference is the same worker after its first wave:
growth = peak in the last wave ÷ peak in the first wave, for the worker itself and for the worker with its
children (RQ's scheduler process and the horse).
Target: growth ≤ 1.10 across 100,000 timers. Run: `python -m bench.memory --help`.
"""
import argparse
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from bench.common import bench_env, ensure_database, fresh_app, smtp_sink
from bench.deadlines import load_timers, start_workers, stop, wait_for_workers

MIB = 1024 * 1024


class Sampler(threading.Thread):
    """Samples the RSS of a process and its children (RQ's scheduler process and the work horse of the job
    in hand) every `interval` seconds, keeping each wave's peaks: the worker's own, the largest child's, and
    the sum of all at one instant (pages a fork shares with the worker count twice: an upper bound)."""

    def __init__(self, pid: int, interval: float):
        import psutil

        super().__init__(daemon=True)
        self.process, self.interval, self.wave = psutil.Process(pid), interval, 0
        self.peaks: dict[int, dict[str, int]] = {}
        self.running = True

    def run(self) -> None:
        import psutil

        while self.running:
            try:
                worker = self.process.memory_info().rss
                horses = [c.memory_info().rss for c in self.process.children(recursive=True)]
            except psutil.Error:  # a horse exited between listing and reading
                continue
            peak = self.peaks.setdefault(self.wave, {"worker": 0, "horse": 0, "total": 0})
            peak["worker"] = max(peak["worker"], worker)
            peak["horse"] = max(peak["horse"], max(horses, default=0))
            peak["total"] = max(peak["total"], worker + sum(horses))
            time.sleep(self.interval)


def run_wave(q, size: int, lead: float, timeout: float, mail: bool) -> float:
    """Load `size` timers due `lead` seconds from now, wake the worker for them, and wait until every one
    has fired (and, with `mail`, every email has left); returns the seconds from loading to done."""
    import sqlalchemy as sa

    from engine import jobs
    from engine.db import db
    from engine.models import Notification, Timer

    started = time.time()
    due = datetime.now(UTC) + timedelta(seconds=lead)
    load_timers(size, due)
    jobs.schedule_fire_due(q, due)  # what the commit that armed them would have done
    # Only this wave's timers: the worker's scheduler may start instances (a store's daily handover) whose
    # timers fall due later.
    timers_left = sa.select(sa.func.count()).select_from(Timer).where(Timer.status == "pending", Timer.due_at <= due)
    mail_left = sa.select(sa.func.count()).select_from(Notification).where(Notification.status == "pending")
    end = time.time() + lead + timeout
    while time.time() < end:
        left = db.session.scalar(timers_left)
        if not left and not mail:
            # The emails are written (one per timer) but not sent: one worker sends ~10-20 a second here, so
            # 100,000 would take hours and hold up the timers behind them. Marked sent, the sender finds none.
            db.session.execute(sa.update(Notification).where(Notification.status == "pending")
                               .values(status="sent", sent_at=sa.func.now()))
            db.session.commit()
            return time.time() - started
        left += db.session.scalar(mail_left) if mail else 0
        db.session.rollback()
        if not left:
            return time.time() - started
        time.sleep(0.2)
    raise SystemExit(f"wave not done after {timeout:.0f} s ({left} timers and emails left)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=100_000, help="timers fired in all")
    parser.add_argument("--wave", type=int, default=10_000, help="timers per wave (the first wave is the reference)")
    parser.add_argument("--database", default="signoff_bench", help="PostgreSQL database (dropped and rebuilt)")
    parser.add_argument("--pg", default="postgresql://root@localhost", help="PostgreSQL server URL")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--lead", type=float, default=3, help="seconds between loading a wave and its falling due")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a wave may take")
    parser.add_argument("--mail", action="store_true",
                        help="also send every email (to an SMTP sink) before the next wave: much slower")
    args = parser.parse_args()

    import sqlalchemy as sa

    from engine import queue
    from engine.db import db
    from engine.models import Notification, Timer

    with smtp_sink() as port:
        env = bench_env(ensure_database(args.pg, args.database), args.redis_url,
                        MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port))
        app = fresh_app(env)
        with app.app_context():
            # The demo's own (back-dated, overdue) timers and mail are not part of the measure.
            db.session.execute(sa.update(Timer).values(status="cancelled"))
            db.session.execute(sa.delete(Notification))
            db.session.commit()
            q = queue.current()
            q.connection.flushdb()
            (worker,) = start_workers([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env, 1)
            sampler = Sampler(worker.pid, args.interval)
            try:
                wait_for_workers(q.connection, 1)
                sampler.start()
                print(f"{'wave':>5}{'timers':>10}{'seconds':>9}{'worker MiB':>12}{'largest child MiB':>19}"
                      f"{'total MiB':>11}")
                fired, wave = 0, 0
                while fired < args.timers:
                    size = min(args.wave, args.timers - fired)
                    seconds = run_wave(q, size, args.lead, args.timeout, args.mail)
                    fired += size
                    peak = sampler.peaks.get(wave, {"worker": 0, "horse": 0, "total": 0})
                    print(f"{wave + 1:>5}{fired:>10,}{seconds:>9.1f}{peak['worker'] / MIB:>12.1f}"
                          f"{peak['horse'] / MIB:>19.1f}{peak['total'] / MIB:>11.1f}", flush=True)
                    wave += 1
                    sampler.wave = wave
            finally:
                sampler.running = False
                stop([worker])
            q.connection.flushdb()
    first, last = sampler.peaks[0], sampler.peaks[wave - 1]
    for key, label in (("worker", "worker process"), ("total", "worker + children")):
        print(f"growth of the peak RSS, {label}: {last[key] / MIB:.1f} MiB after {fired:,} timers ÷ "
              f"{first[key] / MIB:.1f} MiB after the first {min(args.wave, args.timers):,} = "
              f"{last[key] / first[key]:.3f}")
    worst = max(last[k] / first[k] for k in ("worker", "total"))
    print(f"target: growth <= 1.10 — {'met' if worst <= 1.10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
