"""Instances: start, list (filters + keyset pagination, only what the caller may see), read, act, history.

Every read and write goes through the caller's scope: an instance they may not see is a 404, never a 403.
"""
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

import engine
from engine import queries, registry
from engine.diagram import mermaid
from web.api import idempotent, present
from web.api.auth import current_user
from web.api.common import error_responses, errors
from web.api.errors import ApiError
from web.api.schemas import ActionIn, HistoryEntryOut, InstanceOut, InstancePage, InstanceQuery, StartIn
from web.api.workflows import DiagramOut

blp = Blueprint("api_instances", __name__, url_prefix="/api/v1/instances",
                description="Workflow instances: start, list, read, act, history.")

_ITEM = "#/paths/~1api~1v1~1instances~1{instance_id}"
# OpenAPI links: from any response carrying an instance to reading it, firing the first action the caller may
# take now, and reading its history (clients and schemathesis's stateful phase follow them).
LINKS = {"links": {
    "GetInstance": {"operationRef": f"{_ITEM}/get", "parameters": {"instance_id": "$response.body#/id"}},
    "FireAllowedAction": {"operationRef": f"{_ITEM}~1actions~1{{trigger}}/post",
                          "parameters": {"instance_id": "$response.body#/id",
                                         "trigger": "$response.body#/allowed_actions/0/trigger"}},
    "GetHistory": {"operationRef": f"{_ITEM}~1history/get", "parameters": {"instance_id": "$response.body#/id"}},
}}

START_EXAMPLE = {"workflow": "discount_request", "org_unit": "S1", "comment": "老客户续约",
                 "data": {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}}

IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string", "maxLength": 16},
            "description": "The instance version the action was decided on; 412 when it has changed since."}


@blp.route("")
class Instances(MethodView):
    @blp.arguments(InstanceQuery, location="query", as_kwargs=True)
    @blp.response(200, InstancePage)
    @blp.alt_response(422, **error_responses[422])
    @blp.alt_response(401, **error_responses[401])
    def get(self, **filters):
        """List the instances you may see, newest first (cursor pagination)."""
        page = queries.list_instances(current_user(), **filters)
        return {"items": [present.summary(i) for i in page.items], "next_cursor": page.next_cursor}

    @blp.arguments(StartIn, example=START_EXAMPLE)
    @blp.doc(parameters=[idempotent.HEADER], responses={201: LINKS})
    @blp.response(201, InstanceOut)
    @blp.alt_response(400, **error_responses[400])
    @blp.alt_response(401, **error_responses[401])
    @blp.alt_response(403, **error_responses[403])
    @blp.alt_response(404, **error_responses[404])
    @blp.alt_response(409, **error_responses[409])
    @blp.alt_response(422, **error_responses[422])
    def post(self, args):
        """Start a workflow at an org unit (the latest version of the workflow). Optional Idempotency-Key."""
        user = current_user()

        def write():
            inst = engine.start(args["workflow"], args["org_unit"], user, args["data"], comment=args["comment"])
            return present.instance(inst, user)

        return idempotent.run(user, InstanceOut(), 201, write)


@blp.route("/<id:instance_id>")
class InstanceItem(MethodView):
    @blp.doc(responses={200: LINKS})
    @blp.response(200, InstanceOut)
    @blp.alt_response(401, **error_responses[401])
    @blp.alt_response(404, **error_responses[404])
    def get(self, instance_id):
        """One instance, with the actions you may take now, its pending deadlines and its signatures."""
        user = current_user()
        return present.instance(queries.visible_instance(instance_id, user), user)


@blp.route("/<id:instance_id>/actions/<string:trigger>")
class InstanceAction(MethodView):
    @blp.arguments(ActionIn, example={"data": {}, "comment": "同意"})
    @blp.doc(parameters=[IF_MATCH, idempotent.HEADER], responses={200: LINKS})
    @blp.response(200, InstanceOut)
    @blp.alt_response(400, **error_responses[400])
    @blp.alt_response(401, **error_responses[401])
    @blp.alt_response(403, **error_responses[403])
    @blp.alt_response(404, **error_responses[404])
    @blp.alt_response(409, **error_responses[409])
    @blp.alt_response(412, **error_responses[412])
    @blp.alt_response(422, **error_responses[422])
    def post(self, args, instance_id, trigger):
        """Fire `trigger` on the instance. Optional If-Match (version) and Idempotency-Key headers."""
        user = current_user()
        expected = _if_match()
        return idempotent.run(user, InstanceOut(), 200, lambda: _act(user, instance_id, trigger, args, expected),
                              extra=expected)


class ExpectedIn(Schema):
    expected = fields.Dict(required=True, validate=validate.Length(max=8),
                           metadata={"description": "cash, receipts_total, goods [{sku, name, expected}]"})


@blp.route("/<id:instance_id>/expected")
class HandoverExpected(MethodView):
    @blp.arguments(ExpectedIn, example={"expected": {"cash": "5000.00", "receipts_total": "12880.00",
                                                     "goods": [{"sku": "A100", "name": "羊毛衫", "expected": 3}]}})
    @blp.doc(parameters=[IF_MATCH, idempotent.HEADER])
    @blp.response(200, InstanceOut)
    @blp.alt_response(401, **error_responses[401])
    @blp.alt_response(403, **error_responses[403])
    @blp.alt_response(404, **error_responses[404])
    @blp.alt_response(409, **error_responses[409])
    @blp.alt_response(422, **error_responses[422])
    def post(self, args, instance_id):
        """The till/ERP's expected figures for a shift handover, before anyone counts (the `set_expected` step).

        Who may: the till/ERP's service account, i.e. an API token of a user holding `admin` at the store or
        above; never the people who count (they would set what they are checked against). Stored in the
        handover's data as `expected` with `source: "system"`; figures typed by counters instead are marked
        self-declared. 409 once counts are recorded or the handover has moved on."""
        user = current_user()
        expected = _if_match()
        return idempotent.run(user, InstanceOut(), 200, lambda: _act(
            user, instance_id, "set_expected", {"data": args, "comment": None}, expected), extra=expected)


def _act(user, instance_id, trigger, args, expected):
    g.if_match_given = expected is not None
    g.instance_id = instance_id
    # Visibility is checked only when the action is refused: whoever may fire a trigger holds a role at the
    # instance's unit or is its creator or assignee, so they may see it. This saves the instance load and the
    # principals query of a separate check on every approval; a stranger still gets a 404 for any refusal.
    try:
        inst = engine.fire(instance_id, trigger, user, args["data"], args["comment"], expected_version=expected)
    except Exception:
        queries.visible_instance(instance_id, user)
        raise
    return present.instance(inst, user)


def _if_match() -> int | None:
    value = request.headers.get("If-Match")
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit() or len(text) > 12:
        raise ApiError(400, "bad_request", "If-Match must be the instance version (an integer)",
                       errors={"If-Match": ["Must be the instance version (an integer)."]})
    return int(text)


@blp.route("/<id:instance_id>/history")
class InstanceHistory(MethodView):
    @blp.response(200, HistoryEntryOut(many=True))
    @blp.alt_response(401, **error_responses[401])
    @blp.alt_response(404, **error_responses[404])
    def get(self, instance_id):
        """The instance's audit trail in order, with failed notification mail and attachments."""
        user = current_user()
        inst = queries.visible_instance(instance_id, user)
        return [present.history_entry(e) for e in queries.full_history(inst.id)]


@blp.route("/<id:instance_id>/diagram")
class InstanceDiagram(MethodView):
    @blp.response(200, DiagramOut)
    @errors(blp, 401, 404)
    def get(self, instance_id):
        """The instance's workflow diagram (mermaid) with its current state highlighted."""
        inst = queries.visible_instance(instance_id, current_user())
        compiled = registry.get(inst.workflow, inst.definition_version)
        return {"name": compiled.name, "version": compiled.version, "mermaid": mermaid(compiled, inst.state)}
