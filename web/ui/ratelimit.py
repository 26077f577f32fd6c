"""Failed sign-ins slow the guesser down without locking the real user out; both doors (the sign-in page and
POST /api/v1/tokens) share these counts, in Redis (every web process sees them), with a process-local stand-in
when Redis is unreachable, so sign-ins keep working and stay limited.

The rule:
  - A wrong password (or unknown login) counts one failure against the pair (login, address) and one against
    the address. A pair's failures are forgotten a day after its last one, or when the right password gets in
    from that address; an address's failures 15 minutes after its last one.
  - The first UI_LOGIN_ACCOUNT_LIMIT (5) failures of a pair are free; after n failures the pair must wait
    2^(n-5) seconds from its last failure (1 s, 2 s, 4 s, … up to 15 minutes) before its next attempt.
  - An address with UI_LOGIN_ADDRESS_LIMIT (20) failures over all logins is refused every attempt for 15 minutes
    from its last failure.
  - Nothing else refuses: the right password from an address with no recent failures for that login (and under
    its own cap) always gets in, however many failures other addresses have spent on the login.
A refused attempt (429, Retry-After) checks no password and counts nothing.
"""
import math
import threading

from flask import current_app
from redis.exceptions import RedisError

from engine import clock, queue

ACCOUNT_LIMIT = 5        # free failures per (login, address) before the delay starts
ADDRESS_LIMIT = 20       # failures per address, over all logins, before the address waits
ADDRESS_WINDOW = 15 * 60  # seconds an address waits, and after which its failures are forgotten
MAX_DELAY = 15 * 60      # the longest a (login, address) pair waits between attempts
PAIR_MEMORY = 24 * 3600  # seconds after its last failure that a pair's failures are forgotten

_local: dict[str, tuple[int, float]] = {}
_lock = threading.Lock()

# Count one failure: (count, last) in a hash, starting afresh once the last failure is older than the memory.
_RECORD = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
if tonumber(ARGV[1]) - last > tonumber(ARGV[2]) then count = 0 end
count = count + 1
redis.call('HSET', KEYS[1], 'count', count, 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return count
"""


def _pair(login: str, address: str) -> str:
    return f"signoff:ui:login-fail:pair:{address}:{login.strip().lower()}"


def _address(address: str) -> str:
    return f"signoff:ui:login-fail:addr:{address}"


def _limit(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def _read(key: str, memory: int, now: float) -> tuple[int, float]:
    """(failures, time of the last one), (0, 0) when forgotten."""
    try:
        count, last = queue.current().connection.hmget(key, "count", "last")
        count, last = int(count or 0), float(last or 0)
    except RedisError:
        with _lock:
            count, last = _local.get(key, (0, 0.0))
    return (count, last) if now - last <= memory else (0, 0.0)


def _record(key: str, memory: int, now: float) -> None:
    try:
        conn = queue.current().connection
        conn.eval(_RECORD, 1, key, repr(now), memory)
    except RedisError:
        with _lock:
            count, last = _local.get(key, (0, 0.0))
            _local[key] = (1 if now - last > memory else count + 1, now)


def _forget(key: str) -> None:
    try:
        queue.current().connection.delete(key)
    except RedisError:
        with _lock:
            _local.pop(key, None)


def blocked(login: str, address: str) -> int:
    """Whole seconds until `login` may be tried from `address` (0: now), by the rule in this module's docstring."""
    now, wait = clock.now().timestamp(), 0.0
    free = _limit("UI_LOGIN_ACCOUNT_LIMIT", ACCOUNT_LIMIT)
    count, last = _read(_pair(login, address), PAIR_MEMORY, now)
    if count >= free:
        wait = _remaining(min(2.0 ** (count - free), MAX_DELAY), last, now)
    count, last = _read(_address(address), ADDRESS_WINDOW, now)
    if count >= _limit("UI_LOGIN_ADDRESS_LIMIT", ADDRESS_LIMIT):
        wait = max(wait, _remaining(ADDRESS_WINDOW, last, now))
    return math.ceil(wait)


def _remaining(delay: float, since: float, now: float) -> float:
    # never more than the delay itself, even if the clock went back since the failure was counted
    return max(0.0, min(delay, since + delay - now))


def failed(login: str, address: str) -> None:
    """Count one failed attempt against the pair (login, address) and against the address."""
    now = clock.now().timestamp()
    _record(_pair(login, address), PAIR_MEMORY, now)
    _record(_address(address), ADDRESS_WINDOW, now)


def succeeded(login: str, address: str) -> None:
    """The right password from `address` forgets that pair's failures (not the address's, nor other pairs')."""
    _forget(_pair(login, address))
