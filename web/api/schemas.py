"""Marshmallow schemas of the API's requests and responses (the OpenAPI spec is generated from them)."""
from marshmallow import Schema, fields, validate

from engine.limits import CODE_MAX, COMMENT_MAX, CURSOR_MAX, PASSWORD_MAX, QUERY_MAX

CODE = validate.Length(min=1, max=CODE_MAX)  # workflow and state names, unit codes, logins


def titles(**kw):
    return fields.Dict(keys=fields.String(), values=fields.String(),
                       metadata={"description": "Title by language: {zh, en}"}, **kw)


class UserRef(Schema):
    login = fields.String(required=True)
    name = fields.String(required=True)


class UnitRef(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ActionOut(Schema):
    trigger = fields.String(required=True)
    title = titles(required=True)
    requires_comment = fields.Boolean(required=True)


class DeadlineOut(Schema):
    due_at = fields.DateTime(required=True)
    rung = fields.Integer(required=True, metadata={"description": "0: the deadline itself; 1..: escalation rungs"})
    action = fields.String(required=True, metadata={
        "description": "deadline (the step becomes overdue), remind, escalate, or fire (an automatic action)"})
    to = fields.String(allow_none=True, metadata={"description": "Who is told: assignee, manager, manager+N, role:R"})
    trigger = fields.String(allow_none=True, metadata={"description": "The trigger fired automatically"})


class SignatureOut(Schema):
    state = fields.String(required=True)
    trigger = fields.String(required=True)
    role = fields.String(required=True)
    user = fields.Nested(UserRef, required=True)
    on_behalf_of = fields.Nested(UserRef, allow_none=True)
    signed_at = fields.DateTime(required=True)


class InstanceSummary(Schema):
    id = fields.Integer(required=True)
    workflow = fields.String(required=True)
    definition_version = fields.Integer(required=True)
    state = fields.String(required=True)
    state_title = titles(required=True)
    org_unit = fields.Nested(UnitRef, required=True)
    version = fields.Integer(required=True)
    created_by = fields.Nested(UserRef, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    due_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)


class InstanceOut(InstanceSummary):
    data = fields.Dict(required=True)
    allowed_actions = fields.List(fields.Nested(ActionOut), required=True,
                                  metadata={"description": "Triggers the caller may fire now"})
    deadlines = fields.List(fields.Nested(DeadlineOut), required=True)
    signatures = fields.List(fields.Nested(SignatureOut), required=True)
    step_facts = fields.List(fields.Dict(), required=True, metadata={
        "description": "What whoever owes the current step must see to take it (label {zh, en}, value): for a "
                       "handover's countersign, the notes, receipts, cash expected vs counted, the differing goods "
                       "lines, and whether the expected figures were self-declared"})


class InstancePage(Schema):
    items = fields.List(fields.Nested(InstanceSummary), required=True)
    next_cursor = fields.String(allow_none=True, required=True,
                                metadata={"description": "Pass as `cursor` for the next page; null on the last"})


class InstanceQuery(Schema):
    workflow = fields.String(validate=CODE)
    state = fields.String(validate=CODE)
    org_unit = fields.String(validate=CODE, metadata={"description": "Org unit code; includes the units below it"})
    overdue = fields.Boolean()
    created_by = fields.String(validate=CODE, metadata={"description": "Login of the creator"})
    q = fields.String(validate=validate.Length(max=QUERY_MAX),
                      metadata={"description": "Instance number or text in the data"})
    cursor = fields.String(validate=validate.Length(max=CURSOR_MAX))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class StartIn(Schema):
    workflow = fields.String(required=True, validate=CODE)
    org_unit = fields.String(required=True, validate=CODE, metadata={"description": "Org unit code"})
    data = fields.Dict(load_default=dict, metadata={"description": "The workflow's start payload"})
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=COMMENT_MAX))


class ActionIn(Schema):
    data = fields.Dict(load_default=dict, metadata={"description": "The transition's payload"})
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=COMMENT_MAX))


class HistoryEntryOut(Schema):
    at = fields.DateTime(required=True)
    kind = fields.String(required=True, metadata={"description": "event, mail_failed or attachment"})
    seq = fields.Integer(allow_none=True)
    trigger = fields.String(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    actor = fields.Nested(UserRef, allow_none=True)
    on_behalf_of = fields.Nested(UserRef, allow_none=True)
    data = fields.Dict(allow_none=True)
    comment = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class TaskOut(Schema):
    instance = fields.Nested(InstanceSummary, required=True)
    actions = fields.List(fields.Nested(ActionOut), required=True)
    due_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean(required=True)


class TokenIn(Schema):
    login = fields.String(required=True, validate=validate.Length(max=CODE_MAX))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX))


class TokenOut(Schema):
    token = fields.String(required=True, metadata={"description": "Shown once; send as Authorization: Bearer …"})
    expires_at = fields.DateTime(required=True, metadata={
        "description": "When the token stops working (API_TOKEN_TTL after it was issued); then ask for a new one"})


class RoleOut(Schema):
    id = fields.Integer()
    role = fields.String(required=True)
    org_unit = fields.String(required=True)


class UserOut(Schema):
    id = fields.Integer(required=True)
    login = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    locale = fields.String(required=True)
    active = fields.Boolean(required=True)


class MeOut(UserOut):
    roles = fields.List(fields.Nested(RoleOut), required=True)
