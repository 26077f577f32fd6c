"""A size limit on every input. The JSON Schemas clients read (the OpenAPI document and each workflow's payload
schemas at /api/v1/workflows/{name}) bound every string (maxLength) and every list (maxItems) and map
(maxProperties); what they say is enforced: an over-long comment or list is a 422 naming the field, an
over-large body a 413 before it is parsed; uploads have their own, larger limit; the book stock import checks
who may load it before it reads the file, and caps its rows."""
import io
import shutil
from pathlib import Path

import pytest

import engine
from engine import registry
from engine.errors import InvalidPayload
from engine.limits import COMMENT_MAX, GOODS_LINES_MAX
from tests.api_fixtures import api_fixture  # noqa: F401
from tests.test_api_core import error

pytest_plugins = ["tests.ui_fixtures"]

# Strings that need no maxLength: a choice from a list, or a format that bounds itself (parsed by a fixed pattern).
BOUNDED_FORMATS = {"date", "date-time", "email", "binary"}
# The envelope's `data` is checked against the workflow's own payload schema, which is walked here too.
ENVELOPE = {"StartIn.data", "ActionIn.data"}
MONDAY_HANDOVER = "2026-11-02T14:00:00+08:00"


def unbounded(schema: dict, where: str, components: dict, seen: frozenset = frozenset()) -> list[str]:
    """Every place in a JSON Schema where a string has no maxLength, a list no maxItems, a map no maxProperties."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else unbounded(components[name], name, components, seen | {name})
    found = []
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            found += unbounded(sub, where, components, seen)
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if ("string" in types and "number" not in types and "maxLength" not in schema and "enum" not in schema
            and schema.get("format") not in BOUNDED_FORMATS):
        found.append(f"{where}: a string without maxLength")
    if "array" in types:
        if "maxItems" not in schema:
            found.append(f"{where}: a list without maxItems")
        found += unbounded(schema.get("items", {}), f"{where}[]", components, seen)
    for name, sub in schema.get("properties", {}).items():
        found += unbounded(sub, f"{where}.{name}", components, seen)
    extra = schema.get("additionalProperties")
    if "object" in types and "properties" not in schema and extra is not False and where not in ENVELOPE:
        if "maxProperties" not in schema:
            found.append(f"{where}: a map without maxProperties")
        if isinstance(extra, dict):
            found += unbounded(extra, f"{where}.*", components, seen)
    return found


def test_the_walk_finds_unbounded_strings_lists_and_maps():
    schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "kind": {"type": "string", "enum": ["a"]}, "at": {"type": "string",
                                                                                 "format": "date"},
        "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
        "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}},
        "scores": {"type": "object", "additionalProperties": {"type": "integer"}}}}
    components = {"Line": {"type": "object", "properties": {"sku": {"type": "string", "maxLength": 64}}}}
    assert unbounded(schema, "S", components) == [
        "S.name: a string without maxLength", "S.tags[]: a string without maxLength",
        "S.lines: a list without maxItems", "S.scores: a map without maxProperties"]


def test_every_input_of_the_api_has_a_size_limit_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").json
    components = spec["components"]["schemas"]
    found, inputs = [], 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if not isinstance(op, dict):
                continue
            for p in op.get("parameters", []):
                inputs += 1
                found += unbounded(p.get("schema", {}), f"{method.upper()} {path} {p['in']} {p['name']}", components)
            for content in op.get("requestBody", {}).get("content", {}).values():
                inputs += 1
                found += unbounded(content["schema"], f"{method.upper()} {path} body", components)
    assert inputs > 30 and found == []
    assert components["ActionIn"]["properties"]["comment"]["maxLength"] == COMMENT_MAX


def test_every_workflow_payload_has_a_size_limit_in_its_json_schema(api):
    found, walked = [], 0
    for compiled in registry.all_versions():
        r = api.get(f"/workflows/{compiled.name}?version={compiled.version}", as_="a1")
        assert r.status_code == 200, r.json
        schemas = {"start": r.json["start_schema"]} | {t["trigger"]: t["schema"] for t in r.json["transitions"]}
        for name, schema in schemas.items():
            walked += 1
            found += unbounded(schema, f"{compiled.name} v{compiled.version} {name}", {})
    assert walked > 40 and found == []
    handover = api.get("/workflows/shift_handover", as_="a1").json
    goods = handover["start_schema"]["properties"]["counts"]["properties"]["goods"]
    assert goods["maxItems"] == GOODS_LINES_MAX
    cohort = api.get("/workflows/training_cohort", as_="a1").json
    scores = next(t for t in cohort["transitions"] if t["trigger"] == "assess_stage")["schema"]["properties"]["scores"]
    assert scores["maxProperties"] == 50 and "maxLength" not in scores


# ---- what the schemas say is enforced --------------------------------------------------------------------

def test_a_comment_over_4000_characters_is_refused_naming_it(api, people):
    inst = api.start()
    r = api.post(f"/instances/{inst['id']}/actions/submit", as_="a1", json={"comment": "长" * (COMMENT_MAX + 1)})
    assert "comment" in error(r, 422)["errors"]
    # the engine refuses it too, whoever calls it (pages, CLI): nothing goes into the audit trail
    with pytest.raises(InvalidPayload) as refused:
        engine.fire(inst["id"], "submit", people["a1"], {}, "x" * (COMMENT_MAX + 1))
    assert "comment" in refused.value.errors
    assert api.get(f"/instances/{inst['id']}", as_="a1").json["version"] == inst["version"]
    ok = api.post(f"/instances/{inst['id']}/actions/submit", as_="a1", json={"comment": "长" * COMMENT_MAX})
    assert ok.status_code == 200, ok.json


def test_a_handover_with_too_many_goods_lines_is_refused_and_nothing_is_started(api):
    line = {"sku": "A100", "name": "羊毛衫", "expected": 1, "counted": 1}
    counts = {"cash_expected": "10.00", "cash_counted": "10.00", "full_count": True,
              "goods": [line | {"sku": f"A{n}"} for n in range(GOODS_LINES_MAX + 1)]}
    r = api.post("/instances", as_="sm1", json={"workflow": "shift_handover", "org_unit": "S1",
                                                "data": {"handover_at": MONDAY_HANDOVER, "counts": counts}})
    assert "goods" in error(r, 422)["errors"]["counts"]
    assert api.get("/instances?workflow=shift_handover", as_="sm1").json["items"] == []


def test_a_body_over_the_json_limit_is_a_413_in_the_error_shape_before_it_is_parsed(api, app):
    inst = api.start()
    limit = 1024 * 1024  # JSON_MAX_BYTES by default
    big = b'{"comment": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    body = error(api.post(f"/instances/{inst['id']}/actions/submit", as_="a1", data=big,
                          content_type="application/json"), 413, "too_large")
    assert body["details"]["max_bytes"] == limit
    # not even read: a body that is not JSON at all is refused for its size, not for its syntax
    error(api.post(f"/instances/{inst['id']}/actions/submit", as_="a1", data=b"{" * (2 * 1024 * 1024),
                   content_type="application/json"), 413, "too_large")
    assert api.get(f"/instances/{inst['id']}", as_="a1").json["version"] == inst["version"]


def test_uploads_keep_their_own_larger_limit(api, app):
    inst = api.submitted()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1_500_000  # over the JSON limit (1 MB), within the file limit
    r = api.post(f"/instances/{inst['id']}/attachments", as_="a1", data={"file": (io.BytesIO(png), "photo.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    shutil.rmtree(Path(app.instance_path) / "attachments" / str(inst["id"]))  # ids restart in the next test


def csv_upload(content: bytes):
    return {"data": {"file": (io.BytesIO(content), "book.csv")}, "content_type": "multipart/form-data"}


def test_book_stock_checks_who_may_load_it_before_reading_the_file(api):
    inst = api.start(as_="sm1", workflow="stocktake", data={"month": "2026-11"})
    url = f"/instances/{inst['id']}/book-stock"
    # an assistant may not load the book: refused for that, whatever the file holds (it is not read)
    error(api.post(url, as_="a1", **csv_upload(b"\xff\xfe not UTF-8")), 403, "not_permitted")
    error(api.post(url, as_="a1", **csv_upload(b"sku,quantity\nA100,lots\n")), 403, "not_permitted")
    error(api.post(url, as_="sm3", **csv_upload(b"\xff\xfe")), 404)
    assert api.post(url, as_="dep1", **csv_upload(b"sku,quantity\nA100,1\n")).status_code == 200


def test_book_stock_csv_rows_are_capped(api, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_ROWS", 3)
    inst = api.start(as_="sm1", workflow="stocktake", data={"month": "2026-11"})
    rows = "".join(f"A{n},{n}\n" for n in range(5))
    body = error(api.post(f"/instances/{inst['id']}/book-stock", as_="dep1",
                          **csv_upload(f"sku,quantity\n{rows}".encode())), 422, "invalid_payload")
    assert body["errors"]["file"] == ["Too many lines: 5 (at most 3)."]
    assert api.get(f"/instances/{inst['id']}", as_="sm1").json["version"] == inst["version"]


# ---- pages -----------------------------------------------------------------------------------------------

def test_pages_answer_an_over_large_post_with_a_readable_413(app, people, clock, signed_in):
    inst = engine.start("discount_request", "S1", people["a1"], {"customer": "李女士", "amount": "1280.00",
                                                                 "discount_percent": "15", "reason": "老客户"})
    a1 = signed_in("a1")
    r = a1.post(f"/instances/{inst.id}/actions/submit", {"comment": "x" * (2 * 1024 * 1024)})
    assert r.status_code == 413 and "text/html" in r.content_type
    assert "太大" in r.get_data(as_text=True) and "1 MB" in r.get_data(as_text=True)
    # the page's own form is multipart (it may carry a CSV file): one field over the limit is refused too
    r = a1.post(f"/instances/{inst.id}/actions/submit", {"comment": "x" * (2 * 1024 * 1024)},
                content_type="multipart/form-data")
    assert r.status_code == 413 and "1 MB" in r.get_data(as_text=True)


def test_pages_show_an_over_long_comment_beside_the_field(app, people, clock, signed_in):
    inst = engine.start("discount_request", "S1", people["a1"], {"customer": "李女士", "amount": "1280.00",
                                                                 "discount_percent": "15", "reason": "老客户"})
    r = signed_in("a1").post(f"/instances/{inst.id}/actions/submit", {"comment": "长" * (COMMENT_MAX + 1)})
    assert r.status_code == 422
    assert f'data-field="comment">长度不能超过{COMMENT_MAX}' in r.get_data(as_text=True)
