"""Bearer-token authentication for /api/v1. Cookies are never looked at, so the API has no CSRF exposure.
Getting a token shares the sign-in page's failed-login counts and delays (web/ui/ratelimit.py)."""
from flask import g, request

from engine import org, tokens
from engine.org import Role, User
from web.api.errors import ApiError

# Endpoints that need no token: getting one, and the spec and its docs.
PUBLIC = {"api_tokens.create_token", "api-docs.openapi_json", "api-docs.openapi_swagger_ui", "api_docs_assets"}


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate() -> None:
    """before_request for API blueprints: sets g.api_user or refuses with 401."""
    if request.endpoint in PUBLIC or request.method == "OPTIONS":
        return
    token = bearer_token()
    user = tokens.authenticate(token) if token else None
    if user is None:
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": 'Bearer realm="signoff"'})
    g.api_user = user


def login(name: str, password: str) -> tokens.Issued | None:
    """A new token for these credentials (None when wrong); 429 with Retry-After while this login from this
    address, or this address, must wait after failed attempts at either door (this or the sign-in page)."""
    from web.ui import ratelimit

    address = request.remote_addr or "-"
    wait = ratelimit.blocked(name, address)
    if wait:
        raise ApiError(429, "rate_limited", "too many failed sign-in attempts", headers={"Retry-After": str(wait)})
    issued = tokens.login(name, password)
    if issued is None:
        ratelimit.failed(name, address)
    else:
        ratelimit.succeeded(name, address)
    return issued


def current_user() -> User:
    return g.api_user


def require_admin() -> User:
    """The caller, if they hold the admin role anywhere (admins manage the org from the top)."""
    user = current_user()
    if Role.ADMIN.value not in {role for role, _unit in org.roles_of(user)}:
        raise ApiError(403, "admin_only", "only administrators may do this", reason="admin_only")
    return user
