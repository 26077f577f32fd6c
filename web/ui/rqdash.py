"""rq-dashboard (the package's own pages and assets, no CDN) mounted at /admin/rq for the company's administrators.

Its Redis client is the app's own, set per request, so creating the app never starts or dials Redis. Its
buttons post by XMLHttpRequest; a cross-site form cannot send that header, so it is required on every
non-GET request (the CSRF defence for pages that carry no token of ours)."""
from flask import abort, current_app, request
from flask_login import current_user

from engine import org, queue
from engine.org import Role

PREFIX = "/admin/rq"
WRITES_BY_GET = {"rq_dashboard.requeue_all"}  # rq-dashboard also accepts GET for "requeue every failed job"


def _guard():
    if request.blueprint != "rq_dashboard":
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    # Jobs and queues are company-wide (their arguments name any store's instances): an administrator of one
    # region may not read, delete or requeue them, only an administrator of the whole company.
    if not any(role == Role.ADMIN.value and unit.parent_id is None for role, unit in org.roles_of(current_user.user)):
        abort(404)
    changes = request.method not in ("GET", "HEAD") or request.endpoint in WRITES_BY_GET
    if changes and request.headers.get("X-Requested-With") != "XMLHttpRequest":
        abort(400)
    config = current_app.config["SIGNOFF_CONFIG"]
    current_app.config["RQ_DASHBOARD_REDIS_URL"] = [config.REDIS_URL or queue.embedded_url(config)]
    current_app.redis_conn = queue.current().connection
    return None


def init_app(app) -> None:
    """Mount rq-dashboard when it is installed (it is pinned in requirements.txt)."""
    try:
        import rq_dashboard
    except ImportError:
        return
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    app.before_request(_guard)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
