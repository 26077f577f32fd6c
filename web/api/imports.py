"""Bulk data where people need it: a stocktake's book stock as a CSV file, a store's stock list (CSV or Excel),
annual targets (年度目标)."""
import functools

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

import engine
from engine import admin, queries, stock
from engine.db import db
from engine.limits import CODE_MAX, TARGETS_MAX
from engine.org import OrgUnit, User
from web.api import present
from web.api.auth import current_user
from web.api.common import errors
from web.api.schemas import InstanceOut
from workflows.stocktake import parse_book_file

blp = Blueprint("api_imports", __name__, url_prefix="/api/v1", description="Bulk imports: book stock, targets.")


class CsvIn(Schema):
    file = Upload(required=True, metadata={"description": "Excel (.xlsx, first sheet) or CSV (UTF-8): "
                                                          "sku,name,quantity,unit_cost (or 编码,名称,数量,单价)"})


class TargetIn(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    org_unit = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX))
    user = fields.String(load_default=None, validate=validate.Length(min=1, max=CODE_MAX),
                         metadata={"description": "a rep's login; none for the unit's own"})
    amount = fields.Decimal(required=True, places=2, as_string=True, validate=lambda v: v >= 0,
                            metadata={"description": "yuan, not negative"})
    new_customers = fields.Integer(required=True, validate=validate.Range(min=0))
    visits = fields.Integer(required=True, validate=validate.Range(min=0))


class TargetsIn(Schema):
    targets = fields.List(fields.Nested(TargetIn), required=True, validate=validate.Length(min=1, max=TARGETS_MAX))


class TargetsQuery(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))


def _may_load_book(view):
    """Refuse a stranger (404), someone who may not load the book (403) or a stocktake past that step (409) before
    the upload is read: the argument parser below this reads the whole file."""

    @functools.wraps(view)
    def checked_first(*args, instance_id, **kwargs):
        user = current_user()
        engine.may_fire(queries.visible_instance(instance_id, user), "load_book", user)
        return view(*args, instance_id=instance_id, **kwargs)

    return checked_first


@blp.route("/instances/<id:instance_id>/book-stock")
class BookStock(MethodView):
    @_may_load_book
    @blp.arguments(CsvIn, location="files")
    @blp.response(200, InstanceOut)
    @errors(blp, 400, 401, 403, 404, 409, 413, 422)
    def post(self, args, instance_id):
        """Load a stocktake's book stock from an Excel or CSV file: its `load_book` action, all lines or none (at most
        IMPORT_MAX_ROWS lines; the file at most ATTACHMENT_MAX_BYTES)."""
        user = current_user()
        book = parse_book_file(args["file"].stream.read(), current_app.config["IMPORT_MAX_ROWS"])
        inst = engine.fire(instance_id, "load_book", user, {"book": book})
        return present.instance(inst, user)


class StockFileIn(Schema):
    file = Upload(required=True,
                  metadata={"description": "CSV (UTF-8) or .xlsx: sku, name, unit_cost (编码,名称,单价)"})


class StockLineOut(Schema):
    sku = fields.String(required=True)
    name = fields.String(required=True)
    unit_cost = fields.String(allow_none=True)


class StockListOut(Schema):
    org_unit = fields.String(required=True)
    source = fields.String(required=True, metadata={"description": "import, stocktake (its book) or none"})
    as_of = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(StockLineOut), required=True)


def _may_keep_stock(view):
    """Refuse a stranger (404) or someone who may not change the list (403) before the upload is read."""

    @functools.wraps(view)
    def checked_first(*args, code, **kwargs):
        stock.store_for_keeper(current_user(), code)
        return view(*args, code=code, **kwargs)

    return checked_first


@blp.route("/org-units/<string:code>/stock-list")
class StockListItem(MethodView):
    @_may_keep_stock
    @blp.arguments(StockFileIn, location="files")
    @blp.response(200, StockListOut)
    @errors(blp, 400, 401, 403, 404, 413, 422)
    def put(self, args, code):
        """Replace a store's stock list (every SKU it stocks: Tuesday's handover counts each) from a CSV or .xlsx
        file, all lines or none. Who may: the store's store or deputy manager, or an administrator over it."""
        unit = stock.store_for_keeper(current_user(), code)
        upload = args["file"]
        lines = stock.parse(upload.stream.read(), upload.filename or "", current_app.config["IMPORT_MAX_ROWS"])
        kept = stock.replace(unit, lines)
        return {"org_unit": unit.code, "source": kept.source, "as_of": kept.as_of, "lines": kept.lines}


@blp.route("/targets")
class Targets(MethodView):
    @blp.arguments(TargetsQuery, location="query")
    @blp.response(200, TargetIn(many=True))
    @errors(blp, 401, 403, 422)
    def get(self, args):
        """Annual targets of a year in your administration."""
        return [_row(t) for t in admin.targets(current_user(), args["year"])]

    @blp.arguments(TargetsIn)
    @blp.response(200, TargetIn(many=True))
    @errors(blp, 400, 401, 403, 404, 422)
    def put(self, args):
        """Set annual targets (per unit, or per rep at a unit); monthly plans are pre-filled from them."""
        return [_row(t) for t in admin.set_targets(current_user(), args["targets"])]


def _row(t) -> dict:
    person = db.session.get(User, t.user_id) if t.user_id else None
    return {"year": t.year, "org_unit": db.session.get(OrgUnit, t.org_unit_id).code,
            "user": person.login if person else None, "amount": t.amount, "new_customers": t.new_customers,
            "visits": t.visits}
