"""Org and people for administrators: units, users, roles, delegations; and their scope."""
from tests.api_fixtures import REQUEST, api_fixture  # noqa: F401
from tests.test_api_core import error


def test_only_admins(api):
    for path in ("/org-units", "/users", "/delegations", "/users/a1/roles", "/org-units/S1"):
        r = error(api.get(path, as_="boss"), 403, "not_permitted")
        assert r["details"]["reason"] == "admin_only"
    error(api.post("/users", as_="sm1", json={}), 422)  # validation runs first; nothing is created either way


def test_units_crud(api):
    units = api.get("/org-units", as_="admin").json
    assert [u["code"] for u in units][:2] == ["HQ", "EAST"] and len(units) == 7
    r = api.post("/org-units", as_="admin", json={"code": "S9", "name": "九号店", "kind": "store", "parent": "EAST",
                                                   "opens_at": "10:00:00", "closes_at": "22:00:00"})
    assert r.status_code == 201 and r.json["parent"] == "EAST" and r.json["opens_at"] == "10:00:00"
    r = api.patch("/org-units/S9", as_="admin", json={"name": "九号旗舰店", "active": False})
    assert r.json["name"] == "九号旗舰店" and r.json["active"] is False
    error(api.post("/org-units", as_="admin", json={"code": "S9", "name": "x", "kind": "store", "parent": "EAST"}),
          422, "invalid_input")
    error(api.post("/org-units", as_="admin", json={"code": "S8", "name": "x", "kind": "moon", "parent": "EAST"}), 422)
    error(api.post("/org-units", as_="admin", json={"code": "S8", "name": "x", "kind": "store", "parent": "NOPE"}),
          422)
    error(api.post("/org-units", as_="admin", json={"code": "S8", "name": "x", "kind": "store", "parent": "EAST",
                                                     "timezone": "Mars/Base"}), 422)
    error(api.patch("/org-units/S9", as_="admin", json={"opens_at": "23:00:00"}), 422)
    error(api.get("/org-units/NOPE", as_="admin"), 404)
    # a started instance at an inactive unit is refused
    error(api.post("/instances", as_="a1", json={"workflow": "discount_request", "org_unit": "S9", "data": REQUEST}),
          422)


def test_users_roles_and_deactivation(api):
    r = api.post("/users", as_="admin", json={"login": "new1", "name": "新员工", "email": "new1@example.com",
                                               "password": "long-enough", "locale": "en",
                                               "roles": [{"role": "assistant", "org_unit": "S2"}]})
    assert r.status_code == 201 and "password" not in r.json
    roles = api.get("/users/new1/roles", as_="admin").json
    assert [(x["role"], x["org_unit"]) for x in roles] == [("assistant", "S2")]
    r = api.post("/users/new1/roles", as_="admin", json={"role": "deputy_manager", "org_unit": "S2"})
    assert r.status_code == 201
    error(api.post("/users/new1/roles", as_="admin", json={"role": "deputy_manager", "org_unit": "S2"}), 422)
    error(api.post("/users/new1/roles", as_="admin", json={"role": "king", "org_unit": "S2"}), 422)
    assert api.delete(f"/users/new1/roles/{r.json['id']}", as_="admin").status_code == 204
    error(api.delete(f"/users/new1/roles/{r.json['id']}", as_="admin"), 404)
    token = api.post("/tokens", json={"login": "new1", "password": "long-enough"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/me", headers=headers).json["locale"] == "en"
    r = api.patch("/users/new1", as_="admin", json={"name": "王新", "locale": "zh"})
    assert r.json["name"] == "王新" and r.json["locale"] == "zh"
    assert api.delete("/users/new1", as_="admin").json["active"] is False
    error(api.get("/me", headers=headers), 401)
    error(api.post("/users", as_="admin", json={"login": "new1", "name": "x", "email": "x@example.com",
                                                 "password": "long-enough"}), 422)
    error(api.post("/users", as_="admin", json={"login": "x", "name": "x", "email": "not-an-email",
                                                 "password": "long-enough"}), 422)
    error(api.delete("/users/admin", as_="admin"), 422)
    error(api.get("/users/nobody", as_="admin"), 404)
    logins = [u["login"] for u in api.get("/users", as_="admin").json]
    assert "a1" in logins and "boss" in logins


def test_admin_scope_is_their_subtree(api, people):
    from engine import org
    from engine.db import db

    org.grant(people["east"], "admin", "EAST")
    db.session.commit()
    codes = {u["code"] for u in api.get("/org-units", as_="east").json}
    assert codes == {"EAST", "S1", "S2", "T1"}
    error(api.get("/org-units/S3", as_="east"), 404)
    error(api.get("/users/a3", as_="east"), 404)
    error(api.patch("/users/a3", as_="east", json={"name": "x"}), 404)
    error(api.post("/users/a1/roles", as_="east", json={"role": "assistant", "org_unit": "S3"}), 422)
    error(api.post("/org-units", as_="east", json={"code": "X", "name": "x", "kind": "store", "parent": "SOUTH"}), 422)
    assert api.post("/org-units", as_="east", json={"code": "S7", "name": "x", "kind": "store",
                                                     "parent": "EAST"}).status_code == 201


def test_delegations(api, clock):
    body = {"from_user": "sm1", "to_user": "dep1", "starts_at": "2026-11-02T00:00:00+00:00",
            "ends_at": "2026-11-09T00:00:00+00:00"}
    r = api.post("/delegations", as_="admin", json=body)
    assert r.status_code == 201 and r.json["from_user"] == "sm1"
    inst = api.submitted()
    # dep1 now acts for sm1
    assert {a["trigger"] for a in api.get(f"/instances/{inst['id']}", as_="dep1").json["allowed_actions"]} \
        >= {"approve"}
    assert [d["id"] for d in api.get("/delegations", as_="admin").json] == [r.json["id"]]
    error(api.post("/delegations", as_="admin", json={**body, "to_user": "sm1"}), 422)
    error(api.post("/delegations", as_="admin", json={**body, "ends_at": "2026-11-01T00:00:00+00:00"}), 422)
    error(api.post("/delegations", as_="admin", json={**body, "starts_at": "2026-11-02T00:00:00"}), 422)
    error(api.post("/delegations", as_="admin", json={**body, "to_user": "ghost"}), 422)
    assert api.delete(f"/delegations/{r.json['id']}", as_="admin").status_code == 204
    error(api.delete(f"/delegations/{r.json['id']}", as_="admin"), 404)
