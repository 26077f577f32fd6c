"""Segregation of duties through every path a person has: the UI's action form, the inbox's bulk action, the
API, acting as someone's delegate (either way round), and an administrator's powers over roles and delegations.
A submitter never approves their own request; a first approver never gives the second approval; the two
handover signers are different people, and neither countersigns. Each refusal writes nothing, and afterwards
a legitimate person succeeds (so each scenario can fail).

Extends tests/test_api_core.py::test_segregation_of_duties_reason (one API case) and
tests/test_wf_shift_handover.py (engine-level signing rules) to every path."""
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

import engine
from engine import org
from engine.db import db
from engine.models import AuditEvent, Instance
from tests.api_fixtures import Api
from tests.security_fixtures import fingerprint
from tests.ui_fixtures import Session, _catalogues, fresh_limits  # noqa: F401

HANDOVER = {"handover_at": "2026-11-02T10:15:00+08:00",  # the clock is at 10:00: signatures are open
            "counts": {"cash_expected": "5000.00", "cash_counted": "5000.00", "receipts_total": "100.00",
                       "goods": [{"sku": "A100", "name": "羊毛衫", "expected": 3, "counted": 3}], "full_count": False}}
SHORT = {**HANDOVER, "counts": {**HANDOVER["counts"], "cash_counted": "4990.00"}}  # 10 yuan short: countersign
TALLY = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nsegregation of duties: {TALLY['refused']} forbidden attempts refused with nothing written "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(TALLY.items()) if k.startswith('via'))}); "
          f"{TALLY['allowed']} legitimate follow-ups succeeded; forbidden attempts that succeeded: 0")


class Paths:
    """Fire one trigger as one person through each path; every attempt here must be refused."""

    def __init__(self, app, people):
        self.app, self.api = app, Api(app.test_client(), people)

    def refused(self, login, inst_id, trigger, comment=None, paths=("ui", "bulk", "api"), on_behalf=False):
        for path in paths:
            before = fingerprint()
            if path == "ui":
                r = Session(self.app, login).post(f"/instances/{inst_id}/actions/{trigger}", {"comment": comment or ""})
                ok = r.status_code == 403 and "同一人不能" in r.get_data(as_text=True)
            elif path == "bulk":
                r = Session(self.app, login).post("/inbox/bulk", {"ids": [str(inst_id)], "trigger": trigger,
                                                                  "comment": comment or ""})
                ok = r.status_code == 200 and 'class="ok"' not in r.get_data(as_text=True)
            else:
                r = self.api.post(f"/instances/{inst_id}/actions/{trigger}", as_=login, json={"comment": comment})
                ok = r.status_code == 403 and r.json["details"]["reason"] == "segregation_of_duties"
            assert ok, (path, login, trigger, r.status_code, r.get_data(as_text=True)[:500])
            assert fingerprint() == before, f"{path}: refused, but something was written"
            TALLY["refused"] += 1
            TALLY[f"via {path}" + (" as a delegate" if on_behalf else "")] += 1

    def allowed(self, login, inst_id, trigger, comment=None) -> dict:
        r = self.api.post(f"/instances/{inst_id}/actions/{trigger}", as_=login, json={"comment": comment})
        assert r.status_code == 200, r.json
        TALLY["allowed"] += 1
        return r.json


@pytest.fixture
def paths(app, people, clock, fresh_limits, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "UI_LOGIN_ADDRESS_LIMIT", 1000)
    for login, roles in {"repmgr": [("rep", "T1"), ("sales_manager", "T1")],
                         "repadmin": [("rep", "T1"), ("admin", "HQ")],
                         "mgrboth": [("sales_manager", "T1"), ("regional_manager", "EAST")]}.items():
        people[login] = org.add_user(login, login, f"{login}@example.com", "pw-" + login, roles)
    db.session.commit()
    return Paths(app, people)


def away(clock, people, who, to):
    """`who` is out of office this week; `to` stands in (acts in all of `who`'s roles, on their behalf)."""
    org.delegate(people[who], people[to], clock.now() - timedelta(hours=1), clock.now() + timedelta(days=7))
    db.session.commit()


def plan(people, login, budget="3000"):
    inst = engine.start("monthly_plan", "T1", people[login], {"month": "2026-12", "budget": budget})
    return engine.fire(inst.id, "submit", people[login]).id


def state(inst_id):
    db.session.rollback()
    return db.session.get(Instance, inst_id).state


# ---- a submitter never approves their own request -------------------------------------------------------

def test_own_plan_with_an_own_manager_role(paths, people):
    iid = plan(people, "repmgr")  # a manager who also sells
    paths.refused("repmgr", iid, "approve")
    paths.refused("repmgr", iid, "return", comment="改一下", paths=("api",))
    assert paths.allowed("salesmgr", iid, "approve")["state"] == "approved"


def test_own_discount_request_with_an_own_store_manager_role(paths, people):
    iid = paths.api.submitted(as_="sm1asst")["id"]
    paths.refused("sm1asst", iid, "approve")
    assert paths.allowed("sm1", iid, "approve")["state"] == "approved"


def test_submitter_standing_in_for_their_manager(paths, people, clock):
    away(clock, people, "salesmgr", "rep1")  # the rep holds the manager's authority this week
    iid = plan(people, "rep1")
    paths.refused("rep1", iid, "approve", on_behalf=True)
    assert paths.allowed("east", iid, "return", comment="经理休假，区域经理代审")["state"] == "draft"


def test_creators_stand_in_using_the_creators_manager_role(paths, people, clock):
    iid = plan(people, "repmgr")
    away(clock, people, "repmgr", "rep1")  # rep1 acts for repmgr, with repmgr's sales_manager role
    paths.refused("rep1", iid, "approve", on_behalf=True)
    assert paths.allowed("salesmgr", iid, "approve")["state"] == "approved"


def test_a_delegate_who_submitted_for_the_rep_may_not_approve_it(paths, people, clock):
    away(clock, people, "rep1", "salesmgr")  # the manager drafts and submits the plan for the absent rep …
    started = paths.api.start(as_="salesmgr", unit="T1", workflow="monthly_plan", data={"month": "2026-12"})
    assert started["created_by"]["login"] == "rep1"  # (it is the rep's plan)
    paths.allowed("salesmgr", started["id"], "submit")
    paths.refused("salesmgr", started["id"], "approve", on_behalf=True)  # … and may not approve it too
    assert paths.allowed("mgrboth", started["id"], "approve")["state"] == "approved"  # another manager


def test_an_administrator_cannot_grant_their_way_around_it(paths, people):
    iid = plan(people, "repadmin")
    assert paths.api.post("/users/repadmin/roles", as_="repadmin",
                          json={"role": "sales_manager", "org_unit": "T1"}).status_code == 201
    paths.refused("repadmin", iid, "approve")
    body = {"from_user": "salesmgr", "to_user": "repadmin", "starts_at": "2026-11-01T00:00:00+00:00",
            "ends_at": "2026-11-09T00:00:00+00:00"}
    assert paths.api.post("/delegations", as_="repadmin", json=body).status_code == 201
    paths.refused("repadmin", iid, "approve", paths=("api",), on_behalf=True)
    assert paths.allowed("salesmgr", iid, "approve")["state"] == "approved"


def test_the_first_approver_does_not_give_the_second_approval(paths, people):
    iid = plan(people, "rep1", budget="80000")  # above the threshold: the region approves too
    assert paths.allowed("mgrboth", iid, "approve")["state"] == "regional_review"
    paths.refused("mgrboth", iid, "approve")
    assert paths.allowed("east", iid, "approve")["state"] == "approved"


# ---- the two handover signers are different people ------------------------------------------------------

def test_one_person_in_two_roles_signs_one_side_only(paths, people):
    iid = engine.start("shift_handover", "S1", people["sm1asst"], HANDOVER).id
    paths.allowed("sm1asst", iid, "sign_out")  # as store manager …
    paths.refused("sm1asst", iid, "sign_in", paths=("ui", "api"))  # … not again as the assistant
    assert paths.allowed("a1", iid, "sign_in")["state"] == "completed"


def test_a_stand_in_and_the_person_they_stand_in_for_sign_one_side_between_them(paths, people, clock):
    away(clock, people, "dep1", "a1")
    iid = engine.start("shift_handover", "S1", people["sm1"], HANDOVER).id
    signed = paths.allowed("a1", iid, "sign_out")  # an assistant signs out only as the deputy's stand-in
    assert signed["signatures"][0]["on_behalf_of"]["login"] == "dep1"
    paths.refused("dep1", iid, "sign_in", paths=("ui", "api"))
    paths.refused("a1", iid, "sign_in", paths=("ui", "api"))
    assert paths.allowed("a1b", iid, "sign_in")["state"] == "completed"


def test_a_signer_does_not_countersign_the_discrepancy(paths, people, clock):
    iid = engine.start("shift_handover", "S1", people["sm1"], SHORT).id
    paths.allowed("sm1", iid, "sign_out")
    assert paths.allowed("dep1", iid, "sign_in")["state"] == "countersign"
    paths.refused("sm1", iid, "countersign", comment="少找零", paths=("ui", "api"))
    away(clock, people, "sm1asst", "dep1")  # the other signer, standing in for the store's other manager
    paths.refused("dep1", iid, "countersign", comment="少找零", paths=("api",), on_behalf=True)
    assert paths.allowed("sm1asst", iid, "countersign", comment="找零差错，已登记")["state"] == "completed"
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == iid))
    assert events == 5  # start, two signatures, signed, countersign: no refused attempt left a trace
    assert state(iid) == "completed"
