"""The JSON API's core: tokens, workflows, instances, actions (If-Match, Idempotency-Key), history, tasks,
and the one error shape with the caller's language."""
import dataclasses

import sqlalchemy as sa

from engine import registry
from engine.db import db
from engine.idempotency import IdempotencyRecord
from engine.models import ApiToken, AuditEvent
from tests import definitions
from tests.api_fixtures import REQUEST, api_fixture  # noqa: F401

ERROR_KEYS = {"code", "status", "message", "error"}


def error(r, status, name=None):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert r.is_json and ERROR_KEYS <= set(r.json) and r.json["code"] == status, r.get_data(as_text=True)
    if name:
        assert r.json["error"] == name, r.json
    return r.json


# ---- tokens and auth ------------------------------------------------------------------------------------

def test_token_login_use_and_revoke(api):
    r = api.post("/tokens", json={"login": "a1", "password": "pw-a1"})
    assert r.status_code == 201
    token = r.json["token"]
    assert db.session.scalar(sa.select(ApiToken.token_hash)) != token  # only the hash is stored
    auth = {"Authorization": f"Bearer {token}"}
    me = api.get("/me", headers=auth)
    assert me.status_code == 200 and me.json["login"] == "a1"
    assert me.json["roles"] == [{"role": "assistant", "org_unit": "S1"}]
    assert api.delete("/tokens/current", headers=auth).status_code == 204
    error(api.get("/me", headers=auth), 401, "unauthorized")


def test_bad_credentials_and_missing_tokens_are_401(api):
    error(api.post("/tokens", json={"login": "a1", "password": "wrong"}), 401, "bad_credentials")
    error(api.post("/tokens", json={"login": "nobody", "password": "x"}), 401, "bad_credentials")
    r = error(api.get("/instances"), 401, "unauthorized")
    assert r["message"].startswith("需要")  # zh by default
    error(api.get("/instances", headers={"Authorization": "Bearer so_nonsense"}), 401)
    error(api.get("/instances", headers={"Authorization": "Basic YTE6cHctYTE="}), 401)


def test_cookies_alone_are_not_enough(api, app):
    client = api.client
    client.set_cookie("session", "whatever")
    error(client.get("/api/v1/me"), 401)


def test_deactivated_users_tokens_stop_working(api, people):
    assert api.get("/me", as_="a2").status_code == 200
    people["a2"].active = False
    db.session.commit()
    error(api.get("/me", as_="a2"), 401)


# ---- workflows -------------------------------------------------------------------------------------------

def test_workflows_describe_states_transitions_and_schemas(api):
    r = api.get("/workflows", as_="a1")
    assert r.status_code == 200
    names = [w["name"] for w in r.json]
    assert "discount_request" in names
    wf = api.get("/workflows/discount_request", as_="a1").json
    assert wf["initial"] == "draft"
    draft = next(s for s in wf["states"] if s["name"] == "draft")
    assert draft["title"] == {"zh": "草稿", "en": "Draft"}
    review = next(s for s in wf["states"] if s["name"] == "store_review")
    assert review["deadline"]["due"] == "4 hours" and review["deadline"]["ladder"][1]["to"] == "manager"
    start = wf["start_schema"]
    assert set(start["required"]) == {"customer", "amount", "discount_percent", "reason"}
    assert start["properties"]["discount_percent"]["maximum"] == 100
    approve = [t for t in wf["transitions"] if t["trigger"] == "approve"]
    assert approve[0]["roles"] == ["store_manager"] and approve[0]["schema"]["type"] == "object"
    assert "store_manager" in wf["roles"] and "creator" in wf["roles"]
    diagram = api.get("/workflows/discount_request/diagram", as_="a1").json
    assert diagram["mermaid"].lstrip().startswith("---") or "stateDiagram" in diagram["mermaid"]
    error(api.get("/workflows/nope", as_="a1"), 404, "unknown_workflow")
    error(api.get("/workflows/nope/diagram", as_="a1"), 404)


def test_the_start_schema_validates_like_the_server():
    import jsonschema

    from engine import describe, registry

    schema = describe.json_schema(registry.get("discount_request").wf.start_schema)
    jsonschema.validate(REQUEST, schema)
    bad = {**REQUEST, "discount_percent": 120}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


# ---- instances: the golden path ----------------------------------------------------------------------------

def test_start_submit_approve_history(api, clock):
    inst = api.start()
    assert inst["state"] == "draft" and inst["version"] == 1 and inst["created_by"]["login"] == "a1"
    assert inst["state_title"] == {"zh": "草稿", "en": "Draft"}
    assert {a["trigger"] for a in inst["allowed_actions"]} == {"submit", "update", "withdraw"}
    assert inst["data"]["customer"] == "李女士" and inst["org_unit"]["code"] == "S1"
    clock.advance(minutes=5)
    r = api.post(f"/instances/{inst['id']}/actions/submit", as_="a1", json={})
    assert r.status_code == 200 and r.json["state"] == "store_review" and r.json["version"] == 2
    assert [a["trigger"] for a in r.json["allowed_actions"]] == ["withdraw"]  # the creator cannot approve
    deadlines = r.json["deadlines"]
    assert [d["action"] for d in deadlines] == ["remind", "deadline", "escalate", "escalate"]
    assert deadlines[2]["to"] == "manager"
    seen = api.get(f"/instances/{inst['id']}", as_="sm1").json
    assert {a["trigger"] for a in seen["allowed_actions"]} == {"approve", "return", "reject"}
    r = api.post(f"/instances/{inst['id']}/actions/approve", as_="sm1", json={"comment": "同意"},
                 headers={"If-Match": "2"})
    assert r.status_code == 200 and r.json["state"] == "approved" and r.json["closed_at"]
    history = api.get(f"/instances/{inst['id']}/history", as_="a1").json
    assert [(h["trigger"], h["to_state"], h["actor"]["login"]) for h in history] == [
        ("start", "draft", "a1"), ("submit", "store_review", "a1"), ("approve", "approved", "sm1")]
    assert history[2]["comment"] == "同意"


def test_tasks_inbox(api, clock):
    first = api.submitted()
    clock.advance(hours=5)
    second = api.submitted(as_="a1b")
    tasks = api.get("/tasks", as_="sm1").json
    assert [t["instance"]["id"] for t in tasks] == [first["id"], second["id"]]
    assert tasks[0]["overdue"] is True and tasks[1]["overdue"] is False
    assert {a["trigger"] for a in tasks[0]["actions"]} == {"approve", "return", "reject"}
    assert api.get("/tasks", as_="sm2").json == []


# ---- listing: filters, pagination, visibility ------------------------------------------------------------

def test_listing_filters_and_keyset_pages(api, clock):
    ids = [api.start()["id"] for _ in range(5)]
    s2 = api.start(as_="a2", unit="S2", data={**REQUEST, "customer": "王先生"})["id"]
    s3 = api.start(as_="a3", unit="S3")["id"]
    api.post(f"/instances/{ids[0]}/actions/submit", as_="a1", json={})
    page = api.get("/instances?limit=2", as_="east").json
    assert [i["id"] for i in page["items"]] == [s2, ids[4]]
    seen = [i["id"] for i in page["items"]]
    while page["next_cursor"]:
        page = api.get(f"/instances?limit=2&cursor={page['next_cursor']}", as_="east").json
        seen += [i["id"] for i in page["items"]]
    assert seen == [s2, *reversed(ids)]  # EAST sees S1 and S2, not S3
    assert [i["id"] for i in api.get("/instances", as_="boss").json["items"]][0] == s3
    assert [i["id"] for i in api.get("/instances?org_unit=S2", as_="boss").json["items"]] == [s2]
    assert {i["id"] for i in api.get("/instances?org_unit=EAST", as_="boss").json["items"]} == {*ids, s2}
    assert [i["id"] for i in api.get("/instances?state=store_review", as_="east").json["items"]] == [ids[0]]
    assert [i["id"] for i in api.get("/instances?q=王先生", as_="boss").json["items"]] == [s2]
    assert [i["id"] for i in api.get(f"/instances?q={s3}", as_="boss").json["items"]] == [s3]
    assert [i["id"] for i in api.get("/instances?created_by=a2", as_="boss").json["items"]] == [s2]
    assert api.get("/instances?workflow=other", as_="boss").json["items"] == []
    assert api.get("/instances?overdue=true", as_="boss").json["items"] == []
    clock.advance(hours=5)
    assert [i["id"] for i in api.get("/instances?overdue=true", as_="boss").json["items"]] == [ids[0]]
    assert len(api.get("/instances?overdue=false", as_="boss").json["items"]) == 6
    # a store assistant sees only their own store's
    assert {i["id"] for i in api.get("/instances", as_="a2").json["items"]} == {s2}
    error(api.get("/instances?cursor=%%%", as_="boss"), 422)
    error(api.get("/instances?limit=0", as_="boss"), 422)
    error(api.get("/instances?org_unit=NOPE", as_="boss"), 422)


def test_other_stores_instances_are_404_not_403(api):
    inst = api.submitted()
    for path in (f"/instances/{inst['id']}", f"/instances/{inst['id']}/history"):
        assert api.get(path, as_="a2").status_code == 404
        assert api.get(path, as_="sm1").status_code == 200
    r = error(api.post(f"/instances/{inst['id']}/actions/approve", as_="sm2", json={}), 404, "unknown_instance")
    assert "sm2" not in r["message"]
    error(api.get("/instances/999999", as_="sm1"), 404)


# ---- actions: errors ---------------------------------------------------------------------------------------

def test_action_errors(api):
    inst = api.submitted()
    iid = inst["id"]
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="dep1", json={}), 403, "not_permitted")
    assert r["details"]["reason"] == "role_or_scope"
    r = error(api.post(f"/instances/{iid}/actions/submit", as_="a1", json={}), 409, "not_available")
    assert r["details"] == {**r["details"], "state": "store_review", "version": 2}
    r = error(api.post(f"/instances/{iid}/actions/reject", as_="sm1", json={}), 422, "invalid_payload")
    assert "comment" in r["errors"]
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={"data": {"x": 1}}), 422)
    assert r["errors"] == {"x": ["Unknown field."]}
    r = error(api.post("/instances", as_="a1", json={"workflow": "discount_request", "org_unit": "S1",
                                                      "data": {**REQUEST, "amount": "-1"}}), 422)
    assert "amount" in r["errors"]
    error(api.post("/instances", as_="a1", json={"org_unit": "S1"}), 422)
    r = error(api.post("/instances", as_="sm2", json={"workflow": "discount_request", "org_unit": "S1",
                                                       "data": REQUEST}), 403)
    error(api.post("/instances", as_="a1", json={"workflow": "nope", "org_unit": "S1", "data": {}}), 404)
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", data="{not json",
                       headers={"Content-Type": "application/json"}), 400, "malformed_json")
    error(api.call("PUT", f"/instances/{iid}", as_="sm1"), 405)
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    assert events == 2  # nothing written by any failure


def test_segregation_of_duties_reason(api):
    inst = api.submitted(as_="sm1asst")
    r = error(api.post(f"/instances/{inst['id']}/actions/approve", as_="sm1asst", json={}), 403)
    assert r["details"]["reason"] == "segregation_of_duties"


def test_if_match(api):
    iid = api.submitted()["id"]
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={}, headers={"If-Match": '"1"'}), 412,
              "precondition_failed")
    assert r["details"]["version"] == 2 and r["details"]["state"] == "store_review"
    error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={}, headers={"If-Match": "abc"}), 400)
    r = api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={}, headers={"If-Match": 'W/"2"'})
    assert r.status_code == 200 and r.json["version"] == 3


def test_idempotency_key(api):
    iid = api.submitted()["id"]
    key = {"Idempotency-Key": "approve-1"}
    first = api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={"comment": "ok"}, headers=key)
    assert first.status_code == 200
    again = api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={"comment": "ok"}, headers=key)
    assert again.status_code == 200 and again.json == first.json
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 3
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={"comment": "changed"}, headers=key),
              422, "idempotency_key_reused")
    assert "Idempotency-Key" in r["errors"]
    # keys are per user; an error response is remembered too
    other = api.post(f"/instances/{iid}/actions/approve", as_="sm1asst", json={"comment": "ok"}, headers=key)
    assert other.status_code == 409
    assert api.post(f"/instances/{iid}/actions/approve", as_="sm1asst", json={"comment": "ok"},
                    headers=key).json == other.json
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 2


def test_version_conflict_without_if_match_is_409(api, monkeypatch):
    import engine
    from engine.errors import VersionConflict

    iid = api.submitted()["id"]

    def conflict(*a, **kw):
        raise VersionConflict("changed", state="store_review", version=3)

    monkeypatch.setattr(engine, "fire", conflict)
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={}), 409, "version_conflict")
    assert r["details"]["version"] == 3

    def stale(*a, **kw):  # as write_transaction reports a lost optimistic lock: no state, no version
        raise VersionConflict("the instance was changed by someone else; reload and try again")

    monkeypatch.setattr(engine, "fire", stale)
    r = error(api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={}), 409, "version_conflict")
    assert (r["details"]["state"], r["details"]["version"]) == ("store_review", 2)


# ---- errors everywhere -------------------------------------------------------------------------------------

def test_errors_are_json_in_the_callers_language(api, people):
    r = error(api.get("/no/such/thing", as_="a1"), 404)
    assert r["message"] == "找不到该资源。"
    r = error(api.get("/no/such/thing", as_="a1", headers={"Accept-Language": "en-US,en;q=0.9"}), 404)
    assert r["message"] == "Not found."
    # user "south" has locale en: no Accept-Language → English
    r = error(api.get("/instances/424242", as_="south"), 404)
    assert r["message"] == "no instance 424242"
    r = error(api.get("/instances/424242", as_="south", headers={"Accept-Language": "zh-CN"}), 404)
    assert r["message"] == "找不到该流程实例。"
    error(api.delete("/workflows", as_="a1"), 405)


def test_unexpected_errors_are_a_json_500_without_a_trace(api, monkeypatch):
    import engine

    def boom(*a, **kw):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engine, "inbox", boom)
    r = error(api.get("/tasks", as_="a1"), 500, "server_error")
    assert "secret" not in r["message"] and "Traceback" not in str(r)


def test_rate_limit(api, app, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", 3)
    from engine import queue

    queue.current().connection.flushdb()
    for _ in range(3):
        assert api.get("/me", as_="a3").status_code == 200
    r = error(api.get("/me", as_="a3"), 429, "rate_limited")
    assert r and api.get("/me", as_="a3").headers.get("Retry-After")
    queue.current().connection.flushdb()


def test_the_ui_keeps_html_errors(api):
    r = api.client.get("/no-such-page")
    assert r.status_code == 404 and not r.is_json


def test_idempotent_start(api):
    body = {"workflow": "discount_request", "org_unit": "S1", "data": REQUEST}
    first = api.post("/instances", as_="a1", json=body, headers={"Idempotency-Key": "start-1"})
    again = api.post("/instances", as_="a1", json=body, headers={"Idempotency-Key": "start-1"})
    assert first.status_code == again.status_code == 201 and first.json == again.json
    assert len(api.get("/instances", as_="a1").json["items"]) == 1
    error(api.post("/instances", as_="a1", json={**body, "comment": "x"}, headers={"Idempotency-Key": "start-1"}),
          422, "idempotency_key_reused")
    r = error(api.post("/instances", as_="sm2", json=body, headers={"Idempotency-Key": "start-1"}), 403)
    assert r["details"]["reason"] == "role_or_scope"
    error(api.post("/instances", as_="a1", json=body, headers={"Idempotency-Key": "x" * 300}), 422)


def test_history_shows_mail_that_could_not_be_delivered(api, clock):
    from engine.models import Notification

    inst = api.submitted()
    n = db.session.scalars(sa.select(Notification).where(Notification.instance_id == inst["id"])).first()
    n.status, n.attempts, n.last_error = "failed", 5, "550 no such mailbox"
    db.session.commit()
    history = api.get(f"/instances/{inst['id']}/history", as_="a1").json
    failed = [h for h in history if h["kind"] == "mail_failed"]
    assert len(failed) == 1 and "550 no such mailbox" in failed[0]["detail"]


def test_json_keeps_chinese_readable(api):
    r = api.get("/instances/999", as_="a1")
    assert "找不到" in r.get_data(as_text=True)


def test_concurrent_actions_one_wins_the_other_gets_409(api, app):
    import threading

    iid = api.submitted()["id"]
    tokens = {login: api.token(login) for login in ("sm1", "sm1asst")}
    barrier = threading.Barrier(2)
    results = {}

    def act(login):
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/instances/{iid}/actions/approve", json={},
                        headers={"Authorization": f"Bearer {tokens[login]}"})
        results[login] = (r.status_code, r.get_json())

    threads = [threading.Thread(target=act, args=(login,)) for login in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(code for code, _ in results.values())
    assert statuses == [200, 409], results
    loser = next(body for code, body in results.values() if code == 409)
    assert (loser["details"]["state"], loser["details"]["version"]) == ("approved", 3), loser
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 3


def test_instance_diagram_and_workflow_versions(api):
    inst = api.submitted()
    d = api.get(f"/instances/{inst['id']}/diagram", as_="sm1").json
    assert d["name"] == "discount_request" and "store_review" in d["mermaid"]
    error(api.get(f"/instances/{inst['id']}/diagram", as_="a2"), 404)
    assert api.get("/workflows/discount_request?version=1", as_="a1").json["version"] == 1
    error(api.get("/workflows/discount_request?version=99", as_="a1"), 404)
    error(api.get("/workflows/discount_request?version=x", as_="a1"), 422)


def test_workflow_diagram_of_a_chosen_version(api):
    for version in (1, 2):  # (a name of its own: the registry outlives the test)
        registry.register(dataclasses.replace(definitions.versioned(version, "完成"), name="test_diagram_versions"))
    old = api.get("/workflows/test_diagram_versions/diagram?version=1", as_="a1").json
    new = api.get("/workflows/test_diagram_versions/diagram", as_="a1").json
    assert (old["version"], new["version"]) == (1, 2)
    assert "review" not in old["mermaid"] and "review" in new["mermaid"]  # v2 added the review step
    error(api.get("/workflows/test_diagram_versions/diagram?version=9", as_="a1"), 404)
    error(api.get("/workflows/test_diagram_versions/diagram?version=x", as_="a1"), 422)


# ---- the shift handover through the API: the till's figures, the countersigner's facts, the signature window --

HANDOVER_AT = "2026-11-02T10:15:00+08:00"  # the clock is at 10:00: signatures are open


def test_the_till_posts_expected_figures_and_the_countersigner_sees_the_sheet(api):
    inst = api.start("sm1", data={"handover_at": HANDOVER_AT}, workflow="shift_handover")
    till = {"expected": {"cash": "5000.00", "receipts_total": "100.00",
                         "goods": [{"sku": "A100", "name": "羊毛衫", "expected": 3}]}}
    error(api.post(f"/instances/{inst['id']}/expected", as_="sm1", json=till), 403)  # a counter: not theirs
    bad = api.post(f"/instances/{inst['id']}/expected", as_="admin", json={"expected": {"cash": "-1"}})
    assert "expected" in error(bad, 422)["errors"]
    r = api.post(f"/instances/{inst['id']}/expected", as_="admin", json=till)
    assert r.status_code == 200 and r.json["data"]["expected"]["source"] == "system"
    counts = {"counts": {"cash_counted": "4990.00", "goods": [{"sku": "A100", "counted": 3}], "notes": "少十元"}}
    r = api.post(f"/instances/{inst['id']}/actions/record_counts", as_="a1", json={"data": counts})
    assert r.status_code == 200
    api.post(f"/instances/{inst['id']}/actions/sign_out", as_="sm1", json={})
    r = api.post(f"/instances/{inst['id']}/actions/sign_in", as_="dep1", json={})
    assert r.json["state"] == "countersign"
    page = api.get(f"/instances/{inst['id']}", as_="sm1asst").json
    facts = {f["label"]["en"]: f["value"] for f in page["step_facts"]}
    assert facts["Notes"] == "少十元" and facts["Cash expected"] == "5000.00" and facts["Cash counted"] == "4990.00"
    assert facts["Expected figures"]["en"] == "from the till/ERP"
    error(api.post(f"/instances/{inst['id']}/expected", as_="admin", json=till), 409)  # moved on


def test_signing_before_the_window_is_a_409_saying_from_when(api):
    inst = api.start("sm1", data={"handover_at": "2026-11-03T14:00:00+08:00", "counts": {
        "cash_expected": "1.00", "cash_counted": "1.00", "full_count": True,
        "goods": [{"sku": "A100", "expected": 1, "counted": 1}]}}, workflow="shift_handover")
    body = error(api.post(f"/instances/{inst['id']}/actions/sign_out", as_="sm1", json={}), 409)
    assert "2026-11-03 13:30" in body["message"]
