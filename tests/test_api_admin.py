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


def _admin_at(people, login, code):
    """A new person who administers `code` (and holds nothing else)."""
    from engine import org
    from engine.db import db

    people[login] = org.add_user(login, login, f"{login}@example.com", "pw-" + login, [("admin", code)])
    db.session.commit()


def test_only_an_admin_creates_people_even_without_roles(api, people):
    body = {"login": "sneaky", "name": "x", "email": "sneaky@example.com", "password": "long-enough", "roles": []}
    for login in ("a1", "sm1", "boss", "east"):
        r = error(api.post("/users", as_=login, json=body), 403, "not_permitted")
        assert r["details"]["reason"] == "admin_only"
    error(api.post("/tokens", json={"login": "sneaky", "password": "long-enough"}), 401)  # no such account
    assert "sneaky" not in [u["login"] for u in api.get("/users", as_="admin").json]


def test_a_person_without_roles_belongs_to_the_admin_who_created_them(api, people):
    from engine import org
    from engine.db import db

    _admin_at(people, "eadmin", "EAST")
    _admin_at(people, "sadmin", "SOUTH")
    org.add_user("legacy", "Legacy", "legacy@example.com", "pw")  # role-less, from before: the company's
    db.session.commit()
    body = {"login": "newbie", "name": "新人", "email": "newbie@example.com", "password": "long-enough"}
    assert api.post("/users", as_="eadmin", json=body).status_code == 201
    seen = {who: {u["login"] for u in api.get("/users", as_=who).json} for who in ("eadmin", "sadmin", "admin")}
    assert "newbie" in seen["eadmin"] and "newbie" in seen["admin"] and "newbie" not in seen["sadmin"]
    assert "legacy" in seen["admin"] and not {"legacy"} & (seen["eadmin"] | seen["sadmin"])
    error(api.patch("/users/newbie", as_="sadmin", json={"password": "taken-over!"}), 404)
    error(api.post("/users/newbie/roles", as_="sadmin", json={"role": "assistant", "org_unit": "S3"}), 404)
    error(api.patch("/users/legacy", as_="eadmin", json={"password": "taken-over!"}), 404)
    assert api.post("/users/newbie/roles", as_="eadmin", json={"role": "assistant", "org_unit": "S1"}).status_code \
        == 201


def test_a_store_admin_cannot_take_over_authority_lent_from_outside(api, people, clock):
    """admin@S1 may not reset (nor otherwise manage) sm1 while sm1 holds the HQ regional manager's delegation, nor
    someone who lends their authority to a person outside S1."""
    _admin_at(people, "s1admin", "S1")
    lent = {"from_user": "boss", "to_user": "sm1", "starts_at": "2026-11-02T00:00:00+00:00",
            "ends_at": "2026-11-09T00:00:00+00:00"}
    d = api.post("/delegations", as_="admin", json=lent).json
    tries = [
        api.patch("/users/sm1", as_="s1admin", json={"password": "taken-over!"}),
        api.patch("/users/sm1", as_="s1admin", json={"email": "me@example.com"}),
        api.delete("/users/sm1", as_="s1admin"),
        api.post("/users/sm1/roles", as_="s1admin", json={"role": "assistant", "org_unit": "S1"}),
        api.post("/delegations", as_="s1admin", json={**lent, "from_user": "dep1"}),  # to sm1
        api.post("/delegations", as_="s1admin", json={**lent, "from_user": "sm1", "to_user": "dep1"}),
    ]
    sm1_roles = api.get("/users/sm1/roles", as_="s1admin").json
    tries.append(api.delete(f"/users/sm1/roles/{sm1_roles[0]['id']}", as_="s1admin"))
    for r in tries:
        assert error(r, 403, "not_permitted")["details"]["reason"] == "admin_scope"
    error(api.delete(f"/delegations/{d['id']}", as_="s1admin"), 404)  # boss's delegation: not theirs to see
    assert api.post("/tokens", json={"login": "sm1", "password": "taken-over!"}).status_code == 401
    # giving: dep1 lends to the HQ accountant
    given = api.post("/delegations", as_="admin", json={**lent, "from_user": "dep1", "to_user": "acct"}).json
    error(api.patch("/users/dep1", as_="s1admin", json={"password": "taken-over!"}), 403)
    error(api.delete(f"/delegations/{given['id']}", as_="s1admin"), 403)
    # inside S1 only: fine
    assert api.patch("/users/a1", as_="s1admin", json={"name": "店员甲"}).status_code == 200
    # once the delegation has ended it lends nothing
    clock.advance(days=8)
    assert api.patch("/users/sm1", as_="s1admin", json={"name": "一店长"}).status_code == 200


BAD_LOGINS = ["ZHENG.YEWU", "Sm1", "wu.zhugu\u0430n", "a/../b", "<b>x</b> y", "", ".hidden", "a" * 65, "li lei"]
BAD_EMAILS = ["", "not-an-email", "x@example.com\r\nBcc: y@evil.example", "x@example.com, y@evil.example"]
BAD_NAMES = ["杭州\r\nBcc: x@evil.example", "tab\there", "bell\x07", "   "]


def test_people_and_units_are_validated_alike(api, people):
    body = {"login": "fine", "name": "好名字", "email": "fine@example.com", "password": "long-enough"}
    cases = ([("login", v) for v in BAD_LOGINS] + [("email", v) for v in BAD_EMAILS]
             + [("name", v) for v in BAD_NAMES])
    for field, value in cases:
        r = error(api.post("/users", as_="admin", json={**body, field: value}), 422)
        assert field in str(r), (field, value, r)
    for field, value in [("email", v) for v in BAD_EMAILS] + [("name", v) for v in BAD_NAMES]:
        error(api.patch("/users/a1", as_="admin", json={field: value}), 422)
    for value in BAD_NAMES:
        error(api.patch("/org-units/S1", as_="admin", json={"name": value}), 422)
        error(api.post("/org-units", as_="admin", json={"code": "S8", "name": value, "kind": "store",
                                                         "parent": "EAST"}), 422)
    logins = {u["login"] for u in api.get("/users", as_="admin").json}
    assert "fine" not in logins and api.get("/org-units/S1", as_="admin").json["name"] == "unit S1"
    assert api.get("/users/a1", as_="admin").json["email"] == "a1@example.com"
    assert api.post("/users", as_="admin", json=body).status_code == 201


def test_logins_are_unique_whatever_the_case(api, people):
    import pytest
    import sqlalchemy as sa

    from engine.db import db

    db.session.execute(sa.text("INSERT INTO users (login, name, email, locale, password_hash, active) "
                               "VALUES ('Li', 'Li', 'li@example.com', 'zh', '', :t)"), {"t": True})
    db.session.commit()  # an older mixed-case login, from before the rule
    r = error(api.post("/users", as_="admin", json={"login": "li", "name": "x", "email": "x@example.com",
                                                     "password": "long-enough"}), 422)
    assert "already exists" in str(r)
    with pytest.raises(sa.exc.IntegrityError):  # and the database says the same to anyone writing behind us
        db.session.execute(sa.text("INSERT INTO users (login, name, email, locale, password_hash, active) "
                                   "VALUES ('LI', 'x', 'x@example.com', 'zh', '', :t)"), {"t": True})
    db.session.rollback()


def test_a_time_of_day_with_an_offset_is_refused(api, people):
    for body in ({"closes_at": "18:00:00Z"}, {"opens_at": "08:00:00+08:00"}):
        r = error(api.patch("/org-units/S2", as_="admin", json=body), 422)
        assert next(iter(body)) in str(r)
    r = error(api.post("/org-units", as_="admin", json={"code": "S8", "name": "x", "kind": "store", "parent": "EAST",
                                                         "opens_at": "10:00:00+08:00"}), 422)
    assert "opens_at" in str(r)
    error(api.get("/org-units/S8", as_="admin"), 404)
    unit = api.get("/org-units/S2", as_="admin").json
    assert (unit["opens_at"], unit["closes_at"]) == ("09:00:00", "21:00:00")
