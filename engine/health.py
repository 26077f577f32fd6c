"""Probes of the services Signoff depends on: the database, Redis and its persistence settings.

Each probe is quick and bounded (a statement timeout on the database; socket timeouts on a Redis client of its
own), so a readiness check or a metrics scrape answers in seconds even when a dependency hangs. Used by
/readyz, /metrics, `flask --app wsgi check` and the start-up warnings of the web and the workers.
"""
import logging
import time
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from engine import queue
from engine.db import db

log = logging.getLogger(__name__)

_quick_clients: dict[str, Redis] = {}


@dataclass
class Probe:
    """The outcome of one probe: `ok`, how long it took, and the error's type and text when it failed."""

    name: str
    ok: bool
    ms: float
    error: str | None = None
    detail: dict = field(default_factory=dict)


def quick_redis(config, timeout: float = 1.0) -> Redis:
    """A Redis client for the app's server that gives up after `timeout` seconds (the app's own client waits
    indefinitely, as RQ's blocking reads need). One per process and server."""
    key = f"{config.REDIS_URL or config.INSTANCE_PATH}:{timeout}"
    if key not in _quick_clients:
        pool = queue.connection(config).connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": timeout, "socket_connect_timeout": timeout}
        _quick_clients[key] = Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))
    return _quick_clients[key]


def _timed(name: str, fn) -> Probe:
    started = time.perf_counter()
    try:
        detail = fn() or {}
    except Exception as e:  # any failure means "not ready"; its type says which
        log.warning("%s probe failed: %s: %s", name, type(e).__name__, e)
        return Probe(name, False, _ms(started), f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}")
    return Probe(name, True, _ms(started), detail=detail)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def database(timeout: float = 2.0) -> Probe:
    """`SELECT 1` on a pooled connection (pre-pinged), bounded by a statement timeout on PostgreSQL; the
    connection itself is bounded by the engine's connect timeout (DATABASE_CONNECT_TIMEOUT)."""
    def select_one():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
            conn.exec_driver_sql("SELECT 1").scalar_one()
    return _timed("database", select_one)


def redis(config, timeout: float = 1.0) -> Probe:
    """PING the app's Redis with a client that gives up after `timeout` seconds."""
    return _timed("redis", lambda: {"ping": quick_redis(config, timeout).ping()})


def redis_persistence(conn: Redis) -> list[str]:
    """What is unsafe about the server's settings for Signoff's queue (empty when all is well): without
    append-only persistence a restart loses queued mail and wake-ups until the reconciler re-arms them, and an
    evicting memory policy drops queued jobs silently."""
    try:
        settings = {**conn.config_get("appendonly"), **conn.config_get("maxmemory-policy")}
    except ResponseError as e:  # CONFIG disabled or renamed (managed Redis): say so, do not fail
        return [f"cannot read the Redis settings (CONFIG GET refused: {e}); make sure appendonly is yes "
                f"and maxmemory-policy is noeviction"]
    problems = []
    if settings.get("appendonly") != "yes":
        problems.append(f"Redis appendonly is '{settings.get('appendonly')}', not 'yes': a restart loses queued "
                        f"jobs (the reconciler re-arms timers and mail from the database)")
    if settings.get("maxmemory-policy") != "noeviction":
        problems.append(f"Redis maxmemory-policy is '{settings.get('maxmemory-policy')}', not 'noeviction': "
                        f"queued jobs may be evicted when memory runs short")
    return problems


def warn_unsafe_redis(config) -> list[str]:
    """Log a warning for each unsafe Redis setting (start-up of the web and the workers); never raises.
    The embedded development server is not checked."""
    if not config.REDIS_URL:
        return []
    try:
        problems = redis_persistence(quick_redis(config))
    except RedisError as e:
        log.warning("could not check the Redis settings: %s", e)
        return []
    for problem in problems:
        log.warning("%s", problem)
    return problems
