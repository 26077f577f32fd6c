"""Credentials that end and sign-in limits that cannot lock out the real user (issue 12, items 4, 5, 6, 17):
safe redirects after sign-in, API tokens that expire and are revoked with a password change or reset and a
deactivation, "log out everywhere" for tokens, sign-out that ends the session on the server, a growing delay per
(login, address) with a per-address cap, and ALLOW_TIME_TRAVEL for staging only."""

import pytest

import config
from tests.api_fixtures import Api
from tests.ui_fixtures import Session, fresh_limits  # noqa: F401

ATTACKER, OFFICE, ELSEWHERE = "203.0.113.66", "198.51.100.10", "198.51.100.20"


def _from(session: Session, address: str) -> Session:
    session.client.environ_base["REMOTE_ADDR"] = address
    return session


def _token(client, login, address="127.0.0.1", password=None):
    return client.post("/api/v1/tokens", json={"login": login, "password": password or "pw-" + login},
                       environ_base={"REMOTE_ADDR": address})


def _me(client, token):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


# ---- item 4: where sign-in sends you -----------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example", "%09//evil.example", "/inbox%0d%0aX-Evil:%201",
    "//evil.example/x", "/%5Cevil.example", "https://evil.example/", "javascript:alert(1)", "%20//evil.example",
    "evil.example", "/%7F/evil.example"])
def test_sign_in_never_redirects_off_the_site(app, people, fresh_limits, target):  # noqa: F811
    s = Session(app)
    r = s.client.post(f"/login?next={target}", data={"login": "rep1", "password": "pw-rep1", "csrf_token": s.token})
    assert r.status_code == 302 and r.headers["Location"] == "/inbox", (target, r.headers.get("Location"))
    assert s.get("/inbox").status_code == 200  # signed in all the same


def test_sign_in_keeps_a_path_on_the_site(app, people, fresh_limits):  # noqa: F811
    s = Session(app)
    r = s.client.post("/login?next=/reports%3Fmonth%3D2026-11", data={"login": "rep1", "password": "pw-rep1",
                                                                       "csrf_token": s.token})
    assert r.headers["Location"] == "/reports?month=2026-11"


# ---- item 5: credentials that end --------------------------------------------------------------------------

def test_api_tokens_expire(app, people, clock, monkeypatch):
    client = app.test_client()
    r = _token(client, "a1")
    assert r.status_code == 201 and r.json["expires_at"] == "2026-12-02T02:00:00+00:00"  # 30 days by default
    token = r.json["token"]
    clock.advance(days=30, seconds=-1)
    assert _me(client, token) == 200
    clock.advance(seconds=1)
    assert _me(client, token) == 401
    monkeypatch.setitem(app.config, "API_TOKEN_TTL", 3600)
    short = _token(client, "a1")
    assert short.json["expires_at"] == "2026-12-02T03:00:00+00:00"
    clock.advance(hours=1)
    assert _me(client, short.json["token"]) == 401


def test_a_password_change_ends_every_token_and_every_other_session(app, people, fresh_limits):  # noqa: F811
    client = app.test_client()
    tokens = [_token(client, "rep1").json["token"] for _ in range(2)]
    here, there = Session(app, "rep1"), Session(app, "rep1")
    r = here.post("/account", {"form": "password", "pw-current": "pw-rep1", "pw-new": "longenough1",
                               "pw-repeat": "longenough1"})
    assert r.status_code == 302
    assert [_me(client, t) for t in tokens] == [401, 401]
    assert there.get("/inbox").status_code == 302 and here.get("/inbox").status_code == 200
    assert _me(client, _token(client, "rep1", password="longenough1").json["token"]) == 200


def test_an_admin_reset_and_a_deactivation_end_tokens_and_sessions_for_good(app, people, fresh_limits):  # noqa: F811
    admin, client = Api(app.test_client(), people), app.test_client()
    before_reset, session = _token(client, "a1").json["token"], Session(app, "a1")
    assert admin.patch("/users/a1", as_="admin", json={"password": "reset-by-admin"}).status_code == 200
    assert _me(client, before_reset) == 401 and session.get("/inbox").status_code == 302

    token, session = _token(client, "a2").json["token"], Session(app, "a2")
    assert admin.delete("/users/a2", as_="admin").status_code == 200
    assert admin.patch("/users/a2", as_="admin", json={"active": True}).status_code == 200
    assert _me(client, token) == 401, "reactivation revived a token"
    assert session.get("/inbox").status_code == 302, "reactivation revived a session"
    assert _me(client, _token(client, "a2").json["token"]) == 200  # signing in again works
    assert admin.get("/me", as_="admin").status_code == 200  # the admin's own token is untouched


def test_delete_tokens_revokes_all_of_mine_and_nobody_elses(app, people):
    client = app.test_client()
    mine = [_token(client, "sm1").json["token"] for _ in range(3)]
    theirs = _token(client, "sm2").json["token"]
    r = client.delete("/api/v1/tokens", headers={"Authorization": f"Bearer {mine[0]}"})
    assert r.status_code == 204
    assert [_me(client, t) for t in mine] == [401, 401, 401] and _me(client, theirs) == 200
    assert client.delete("/api/v1/tokens").status_code == 401  # needs a token like any call


def test_a_session_cookie_replayed_after_sign_out_does_not_work(app, people, fresh_limits):  # noqa: F811
    s = Session(app, "salesmgr")
    cookie = s.client.get_cookie("session").value
    assert s.post("/logout").status_code == 302 and s.get("/inbox").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    assert replay.get("/inbox").status_code == 302  # to the sign-in page
    assert Session(app, "salesmgr").get("/inbox").status_code == 200  # signing in again works


# ---- item 6: sign-in limits that cannot lock out the real user ---------------------------------------------

def test_an_attacker_cannot_lock_a_manager_out(app, people, clock, fresh_limits):  # noqa: F811
    attacker = app.test_client()
    answers = [_token(attacker, "salesmgr", ATTACKER, password=f"guess{i}").status_code for i in range(40)]
    assert answers[:5] == [401] * 5 and 429 in answers  # the attacker is slowed down …
    page = _from(Session(app), ATTACKER)
    assert page.post("/login", {"login": "salesmgr", "password": "pw-salesmgr"}).status_code == 429  # either door
    # … but the manager, from the office, signs in at both doors with the right password
    office = _from(Session(app), OFFICE)
    assert office.post("/login", {"login": "salesmgr", "password": "pw-salesmgr"}).status_code == 302
    assert office.get("/inbox").status_code == 200
    assert _token(app.test_client(), "salesmgr", OFFICE).status_code == 201
    # a few typos of the manager's own do not lock them out either
    for _ in range(3):
        assert _token(attacker, "salesmgr", ELSEWHERE, password="typo").status_code == 401
    assert _token(attacker, "salesmgr", ELSEWHERE).status_code == 201


def test_failures_grow_the_delay_for_that_login_from_that_address(app, people, clock, fresh_limits):  # noqa: F811
    client = app.test_client()
    for _ in range(5):
        assert _token(client, "rep1", OFFICE, password="bad").status_code == 401
    waits = []
    for _ in range(4):
        r = _token(client, "rep1", OFFICE)  # even the right password waits its turn
        assert r.status_code == 429 and r.json["error"] == "rate_limited"
        waits.append(int(r.headers["Retry-After"]))
        clock.advance(seconds=waits[-1])
        assert _token(client, "rep1", OFFICE, password="bad").status_code == 401
    assert waits == [1, 2, 4, 8]
    r = _from(Session(app), OFFICE).post("/login", {"login": "rep1", "password": "pw-rep1"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "16" and "16" in r.get_data(as_text=True)
    clock.advance(seconds=16)
    assert _token(client, "rep1", OFFICE).status_code == 201  # the wait is over: the right password gets in …
    assert _token(client, "rep1", OFFICE, password="bad").status_code == 401  # … and the count starts afresh
    for _ in range(20):
        clock.advance(hours=1)
        _token(client, "boss", ELSEWHERE, password="bad")
    assert int(_token(client, "boss", ELSEWHERE).headers["Retry-After"]) == 15 * 60  # the delay stops growing


def test_one_address_has_a_cap_over_all_logins(app, people, clock, fresh_limits):  # noqa: F811
    client = app.test_client()
    logins = [p for p in people if p not in ("rep1", "admin")]
    for i in range(20):
        _token(client, logins[i % len(logins)], ATTACKER, password="bad")
    r = _token(client, "rep1", ATTACKER)  # somebody with no failures, from the capped address
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 15 * 60
    assert _token(client, "rep1", OFFICE).status_code == 201  # other addresses are not affected
    clock.advance(minutes=15)
    assert _token(client, "rep1", ATTACKER).status_code == 201


# ---- item 17: ALLOW_TIME_TRAVEL ----------------------------------------------------------------------------

def test_time_travel_is_a_setting_for_staging_and_refused_in_production():
    production = {"SECRET_KEY": "k"}
    assert config.from_env({"SIGNOFF_ENV": "staging", "ALLOW_TIME_TRAVEL": "1", **production}).ALLOW_TIME_TRAVEL
    assert not config.from_env({"SIGNOFF_ENV": "staging", **production}).ALLOW_TIME_TRAVEL
    assert not config.from_env({"SIGNOFF_ENV": "production", **production}).ALLOW_TIME_TRAVEL
    with pytest.raises(RuntimeError, match="ALLOW_TIME_TRAVEL cannot be set in production"):
        config.from_env({"SIGNOFF_ENV": "production", "ALLOW_TIME_TRAVEL": "1", **production})
    assert config.from_env({"ALLOW_TIME_TRAVEL": "1", **production}).ALLOW_TIME_TRAVEL  # development may
    assert config.from_env({"SIGNOFF_ENV": "staging", "API_TOKEN_TTL": "600", **production}).API_TOKEN_TTL == 600
