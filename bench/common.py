"""What the benchmarks share: a scratch PostgreSQL database, an app on it, percentiles."""
import os
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; returns its URL."""
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def bench_env(database_url: str, redis_url: str, **extra) -> dict:
    return dict(os.environ, SIGNOFF_ENV="development", DATABASE_URL=database_url, REDIS_URL=redis_url,
                SECRET_KEY="bench", SIGNOFF_INSTANCE=tempfile.mkdtemp(prefix="signoff-bench-"), **extra)


def fresh_app(env: dict):
    """An app on an emptied, migrated database with the demo org loaded."""
    from flask_migrate import upgrade

    import config
    from engine import demo
    from engine.db import db
    from web import create_app

    app = create_app(config.DevelopmentConfig(env))
    with app.app_context():
        with db.engine.begin() as conn:
            # A scratch database: end what an earlier benchmark left connected (its workers may still be exiting).
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        upgrade()
        demo.load()
    return app


def percentiles(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": q[49], "p99": q[98], "max": values[-1]}


def free_port() -> int:
    """A TCP port free on loopback right now (for a server the benchmark starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class smtp_sink:  # noqa: N801  (used as a context manager, like a function)
    """An SMTP server on loopback that accepts and drops every message: `with smtp_sink() as port: …`.
    Benchmarks whose steps send mail need one, or the worker would spend the run retrying a dead server."""

    def __enter__(self) -> int:
        from aiosmtpd.controller import Controller

        class Drop:
            async def handle_DATA(self, server, session, envelope):
                return "250 OK"

        port = free_port()
        self.controller = Controller(Drop(), hostname="127.0.0.1", port=port)
        self.controller.start()
        return port

    def __exit__(self, *exc) -> None:
        self.controller.stop()
