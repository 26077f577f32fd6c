"""Webhooks (administrators): register HTTPS endpoints for events; read each endpoint's delivery log."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine import admin, webhooks
from engine.limits import CODE_MAX, LIST_MAX, URL_MAX
from web.api.auth import current_user
from web.api.common import errors

blp = Blueprint("api_webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="HMAC-signed event deliveries to your endpoints (administrators only).")

EVENTS = [e.value for e in webhooks.Event]


class WebhookIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=URL_MAX))
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)), required=True,
                         validate=validate.Length(min=1, max=LIST_MAX))
    org_unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=CODE_MAX),
                             metadata={"description": "Only events of this unit and below (default: your scope)"})


class WebhookPatch(Schema):
    url = fields.String(validate=validate.Length(min=1, max=URL_MAX))
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)), validate=validate.Length(min=1, max=LIST_MAX))
    active = fields.Boolean()


class WebhookOut(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    org_unit = fields.String(required=True)
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class WebhookCreated(WebhookOut):
    secret = fields.String(required=True, metadata={
        "description": "Shown once. Verify X-Signoff-Signature: t=<unix>,v1=HMAC-SHA256(secret, '<t>.<body>')"})


class DeliveryOut(Schema):
    id = fields.Integer(required=True)
    event_id = fields.String(required=True)
    event = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(allow_none=True)
    payload = fields.Dict(required=True)


def _out(hook, secret: bool = False) -> dict:
    body = {"id": hook.id, "url": hook.url, "events": hook.events, "org_unit": hook.org_unit.code,
            "active": hook.active, "created_at": hook.created_at}
    if secret:
        body["secret"] = hook.secret
    return body


@blp.route("")
class Webhooks(MethodView):
    @blp.response(200, WebhookOut(many=True))
    @errors(blp, 401, 403)
    def get(self):
        """The webhooks registered within your scope."""
        return [_out(h) for h in webhooks.listed(admin.admin_paths(current_user()))]

    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookCreated)
    @errors(blp, 400, 401, 403, 422)
    def post(self, args):
        """Register an HTTPS endpoint for some events; the signing secret is in the response, once."""
        user = current_user()
        unit = admin.scope_unit(user, args["org_unit"])
        hook = webhooks.create(user, args["url"], args["events"], unit.id, current_app.config.get("TESTING", False))
        return _out(hook, secret=True)


@blp.route("/<id:webhook_id>")
class WebhookItem(MethodView):
    @blp.response(200, WebhookOut)
    @errors(blp, 401, 403, 404)
    def get(self, webhook_id):
        """One webhook."""
        return _out(webhooks.get(admin.admin_paths(current_user()), webhook_id))

    @blp.arguments(WebhookPatch)
    @blp.response(200, WebhookOut)
    @errors(blp, 400, 401, 403, 404, 422)
    def patch(self, args, webhook_id):
        """Change the URL or events, or pause (active: false)."""
        hook = webhooks.get(admin.admin_paths(current_user()), webhook_id)
        return _out(webhooks.update(hook, **args, testing=current_app.config.get("TESTING", False)))

    @blp.response(204)
    @errors(blp, 401, 403, 404)
    def delete(self, webhook_id):
        """Stop sending to this endpoint (kept, inactive, with its delivery log)."""
        webhooks.update(webhooks.get(admin.admin_paths(current_user()), webhook_id), active=False)


@blp.route("/<id:webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.response(200, DeliveryOut(many=True))
    @errors(blp, 401, 403, 404)
    def get(self, webhook_id):
        """The delivery log, newest first (the last 100)."""
        return webhooks.deliveries(webhooks.get(admin.admin_paths(current_user()), webhook_id))
