"""A per-caller request budget (fixed one-minute windows in Redis): 429 with Retry-After when spent.

API_RATE_LIMIT requests per minute per user (per address before authentication); 0 turns it off. If Redis
cannot be reached the request is let through: the limit protects the service, it must not take it down.
"""
import time

from flask import current_app, g
from redis.exceptions import RedisError

from engine import queue
from web.api.errors import ApiError

DEFAULT_LIMIT = 600


def check(request) -> None:
    limit = int(current_app.config.get("API_RATE_LIMIT", DEFAULT_LIMIT))
    if limit <= 0:
        return
    user = getattr(g, "api_user", None)
    who = f"u{user.id}" if user is not None else f"a{request.remote_addr}"
    window = int(time.time() // 60)
    key = f"signoff:ratelimit:{who}:{window}"
    try:
        conn = queue.current().connection
        pipe = conn.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = pipe.execute()[0]
    except RedisError:
        return
    if count > limit:
        retry = 60 - int(time.time()) % 60
        raise ApiError(429, "rate_limited", f"more than {limit} requests a minute", headers={"Retry-After": str(retry)})
