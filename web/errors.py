"""Engine errors become clear HTTP errors: status, code, message and the fields at fault; never a trace.

A dependency that cannot be reached (the database restarting, Redis down, the connection pool exhausted)
is a 503 with Retry-After: the API's JSON error shape under /api/, a page that says "try again shortly"
elsewhere. The session is rolled back; the pool's pre-ping replaces dropped connections on the next request.
"""
import logging

import sqlalchemy as sa
from flask import current_app, g, jsonify, render_template, request
from flask_babel import force_locale
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.db import db
from engine.errors import EngineError

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds: a database restart or failover usually takes about this long

# What "a dependency is unreachable" looks like: the driver's connection errors (also SQLite's "database is
# locked" after its busy timeout), a disconnect noticed mid-statement, no free connection in the pool.
DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


def _unavailable(e: Exception):
    dependency = "redis" if isinstance(e, REDIS_DOWN) else "database"
    log.warning("%s unavailable during %s %s: %s: %s", dependency, request.method, request.path, type(e).__name__,
                str(e).strip().splitlines()[0][:300] if str(e).strip() else "")
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the session is discarded at teardown anyway
        log.debug("rollback after a lost connection failed", exc_info=True)
    headers = {"Retry-After": str(RETRY_AFTER)}
    if request.path.startswith("/api/"):
        from web.api.errors import payload

        return payload(503, "service_unavailable", details={"dependency": dependency}), 503, headers
    # The page must not touch the database: shown as to an anonymous visitor (Flask-Login would otherwise load
    # the user again to render it), in the language Accept-Language asks for.
    if getattr(current_app, "login_manager", None):
        g._login_user = current_app.login_manager.anonymous_user()
    lang = request.accept_languages.best_match(["zh", "en"]) or "zh"
    with force_locale(lang):
        return render_template("unavailable.html", lang=lang, retry_after=RETRY_AFTER), 503, headers


def _close_session(_exc) -> None:
    """End the request's session before Flask-SQLAlchemy's own teardown does. Closing rolls back, and a rollback
    on a connection the database has just dropped raises out of the teardown: gunicorn would then answer its own
    HTML 500 in place of the response already made (even a 200 for a committed action). Such a connection is
    discarded instead; the pool's pre-ping replaces it."""
    try:
        db.session.close()
    except DATABASE_DOWN as e:
        log.warning("database connection lost at the end of a request: %s", type(e).__name__)
        db.session().invalidate()  # the current Session itself: scoped_session does not proxy invalidate


def init_app(app) -> None:
    @app.errorhandler(EngineError)
    def engine_error(e: EngineError):
        return jsonify(e.to_dict()), e.status

    for exc in (*DATABASE_DOWN, *REDIS_DOWN):
        app.register_error_handler(exc, _unavailable)
    app.teardown_appcontext(_close_session)  # registered after init_db's, so it runs first
