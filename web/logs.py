"""Log lines: one JSON object per line in production (LOG_FORMAT=json), readable text in development.

Every line carries what it happened in: the web request's id (X-Request-ID when the caller sent a sane one,
else generated; echoed in the response) with method, path and user, or the RQ job's id in a worker. Each
request ends with one access line (status, duration_ms). The standard logging module throughout: the app's,
RQ's and the libraries' loggers all go through the one handler installed on the root logger.
"""
import json
import logging
import re
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # what we accept from a caller (and so echo into logs)
CONTEXT_FIELDS = ("request_id", "job_id", "method", "path", "status", "duration_ms", "user_id")
QUIET_ENDPOINTS = {"ops.healthz", "ops.readyz", "ops.metrics_page", "static"}  # probes and assets: DEBUG, not INFO

access_log = logging.getLogger("signoff.request")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context fields it has,
    and `exc` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(context)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name}={getattr(record, name)}" for name in ("request_id", "job_id", "user_id")
               if getattr(record, name, None) is not None]
        record.context = " ".join(ids) or "-"
        return super().format(record)


class ContextFilter(logging.Filter):
    """Add the current request's (or RQ job's) context to each record that does not carry its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            for name, value in (("request_id", g.get("request_id")), ("method", request.method),
                                ("path", request.path), ("user_id", _user_id())):
                if getattr(record, name, None) is None:
                    record.__dict__[name] = value
        elif getattr(record, "job_id", None) is None:
            from rq import get_current_job

            job = get_current_job()
            if job is not None:
                record.job_id = job.id
        return True


def _user_id() -> int | None:
    """The caller, when already known: never loads a user just to log (that would query the database)."""
    user = g.get("api_user")
    if user is None:
        login_user = g.get("_login_user")
        user = getattr(login_user, "user", None) if getattr(login_user, "is_authenticated", False) else None
    if user is None:
        return None
    # The key from the identity map, never `user.id`: after a rollback (a 503 when the database went away)
    # the object is expired, and reading an attribute would query the database from the access log line.
    state = sa.inspect(user, raiseerr=False)
    return state.identity[0] if state is not None and state.identity else getattr(user, "id", None)


def log_unhandled(logger: logging.Logger, e: BaseException) -> None:
    """Log an unexpected error of the current request. A failed SQL statement is logged by its shape only: the
    statement, the error's class and the stack, never its message (the driver's message may quote the values,
    e.g. `Key (login)=(…) already exists`; the engine's hide_parameters already leaves out the bound ones)."""
    if isinstance(e, sa.exc.StatementError):
        stack = "".join(traceback.format_tb(e.__traceback__))
        logger.error("unhandled error on %s %s: %s (%s) [SQL: %s]\n%s", request.method, request.path,
                     type(e).__name__, type(e.orig).__name__, " ".join(str(e.statement or "").split()), stack)
    else:
        logger.error("unhandled error on %s %s", request.method, request.path, exc_info=e)


def install(log_format: str, level: str = "INFO", stream=None) -> logging.Handler | None:
    """Send every log record to `stream` (stderr) in `log_format` ("json" or "text"); "" changes nothing.
    Replaces a handler installed before by this function, never anyone else's."""
    if not log_format:
        return None
    if log_format not in ("json", "text"):
        raise RuntimeError(f"LOG_FORMAT must be json or text, not '{log_format}'")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "signoff", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.signoff = True
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our access line replaces the dev server's
    return handler


def _start_request() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _end_request(response):
    from engine import metrics

    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    started = g.get("request_started")
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    endpoint = request.endpoint or "unmatched"
    level = logging.DEBUG if endpoint in QUIET_ENDPOINTS and response.status_code < 500 else logging.INFO
    access_log.log(level, "%s %s %s", request.method, request.path, response.status_code,
                   extra={"status": response.status_code, "duration_ms": duration})
    method = request.method if request.method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") else "OTHER"
    metrics.record_request(current_app.config["SIGNOFF_CONFIG"], method, endpoint, response.status_code)
    return response


def init_app(app) -> None:
    """Install the configured log format and give every request an id, an access line and a count."""
    install(app.config.get("LOG_FORMAT", ""), app.config.get("LOG_LEVEL", "INFO"))
    app.before_request(_start_request)
    app.after_request(_end_request)
