"""POST /instances/{id}/actions/{trigger} checks visibility only when the action is refused (one check fewer per
approval). These pin the behaviour that must not change: a stranger gets a 404 for every kind of refusal, in
the same shape as for an instance that does not exist, nothing is written, and whoever may act (by role, as
creator, on behalf of someone out of office) gets the instance back."""
from datetime import timedelta

import sqlalchemy as sa

from engine import clock, org
from engine.db import db
from engine.models import AuditEvent
from tests.api_fixtures import api_fixture  # noqa: F401


def events() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def not_found(r) -> dict:
    assert r.status_code == 404, (r.status_code, r.get_data(as_text=True))
    assert r.json["error"] == "unknown_instance", r.json
    return r.json


def test_strangers_get_404_for_every_refusal_and_nothing_is_written(api):
    inst = api.submitted()
    iid, before = inst["id"], events()
    missing = not_found(api.post("/instances/999999/actions/approve", as_="sm2", json={}))
    refusals = [
        api.post(f"/instances/{iid}/actions/approve", as_="sm2", json={}),  # no role here (would be 403)
        api.post(f"/instances/{iid}/actions/submit", as_="sm2", json={}),  # not available now (409)
        api.post(f"/instances/{iid}/actions/nope", as_="sm2", json={}),  # no such trigger
        api.post(f"/instances/{iid}/actions/approve", as_="sm2", json={"data": {"x": 1}}),  # bad payload (422)
        api.post(f"/instances/{iid}/actions/approve", as_="sm2", json={}, headers={"If-Match": "1"}),  # stale (412)
        api.post(f"/instances/{iid}/actions/approve", as_="a2", json={}, headers={"Idempotency-Key": "k1"}),
    ]
    for r in refusals:  # word for word what a missing instance gets: nothing tells that it exists
        assert not_found(r)["message"] == missing["message"].replace("999999", str(iid))
    assert events() == before
    assert api.get(f"/instances/{iid}", as_="sm1").json["version"] == inst["version"]


def test_those_who_may_see_it_keep_their_errors(api):
    inst = api.submitted()
    iid = inst["id"]
    assert api.post(f"/instances/{iid}/actions/approve", as_="dep1", json={}).status_code == 403
    assert api.post(f"/instances/{iid}/actions/submit", as_="a1", json={}).status_code == 409
    assert api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={"data": {"x": 1}}).status_code == 422
    assert api.post(f"/instances/{iid}/actions/approve", as_="sm1", json={}, headers={"If-Match": "1"}).status_code \
        == 412


def test_whoever_may_act_gets_the_instance_back(api, people):
    inst = api.start()  # the creator acts on their own draft
    r = api.post(f"/instances/{inst['id']}/actions/submit", as_="a1", json={})
    assert r.status_code == 200 and r.json["state"] == "store_review" and r.json["version"] == 2
    assert {a["trigger"] for a in r.json["allowed_actions"]} == {"withdraw"}

    # The store manager is away; their stand-in from another store acts on their behalf.
    now = clock.now()
    org.delegate(people["sm1"], people["sm2"], now - timedelta(hours=1), now + timedelta(days=1))
    db.session.commit()
    r = api.post(f"/instances/{inst['id']}/actions/approve", as_="sm2", json={})
    assert r.status_code == 200 and r.json["id"] == inst["id"] and r.json["version"] == 3, r.json
    assert r.json["state"] != "store_review"
