"""The JSON API, /api/v1: flask-smorest blueprints (one module per resource group), marshmallow schemas in
and out, the OpenAPI 3 spec at /api/v1/openapi.json and Swagger UI at /api/v1/docs from the locally installed
`swagger-ui-bundle` package (no CDN). Bearer-token auth only; one JSON error shape for every error."""
import os

import click
from apispec import BasePlugin
from flask import g, request, send_from_directory
from flask.cli import AppGroup
from flask_smorest import Api
from werkzeug.routing import IntegerConverter

from engine.db import db
from web import inputs
from web.api import auth, errors

PREFIX = "/api/v1"


MAX_ID = inputs.MAX_ID


class IdConverter(IntegerConverter):
    """`<id:name>`: a positive database id; anything else is a 404 before a query could overflow."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ID)


class CommonResponses(BasePlugin):
    """Document what any operation may answer: 429 (rate limited), 500 and 503, in the one error shape."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("429", {"description": "Rate limited (see Retry-After)", **error})
            responses.setdefault("500", {"description": "Unexpected server error (no details are exposed)", **error})
            responses.setdefault("503", {"description": "Database or queue unreachable (see Retry-After)", **error})


class SignoffApi(Api):
    """flask-smorest's Api, with our error shape registered for /api/ paths only (the UI keeps HTML errors)."""

    ERROR_SCHEMA = errors.ErrorSchema

    def _register_error_handlers(self):
        errors.init_app(self._app)


_blueprints: list = []


def blueprints() -> list:
    """The API's blueprints, each guarded by auth and the rate limit (set up once per process, so any number
    of apps can be created: tests, benchmarks, the worker)."""
    if not _blueprints:
        from web.api import admin, downloads, imports, instances, reports, tasks, tokens, workflows
        from web.api import attachments as attachments_api
        from web.api import calendar as calendar_api
        from web.api import webhooks as webhooks_api

        for module in (tokens, workflows, instances, tasks, admin, reports, attachments_api, webhooks_api,
                       imports, downloads, calendar_api):
            module.blp.before_request(auth.authenticate)
            module.blp.before_request(_rate_limit)
            _blueprints.append(module.blp)
    return _blueprints


def init_app(app) -> None:
    import swagger_ui_bundle

    from engine import attachments, describe, idempotency, webhooks  # noqa: F401  (tables exist for migrations)

    # Limits, from the environment like the rest of the configuration (config.py may take them over).
    # (Off by default under test: request counters would outlive each test's users; tests turn it on.)
    default_limit = "0" if app.config.get("TESTING") else "600"
    app.config.setdefault("API_RATE_LIMIT", int(os.environ.get("API_RATE_LIMIT", default_limit)))
    app.config.setdefault("API_TITLE", "Signoff API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{PREFIX}/docs/assets/")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "Signoff's JSON API. Send `Authorization: Bearer <token>` (from POST /api/v1/tokens "
                                "or `flask --app wsgi users token LOGIN`). Errors: {code, status, message, error, "
                                "errors, details}; messages follow Accept-Language (zh default)."},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })
    app.json.ensure_ascii = False  # Chinese stays readable in every JSON response
    app.url_map.converters["id"] = IdConverter
    api = SignoffApi(spec_kwargs={"extra_plugins": [CommonResponses()]})
    api.init_app(app)
    describe.add_converters(api.ma_plugin.converter)  # Dict sizes as maxProperties, times bounded
    api.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID})
    webhooks.install(db.session)
    app.before_request(_fresh_request_state)

    assets = swagger_ui_bundle.swagger_ui_path
    app.add_url_rule(f"{PREFIX}/docs/assets/<path:filename>", "api_docs_assets",
                     lambda filename: send_from_directory(assets, filename))

    app.cli.add_command(webhooks_cli)
    for blp in blueprints():
        api.register_blueprint(blp)


webhooks_cli = AppGroup("webhooks", help="Webhook deliveries.")


@webhooks_cli.command("send")
def webhooks_send():
    """Send the pending webhook deliveries now (the worker does this by itself)."""
    from engine import webhooks

    click.echo(", ".join(f"{k} {v}" for k, v in webhooks.deliver_pending().items()))


def _fresh_request_state():
    """Forget the previous request's caller and language: `g` outlives a request when the app context was
    pushed by someone else (a CLI command or a test driving the test client)."""
    for name in ("api_user", "if_match_given", "instance_id", "_flask_babel"):
        g.pop(name, None)


def _rate_limit():
    from web.api.ratelimit import check

    check(request)
