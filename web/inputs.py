"""The one gate every request's input passes before a view sees it: text no database can store and JSON no
parser should be asked to handle are refused here with a 4xx naming the field, so no view, schema or query
meets them (PostgreSQL refuses NUL in text; lone surrogates cannot be encoded as UTF-8; Python refuses integers
over 4,300 digits and recurses on deep nesting; I-JSON (RFC 7493) keeps integers within ±(2⁵³-1)).

Checked: query-string parameters, URL path parts, urlencoded form fields, JSON bodies. API paths answer in the
API's JSON error shape (422 naming the field, 400 for a body that cannot be parsed); pages answer a 400 page
that names the field.
"""
import json
import math

from flask import render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.routing import IntegerConverter

MAX_DEPTH = 32  # no payload nests deeper than a handful of levels; 32 leaves room and stops a parser bomb
MAX_INTEGER = 2**53 - 1  # I-JSON: the integers every JSON reader represents exactly
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database

NUL = _l("Must not contain the NUL character (\\u0000).")
SURROGATE = _l("Must not contain unpaired surrogates (invalid Unicode).")
TOO_LARGE = _l("Number too large.")
NOT_FINITE = _l("Must be a finite number.")
TOO_DEEP = _l("The JSON is nested too deeply.")
UNPARSEABLE = _l("The request body is not valid JSON.")


class BadInput(Exception):
    """`field` (a dotted path, or "body") carries `reason`; `malformed`: the body as a whole cannot be parsed."""

    def __init__(self, field: str, reason, malformed: bool = False):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.malformed = field, reason, malformed


def text_problem(text: str):
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return NUL
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE
    return None


def check_text(field: str, text: str) -> None:
    """Raise BadInput when `text` (the value or the name of `field`) cannot be stored."""
    problem = text_problem(text)
    if problem is not None:
        raise BadInput(field, problem)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes):
    """Parse a JSON body and check every string, number and level in it; raise BadInput for what cannot be
    handled. Strict JSON: no NaN or Infinity literals."""
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise BadInput("body", TOO_DEEP, malformed=True) from None
    except ValueError:  # invalid JSON or undecodable bytes, and integers over Python's 4,300-digit limit
        raise BadInput("body", UNPARSEABLE, malformed=True) from None
    check_value(value)
    return value


def check_value(value, path: str = "", depth: int = 0) -> None:
    """Walk a parsed JSON value (iteration bounded by MAX_DEPTH) and raise BadInput at the first bad leaf."""
    if depth > MAX_DEPTH:
        raise BadInput(path or "body", TOO_DEEP, malformed=True)
    if isinstance(value, str):
        check_text(path or "body", value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise BadInput(path or "body", TOO_LARGE)
    elif isinstance(value, float):
        if not math.isfinite(value):  # 1e400 parses as inf
            raise BadInput(path or "body", NOT_FINITE)
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            check_text(name, key)
            check_value(item, name, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{path}.{index}" if path else str(index), depth + 1)


def check_request() -> None:
    """Check the current request's query string, path parts, urlencoded form and JSON body."""
    for key, values in request.args.lists():
        check_text(key, key)
        for value in values:
            check_text(key, value)
    for key, value in (request.view_args or {}).items():
        if isinstance(value, str):
            check_text(key, value)
    # urlencoded forms only: a multipart upload is left to its view, which applies the size limit first
    if request.mimetype == "application/x-www-form-urlencoded":
        for key, values in request.form.lists():
            check_text(key, key)
            for value in values:
                check_text(key, value)
    if request.is_json and request.content_length != 0:
        data = request.get_data(cache=True)
        if data:
            parse_json(data)


def _refuse(e: BadInput):
    field = e.field if text_problem(e.field) is None else "body"  # never echo the bad text itself
    if request.path.startswith("/api/"):
        from web.api.errors import payload

        if e.malformed:
            return payload(400, "malformed_json", None, {field: [str(e.reason)]}), 400
        return payload(422, "invalid_payload", None, {field: [str(e.reason)]}), 422
    return render_template("error.html", status=400, field=field, reason=e.reason), 400


def _gate():
    try:
        check_request()
    except BadInput as e:
        return _refuse(e)
    return None


class DatabaseInt(IntegerConverter):
    """`<int:name>` in page URLs: an id the database's integer columns can hold; a larger one is a 404 before a
    query could overflow."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install_converters(app) -> None:
    """Bound `<int:>` URL parts (before any blueprint adds its routes: a rule binds its converter when added)."""
    app.url_map.converters["int"] = DatabaseInt


def init_app(app) -> None:
    """Run the gate before every view (and before the blueprints' own hooks: auth, CSRF, rate limits)."""
    app.before_request(_gate)
