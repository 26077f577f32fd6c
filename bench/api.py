"""Benchmark: approvals per second and their latency over HTTP, against the engine's own rate in the same run.

The step is bench/engine.py's (a complaint's `resolve` by its assignee), sent as
`POST /api/v1/instances/{id}/actions/resolve` with a bearer token to gunicorn (2 workers × 4 threads, as
deploy/signoff-web.service runs it; `wsgi:app`, SIGNOFF_ENV=production, PostgreSQL) by C client processes on
loopback, each sending its next request as soon as the previous answer arrives on one kept-alive
connection (or on a new connection each time, as nginx sends them upstream: --new-connections). The
reference, measured in the same run at the same concurrency: C processes calling `engine.fire` in-process
(bench/engine.py's clients), the two alternating in rounds because the machine's load drifts.
Target: HTTP ≥ 0.5× the engine's rate.

`--profile N` instead fires N approvals through the Flask test client under pyinstrument (production
config, no server) and prints where a request's time goes outside `engine.fire`.
Run: `python -m bench.api --help`.
"""
import argparse
import http.client
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, bench_env, ensure_database, free_port, fresh_app, percentiles
from bench.engine import load, ours

BODY = json.dumps({"data": {"resolution": "已处理"}}).encode()


def issue_tokens(app, work: list[tuple[int, int]]) -> dict[int, str]:
    """One bearer token per assignee in `work` (what `flask --app wsgi users token` prints)."""
    from engine import tokens
    from engine.db import db
    from engine.org import User

    with app.app_context():
        return {uid: tokens.issue(db.session.get(User, uid)) for uid in {assignee for _, assignee in work}}


def production_env(env: dict) -> dict:
    # The production config, but a per-user rate limit no benchmark reaches: the check (a Redis round trip per
    # request) stays in the measured path, the refusal does not.
    return env | {"SIGNOFF_ENV": "production", "API_RATE_LIMIT": str(10**9)}


def start_gunicorn(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    """gunicorn serving wsgi:app, its log in the run's instance directory (a pipe nobody reads would fill
    and stall the workers); returns once it answers on the port."""
    log = Path(env["SIGNOFF_INSTANCE"]) / "gunicorn.log"
    with open(log, "w") as out:
        # As deploy/signoff-web.service runs it (threads: the gthread worker, which keeps connections alive).
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
                                 "--timeout", "60", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    end = time.time() + 60
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/me")
            conn.getresponse().read()
            return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def post(conn: http.client.HTTPConnection, instance_id: int, token: str) -> int:
    conn.request("POST", f"/api/v1/instances/{instance_id}/actions/resolve", body=BODY,
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def http_client(port: int, tokens: dict[int, str], work, seconds: float, keep_alive: bool, barrier, results) -> None:
    """One load-generating process, next request as soon as the answer is in: on one kept-alive connection,
    or on a new connection per request, as nginx sends them upstream by default (deploy/nginx-signoff.conf);
    kept-alive connections stay with the worker that accepted them, so 4 clients may load 2 workers 3:1.
    Reports (done, elapsed, latencies, errors)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    post(conn, work[0][0], tokens[work[0][1]])  # warm-up
    barrier.wait()
    latencies, errors, start = [], 0, time.perf_counter()
    for instance_id, assignee in work[1:]:
        sent = time.perf_counter()
        if not keep_alive:
            conn.close()
        if post(conn, instance_id, tokens[assignee]) != 200:
            errors += 1
        latencies.append(time.perf_counter() - sent)
        if time.perf_counter() - start >= seconds:
            break
    results.put((len(latencies) - errors, time.perf_counter() - start, latencies, errors))


def over_http(port: int, tokens, work, clients: int, seconds: float,
              keep_alive: bool) -> tuple[float, list[float], int]:
    """(approvals per second, latencies, answers that were not 200) of one run of C clients."""
    mp = multiprocessing.get_context("spawn")
    barrier, results = mp.Barrier(clients), mp.Queue()
    procs = [mp.Process(target=http_client, args=(port, tokens, work[i::clients], seconds, keep_alive, barrier,
                                                  results)) for i in range(clients)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    done = sum(o[0] for o in outcomes)
    return done / max(o[1] for o in outcomes), [lat for o in outcomes for lat in o[2]], sum(o[3] for o in outcomes)


def warm(port: int, tokens, work, workers: int) -> None:
    """A few approvals on fresh connections so that every gunicorn worker has loaded its definitions."""
    for instance_id, assignee in work[: 4 * workers]:
        post(http.client.HTTPConnection("127.0.0.1", port, timeout=60), instance_id, tokens[assignee])


def profile(env: dict, n: int) -> None:
    """N approvals through the Flask test client (production config) under pyinstrument."""
    from pyinstrument import Profiler

    import config
    from web import create_app

    app = fresh_app(env)
    work = load(app, n + 5)
    tokens = issue_tokens(app, work)
    app = create_app(config.ProductionConfig(production_env(env)))
    client = app.test_client()

    def one(instance_id, assignee):
        response = client.post(f"/api/v1/instances/{instance_id}/actions/resolve", data=BODY,
                               headers={"Authorization": f"Bearer {tokens[assignee]}",
                                        "Content-Type": "application/json"})
        assert response.status_code == 200, response.get_data(as_text=True)

    for item in work[:5]:
        one(*item)
    profiler = Profiler(interval=0.0005)
    start = time.perf_counter()
    with profiler:
        for item in work[5:]:
            one(*item)
    elapsed = time.perf_counter() - start
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"{n} approvals in {elapsed:.2f} s: {1000 * elapsed / n:.1f} ms per request (with the profiler on)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://root@localhost", help="PostgreSQL server URL")
    parser.add_argument("--database", default="signoff_bench", help="PostgreSQL database (dropped and rebuilt)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--seconds", type=float, default=4, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per side and client count, engine and HTTP alternating (the machine's load drifts)")
    parser.add_argument("--instances", type=int, default=3_000,
                        help="complaints loaded per run (more than a run can resolve)")
    parser.add_argument("--clients", default="1,4", help="client processes, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (1: one request at a time)")
    parser.add_argument("--new-connections", action="store_true",
                        help="a new connection per request, as nginx sends them (default: one kept-alive per client)")
    parser.add_argument("--log-level", default="WARNING",
                        help="LOG_LEVEL of both sides (INFO logs two lines of the transitions library per step)")
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="profile N approvals in-process (Flask test client) instead of the benchmark")
    args = parser.parse_args()

    env = bench_env(ensure_database(args.pg, args.database), args.redis_url, LOG_LEVEL=args.log_level)
    if args.profile:
        profile(env, args.profile)
        return 0
    app = fresh_app(env)
    port = free_port()
    server = None
    print(f"{'clients':>8}{'HTTP approvals/s':>18}{'p50 ms':>9}{'p99 ms':>9}{'engine.fire steps/s':>21}{'ratio':>8}")
    try:
        for clients in (int(c) for c in args.clients.split(",")):
            engine_rates, http_rates, latencies, errors = [], [], [], 0
            for _ in range(args.rounds):  # runs of equal length: their rates are averaged
                work = load(app, args.instances)
                with app.app_context():
                    app.extensions["sqlalchemy"].engine.dispose()
                engine_rates.append(ours(env, work, clients, args.seconds))

                work = load(app, args.instances)
                tokens = issue_tokens(app, work)
                if server is None:
                    server = start_gunicorn(production_env(env), port, args.workers, args.threads)
                warm(port, tokens, work, args.workers)
                rate, lat, bad = over_http(port, tokens, work[4 * args.workers:], clients, args.seconds,
                                           not args.new_connections)
                http_rates.append(rate)
                latencies += lat
                errors += bad
            engine_rate, http_rate = sum(engine_rates) / args.rounds, sum(http_rates) / args.rounds
            q = percentiles(latencies)
            note = f"  ({errors} answers not 200)" if errors else ""
            print(f"{clients:>8}{http_rate:>18.0f}{1000 * q['p50']:>9.1f}{1000 * q['p99']:>9.1f}"
                  f"{engine_rate:>21.0f}{http_rate / engine_rate:>8.2f}{note}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    print("target: HTTP >= 0.50 x engine.fire at the same concurrency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
