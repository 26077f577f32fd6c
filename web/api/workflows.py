"""Workflow definitions: what exists, each one's states, transitions, roles, deadlines, payload JSON Schemas,
and its diagram."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine import describe, registry
from engine.diagram import mermaid
from web.api.common import errors

blp = Blueprint("api_workflows", __name__, url_prefix="/api/v1/workflows",
                description="Workflow definitions (the latest version of each).")


def _titles(**kw):
    return fields.Dict(keys=fields.String(), values=fields.String(), **kw)


class RungOut(Schema):
    at = fields.String(required=True)
    action = fields.String(required=True)
    to = fields.String(allow_none=True)
    trigger = fields.String(allow_none=True)


class DeadlineDefOut(Schema):
    due = fields.String(required=True, metadata={"description": "A business-time expression, e.g. '2 working days'"})
    ladder = fields.List(fields.Nested(RungOut), required=True)


class SigningOut(Schema):
    policy = fields.String(required=True)
    quorum = fields.Integer(allow_none=True)
    complete = fields.String(required=True)


class StateOut(Schema):
    name = fields.String(required=True)
    title = _titles(required=True)
    final = fields.Boolean(required=True)
    assignee = fields.String(allow_none=True)
    deadline = fields.Nested(DeadlineDefOut, allow_none=True)
    signing = fields.Nested(SigningOut, allow_none=True)


class TransitionOut(Schema):
    trigger = fields.String(required=True)
    title = _titles(required=True)
    sources = fields.List(fields.String(), required=True)
    dest = fields.String(allow_none=True, metadata={"description": "null: stays in the state"})
    roles = fields.List(fields.String(), required=True)
    requires_comment = fields.Boolean(required=True)
    not_by = fields.List(fields.String(), required=True)
    signature = fields.Boolean(required=True)
    system_only = fields.Boolean(required=True)
    conditions = fields.List(fields.String(), required=True)
    unless = fields.List(fields.String(), required=True)
    schema = fields.Dict(required=True, metadata={"description": "JSON Schema of the action's `data`"})


class WorkflowOut(Schema):
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    title = _titles(required=True)
    description = _titles()
    initial = fields.String(required=True)
    start_roles = fields.List(fields.String(), required=True)
    roles = fields.List(fields.String(), required=True)
    start_schema = fields.Dict(required=True, metadata={"description": "JSON Schema of the start `data`"})
    states = fields.List(fields.Nested(StateOut), required=True)
    transitions = fields.List(fields.Nested(TransitionOut), required=True)


class DiagramOut(Schema):
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    mermaid = fields.String(required=True)


@blp.route("")
class Workflows(MethodView):
    @blp.response(200, WorkflowOut(many=True))
    @errors(blp, 401)
    def get(self):
        """Every workflow (latest version) with its states, transitions and payload schemas."""
        return [describe.definition(c) for c in registry.latest()]


class VersionQuery(Schema):
    version = fields.Integer(validate=validate.Range(min=1, max=10_000), metadata={
        "description": "A definition version (instances stay on the version they started on); default: latest"})


@blp.route("/<string:name>")
class WorkflowItem(MethodView):
    @blp.arguments(VersionQuery, location="query")
    @blp.response(200, WorkflowOut)
    @errors(blp, 401, 404, 422)
    def get(self, args, name):
        """One workflow (the latest version, or `version`)."""
        return describe.definition(registry.get(name, args.get("version")))


@blp.route("/<string:name>/diagram")
class WorkflowDiagram(MethodView):
    @blp.arguments(VersionQuery, location="query")
    @blp.response(200, DiagramOut)
    @errors(blp, 401, 404, 422)
    def get(self, args, name):
        """The workflow's state diagram as mermaid text (the latest version, or `version`)."""
        compiled = registry.get(name, args.get("version"))
        return {"name": compiled.name, "version": compiled.version, "mermaid": mermaid(compiled)}
