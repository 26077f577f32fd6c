"""Failed-login budget per account and per address, in Redis (every web process shares it); a process-local
count stands in when Redis is unreachable, so logins keep working and stay limited."""
import threading
import time

from flask import current_app
from redis.exceptions import RedisError

from engine import queue

ACCOUNT_LIMIT = 5    # failures per login name per window
ADDRESS_LIMIT = 20   # failures per client address per window
WINDOW = 15 * 60     # seconds

_local: dict[str, tuple[int, float]] = {}
_lock = threading.Lock()


def _keys(login: str, address: str) -> list[tuple[str, int]]:
    return [(f"signoff:ui:login-fail:acct:{login.strip().lower()}", _limit("UI_LOGIN_ACCOUNT_LIMIT", ACCOUNT_LIMIT)),
            (f"signoff:ui:login-fail:addr:{address}", _limit("UI_LOGIN_ADDRESS_LIMIT", ADDRESS_LIMIT))]


def _limit(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def blocked(login: str, address: str) -> int:
    """Seconds until another attempt is allowed (0: allowed now)."""
    wait = 0
    for key, limit in _keys(login, address):
        try:
            conn = queue.current().connection
            count = int(conn.get(key) or 0)
            ttl = conn.ttl(key) if count >= limit else 0
        except RedisError:
            with _lock:
                count, expires = _local.get(key, (0, 0.0))
                if expires < time.time():
                    count = 0
            ttl = int(expires - time.time()) if count >= limit else 0
        if count >= limit:
            wait = max(wait, ttl if ttl and ttl > 0 else WINDOW)
    return wait


def failed(login: str, address: str) -> None:
    """Count one failed attempt against the account name and the address."""
    for key, _unused in _keys(login, address):
        try:
            conn = queue.current().connection
            if conn.incr(key) == 1:
                conn.expire(key, WINDOW)
        except RedisError:
            with _lock:
                count, expires = _local.get(key, (0, 0.0))
                if expires < time.time():
                    count, expires = 0, time.time() + WINDOW
                _local[key] = (count + 1, expires)


def succeeded(login: str) -> None:
    """A correct password clears the account's count (not the address's)."""
    key = _keys(login, "-")[0][0]
    try:
        queue.current().connection.delete(key)
    except RedisError:
        with _lock:
            _local.pop(key, None)
