"""Org and people, for administrators (role `admin`): org units, users, role assignments, delegations."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from engine import admin, dates, org_rules
from engine.limits import CODE_MAX, LIST_MAX
from engine.org import Role, UnitKind
from web.api.auth import current_user
from web.api.common import errors
from web.api.schemas import UserOut

blp = Blueprint("api_admin", __name__, url_prefix="/api/v1",
                description="Org units, users, roles and delegations (administrators only).")

# The length first: it puts maxLength into the OpenAPI document and keeps the pattern from scanning a long value.
CODE = (validate.Length(min=1, max=CODE_MAX), validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
# A reference to an existing person (older logins included)
LOGIN = (validate.Length(min=1, max=CODE_MAX), validate.Regexp(r"^[A-Za-z0-9_.@-]{1,64}$"))
# A new login: the engine's rule (engine.org_rules), repeated here so OpenAPI shows it.
NEW_LOGIN = (validate.Length(min=1, max=CODE_MAX),
             validate.Regexp(org_rules.LOGIN_PATTERN, error="Use 1-64 lower-case ASCII letters, digits, '.', '_' or "
                                                            "'-', starting with a letter or digit."))


def _one_line(value: str) -> None:
    if org_rules.unprintable(value):
        raise ValidationError("Must not contain line breaks or control characters.")


def _local_time(value) -> None:
    if value.tzinfo is not None:
        raise ValidationError("A time of day in the unit's timezone: give it without an offset (e.g. 18:00:00).")


NAME = [validate.Length(min=1, max=200), _one_line]


class UnitOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    parent = fields.String(allow_none=True)
    path = fields.String(required=True)
    timezone = fields.String(required=True)
    opens_at = fields.Time(required=True)
    closes_at = fields.Time(required=True)
    active = fields.Boolean(required=True)


class UnitIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in UnitKind]))
    parent = fields.String(load_default=None, allow_none=True, validate=CODE)
    timezone = fields.String(load_default="Asia/Shanghai", validate=validate.Length(min=1, max=64))
    opens_at = fields.Time(load_default=None, validate=_local_time)
    closes_at = fields.Time(load_default=None, validate=_local_time)


class UnitPatch(Schema):
    name = fields.String(validate=NAME)
    timezone = fields.String(validate=validate.Length(min=1, max=64))
    opens_at = fields.Time(validate=_local_time)
    closes_at = fields.Time(validate=_local_time)
    active = fields.Boolean()


class AssignmentOut(Schema):
    id = fields.Integer(required=True)
    role = fields.String(required=True)
    org_unit = fields.String(required=True)


class AssignmentIn(Schema):
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    org_unit = fields.String(required=True, validate=CODE)


class UserIn(Schema):
    login = fields.String(required=True, validate=NEW_LOGIN)
    name = fields.String(required=True, validate=NAME)
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=200))
    locale = fields.String(load_default="zh", validate=validate.OneOf(["zh", "en"]))
    roles = fields.List(fields.Nested(AssignmentIn), load_default=list, validate=validate.Length(max=LIST_MAX))


class UserPatch(Schema):
    name = fields.String(validate=NAME)
    email = fields.Email()
    password = fields.String(load_only=True, validate=validate.Length(min=8, max=200))
    locale = fields.String(validate=validate.OneOf(["zh", "en"]))
    active = fields.Boolean()


class DelegationOut(Schema):
    id = fields.Integer(required=True)
    from_user = fields.String(required=True)
    to_user = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)


class DelegationIn(Schema):
    from_user = fields.String(required=True, validate=LOGIN)
    to_user = fields.String(required=True, validate=LOGIN)
    starts_at = fields.AwareDateTime(required=True, validate=dates.InSpan())
    ends_at = fields.AwareDateTime(required=True, validate=dates.InSpan())


def _unit(u) -> dict:
    return {"code": u.code, "name": u.name, "kind": u.kind, "parent": u.parent.code if u.parent else None,
            "path": u.path, "timezone": u.timezone, "opens_at": u.opens_at, "closes_at": u.closes_at,
            "active": u.active}


def _assignment(a) -> dict:
    return {"id": a.id, "role": a.role, "org_unit": a.org_unit.code}


def _delegation(d) -> dict:
    return {"id": d.id, "from_user": d.from_user.login, "to_user": d.to_user.login, "starts_at": d.starts_at,
            "ends_at": d.ends_at}


@blp.route("/org-units")
class Units(MethodView):
    @blp.response(200, UnitOut(many=True))
    @errors(blp, 401, 403)
    def get(self):
        """The org units you administer, in tree order."""
        return [_unit(u) for u in admin.units(current_user())]

    @blp.arguments(UnitIn)
    @blp.response(201, UnitOut)
    @errors(blp, 400, 401, 403, 422)
    def post(self, args):
        """Add an org unit below one you administer."""
        fields_ = {k: args[k] for k in ("opens_at", "closes_at") if args[k] is not None}
        return _unit(admin.create_unit(current_user(), args["code"], args["name"], args["kind"], args["parent"],
                                       timezone=args["timezone"], **fields_))


@blp.route("/org-units/<string:code>")
class UnitItem(MethodView):
    @blp.response(200, UnitOut)
    @errors(blp, 401, 403, 404)
    def get(self, code):
        """One org unit."""
        return _unit(admin.unit(current_user(), code))

    @blp.arguments(UnitPatch)
    @blp.response(200, UnitOut)
    @errors(blp, 400, 401, 403, 404, 422)
    def patch(self, args, code):
        """Rename, re-time or (de)activate an org unit."""
        return _unit(admin.update_unit(current_user(), code, **args))


@blp.route("/users")
class Users(MethodView):
    @blp.response(200, UserOut(many=True))
    @errors(blp, 401, 403)
    def get(self):
        """The people you administer."""
        return admin.users(current_user())

    @blp.arguments(UserIn)
    @blp.response(201, UserOut)
    @errors(blp, 400, 401, 403, 422)
    def post(self, args):
        """Add a person, with roles at units you administer."""
        return admin.create_user(current_user(), args["login"], args["name"], args["email"], args["password"],
                                 args["locale"], [(r["role"], r["org_unit"]) for r in args["roles"]])


@blp.route("/users/<string:login>")
class UserItem(MethodView):
    @blp.response(200, UserOut)
    @errors(blp, 401, 403, 404)
    def get(self, login):
        """One person."""
        return admin.user(current_user(), login)

    @blp.arguments(UserPatch)
    @blp.response(200, UserOut)
    @errors(blp, 400, 401, 403, 404, 422)
    def patch(self, args, login):
        """Change a person's name, email, language, password, or (de)activate them."""
        return admin.update_user(current_user(), login, **args)

    @blp.response(200, UserOut)
    @errors(blp, 401, 403, 404, 422)
    def delete(self, login):
        """Deactivate a person (history keeps them; their tokens stop working)."""
        return admin.update_user(current_user(), login, active=False)


@blp.route("/users/<string:login>/roles")
class UserRoles(MethodView):
    @blp.response(200, AssignmentOut(many=True))
    @errors(blp, 401, 403, 404)
    def get(self, login):
        """A person's role assignments."""
        return [_assignment(a) for a in admin.roles(current_user(), login)]

    @blp.arguments(AssignmentIn)
    @blp.response(201, AssignmentOut)
    @errors(blp, 400, 401, 403, 404, 422)
    def post(self, args, login):
        """Give a person a role at a unit."""
        return _assignment(admin.grant(current_user(), login, args["role"], args["org_unit"]))


@blp.route("/users/<string:login>/roles/<id:assignment_id>")
class UserRoleItem(MethodView):
    @blp.response(204)
    @errors(blp, 401, 403, 404, 422)
    def delete(self, login, assignment_id):
        """Take a role assignment away."""
        admin.revoke(current_user(), login, assignment_id)


@blp.route("/delegations")
class Delegations(MethodView):
    @blp.response(200, DelegationOut(many=True))
    @errors(blp, 401, 403)
    def get(self):
        """Out-of-office delegations of the people you administer."""
        return [_delegation(d) for d in admin.delegations(current_user())]

    @blp.arguments(DelegationIn)
    @blp.response(201, DelegationOut)
    @errors(blp, 400, 401, 403, 422)
    def post(self, args):
        """Record a delegation: `to_user` acts in all of `from_user`'s roles for [starts_at, ends_at)."""
        return _delegation(admin.create_delegation(current_user(), args["from_user"], args["to_user"],
                                                   args["starts_at"], args["ends_at"]))


@blp.route("/delegations/<id:delegation_id>")
class DelegationItem(MethodView):
    @blp.response(204)
    @errors(blp, 401, 403, 404)
    def delete(self, delegation_id):
        """Remove a delegation."""
        admin.delete_delegation(current_user(), delegation_id)
