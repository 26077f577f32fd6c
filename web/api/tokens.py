"""Tokens (log in, log out) and the caller's own profile."""
from flask.views import MethodView
from flask_smorest import Blueprint

from engine import org, tokens
from web.api.auth import bearer_token, current_user, login
from web.api.common import errors
from web.api.errors import ApiError
from web.api.schemas import MeOut, TokenIn, TokenOut

blp = Blueprint("api_tokens", __name__, url_prefix="/api/v1", description="Tokens and the caller's profile.")


@blp.route("/tokens", endpoint="create_token", methods=["POST"])
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
@blp.doc(security=[])
@errors(blp, 400, 401, 422)
def create_token(args):
    """Log in: a new bearer token for login + password (shown once; only its hash is stored), valid until
    `expires_at` (API_TOKEN_TTL, 30 days by default)."""
    issued = login(args["login"], args["password"])  # within the failed-login limits (web/api/auth.py)
    if issued is None:
        raise ApiError(401, "bad_credentials", "wrong login or password")
    return {"token": issued.token, "expires_at": issued.expires_at}


@blp.route("/tokens", endpoint="revoke_tokens", methods=["DELETE"])
@blp.response(204)
@errors(blp, 401)
def revoke_tokens():
    """Log out everywhere: revoke every token of the caller, the one this request was made with too."""
    tokens.revoke_every_token(current_user())


@blp.route("/tokens/current", endpoint="revoke_token", methods=["DELETE"])
@blp.response(204)
@errors(blp, 401)
def revoke_token():
    """Log out: revoke the token this request was made with."""
    tokens.revoke(bearer_token())


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeOut)
    @errors(blp, 401)
    def get(self):
        """Who you are, with your roles."""
        user = current_user()
        roles = [{"role": role, "org_unit": unit.code} for role, unit in org.roles_of(user)]
        return {"id": user.id, "login": user.login, "name": user.name, "email": user.email, "locale": user.locale,
                "active": user.active, "roles": roles}
