"""The server-rendered UI (Jinja): login, inbox, instance pages, starting workflows, reports.

One module per page group. Views hold no queries and no business rules: they call the engine and render.
Cookies are HttpOnly and SameSite=Lax (Secure when the request came over HTTPS); every form carries a CSRF
token (Flask-WTF); Simplified Chinese by default, English by user setting or Accept-Language (Flask-Babel).
Every response of the app (pages, API, docs, rq-dashboard, files) carries the security headers set here.
"""
import secrets
from pathlib import Path

from flask import Blueprint, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import get_babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect

from engine.errors import EngineError, NotPermitted

bp = Blueprint("ui", __name__)  # templates in web/templates, assets in web/static (the app's own folders)
login_manager = LoginManager()
csrf = CSRFProtect()


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request itself came over HTTPS (or the config says so)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (request.is_secure if request else False)


@bp.before_request
def _protect():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


# Pages load only their own scripts, styles and images (mermaid draws with inline styles; no CDN anywhere).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
HSTS = "max-age=31536000; includeSubDomains"  # a year; sent over HTTPS only (RFC 6797 ignores it over http)
# rq-dashboard draws its tables with underscore's _.template (new Function): its admin-only pages need eval.
NEEDS_EVAL = {"rq_dashboard"}


def csp_nonce() -> str:
    """This response's nonce for the one inline script of a page we did not write (Swagger UI, rq-dashboard):
    their templates are copied to web/templates with the nonce on that script, so no other inline script runs."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _security_headers(response):
    """Every response: no framing, no sniffing, no inline script without this response's nonce, HSTS over HTTPS
    (behind a proxy, `request.is_secure` comes from X-Forwarded-Proto when PROXY_HOPS is set: wsgi.py)."""
    nonce = g.pop("csp_nonce", None)
    script = "script-src 'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    if request.blueprint in NEEDS_EVAL:
        script += " 'unsafe-eval'"
    csp = CSP.replace("script-src 'self'", script)
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


@bp.after_request
def _no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")  # pages show people's requests: not for caches
    return response


@bp.errorhandler(EngineError)
def engine_error(e: EngineError):
    # A stranger learns nothing: an instance out of scope is "not found", like one that does not exist.
    status = 404 if isinstance(e, NotPermitted) and request.method == "GET" else e.status
    return render_template("error.html", status=status, error=e), status


def _fresh_request_state():
    """Forget the previous request's signed-in user and CSRF token: `g` outlives a request when the app context
    was pushed by someone else (a CLI command, or a test driving the test client)."""
    for name in ("_login_user", "csrf_token", "_flask_babel", "csp_nonce"):
        g.pop(name, None)


def init_app(app) -> None:
    """Register the UI blueprint and its extensions: Flask-Login, CSRF protection, cookie settings."""
    from web.ui import admin, attachments, auth, boards, dashboard, i18n, inbox, incidents, instances, start  # noqa: F401

    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    # CSRF is checked for this blueprint only: the API authenticates by bearer token and takes no cookies.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    babel_config = get_babel(app)  # Babel was set up first (the API shares it): point it at our catalogues
    babel_config.translation_directories = [str(Path(app.root_path) / "translations")]
    babel_config.default_timezone = app.config.get("TIMEZONE", "Asia/Shanghai")
    app.session_interface = SessionInterface()
    login_manager.init_app(app)
    login_manager.login_view = "ui.login"
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(bp)
    app.before_request(_fresh_request_state)
    app.after_request(_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    from web.ui import rqdash

    rqdash.init_app(app)

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_template("error.html", status=400, error=e), 400
