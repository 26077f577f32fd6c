"""Operations endpoints: /healthz (liveness), /readyz (readiness), /metrics (Prometheus). No sign-in, no
session cookie, no rate limit: load balancers, orchestrators and Prometheus call them every few seconds.

/metrics is open unless METRICS_TOKEN is set (then `Authorization: Bearer <token>` is required); without a
token, let only the scraper reach it (bind to loopback or filter at the reverse proxy).
"""
import hmac

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from engine import health, metrics
from engine.db import db
from web import logs

bp = Blueprint("ops", __name__)

READY_TIMEOUT = 2.0  # seconds per dependency


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. Touches no dependency, so a database outage does not get every web
    process restarted."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers `SELECT 1` and Redis answers PING, each within READY_TIMEOUT.
    200 with each check's time, or 503 naming what failed."""
    probes = [health.database(READY_TIMEOUT), health.redis(current_app.config["SIGNOFF_CONFIG"], READY_TIMEOUT / 2)]
    failed = [p.name for p in probes if not p.ok]
    checks = {p.name: {"ok": p.ok, "ms": p.ms, **({"error": p.error.split(":")[0]} if p.error else {})}
              for p in probes}
    body = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
        return jsonify(body), 503, {"Retry-After": "5"}
    return jsonify(body)


@bp.get("/metrics")
def metrics_page():
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response("a bearer token is required\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                            mimetype="text/plain")
    registry = current_app.extensions["signoff_metrics"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _warn_unsafe_redis_once():
    app = current_app._get_current_object()
    if not app.extensions.get("signoff_redis_checked"):
        app.extensions["signoff_redis_checked"] = True
        health.warn_unsafe_redis(app.config["SIGNOFF_CONFIG"])


def init_app(app) -> None:
    """Logs with request ids, the counters' session events, the ops endpoints and the start-up Redis check
    (on the first request: creating the app never dials Redis)."""
    logs.init_app(app)
    metrics.install(db.session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.Collector(app.config["SIGNOFF_CONFIG"]))
    app.extensions["signoff_metrics"] = registry
    app.before_request(_warn_unsafe_redis_once)
    app.register_blueprint(bp)
