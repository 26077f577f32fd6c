"""Web security: CSRF on every UI POST route (generated from the URL map), session cookies and security headers
on every kind of response (HSTS over HTTPS, also behind a proxy with PROXY_HOPS), failed-login limits on both
doors (sign-in page and API tokens, per account and address, and per address; the attack itself:
tests/test_security_credentials.py), scrypt password hashes, API tokens stored only as hashes, and no user
enumeration by answer or by timing.

Builds on tests/test_ui_pages.py (cookie flags over http/https, the sign-in page's limits, 13 CSRF cases) and
tests/test_api_core.py (token hash != token)."""
import hashlib
import importlib
import io
import re
import statistics
import sys
import time
from pathlib import Path

import flask_smorest
import pytest
import rq_dashboard
import sqlalchemy as sa

from engine import org
from engine.db import db
from engine.models import ApiToken
from tests.security_fixtures import PNG, actors_fixture, fingerprint, world_fixture  # noqa: F401
from tests.ui_fixtures import (  # noqa: F401
    Session,
    _catalogues,
    browser_as,
    fresh_limits,
    live_server,
)

ROOT = Path(__file__).resolve().parent.parent
XHR = {"X-Requested-With": "XMLHttpRequest"}

# Every UI POST: who posts it (None: nobody signed in) and a request that would succeed with the right token.
CSRF_POSTS = {
    "ui.login": (None, "/login", lambda w: {"login": "rep1", "password": "pw-rep1"}),
    "ui.logout": ("rep1", "/logout", lambda w: {}),
    "ui.account": ("rep1", "/account", lambda w: {"form": "password", "pw-current": "pw-rep1",
                                                  "pw-new": "long-enough-1", "pw-repeat": "long-enough-1"}),
    "ui.bulk": ("salesmgr", "/inbox/bulk", lambda w: {"ids": [str(w.instances["T1"].key)], "trigger": "approve"}),
    "ui.start": ("rep1", "/start/monthly_plan", lambda w: {"org_unit": "T1", "month": "2027-01", "budget": "1"}),
    "ui.act": ("salesmgr", "/instances/{plan}/actions/approve", lambda w: {}),
    "ui.upload": ("rep1", "/instances/{plan}/attachments", lambda w: {"file": (io.BytesIO(PNG), "x.png")}),
    "ui.add_delegation": ("admin", "/admin/delegations", lambda w: {
        "from_login": "sm1", "to_login": "dep1", "starts_at": "2026-11-03T09:00", "ends_at": "2026-11-05T18:00"}),
    "ui.delete_delegation": ("admin", "/admin/delegations/{delegation}/delete", lambda w: {}),
    "ui.set_calendar_day": ("admin", "/admin/calendar", lambda w: {"day": "2026-11-07", "working": "1"}),
    "ui.confirm_calendar_year": ("admin", "/admin/calendar/confirm", lambda w: {"year": "2029"}),
    "ui.import_calendar_year": ("admin", "/admin/calendar/import", lambda w: {
        "year": "2029", "file": (io.BytesIO(b"2029-01-01,off,New Year\n"), "2029.csv")}),
    "ui.grant_role": ("admin", "/admin/roles", lambda w: {"login": "rep1", "role": "trainer", "org_unit": "EAST"}),
    "ui.revoke_role": ("admin", "/admin/roles/{assignment}/delete", lambda w: {}),
    "ui.create_user": ("admin", "/admin/users", lambda w: {"login": "newbie", "name": "新人", "password": "long-enough",
                                                           "role": "rep", "org_unit": "T1"}),
    "ui.retry_email": ("admin", "/admin/incidents/emails/{email}/retry", lambda w: {}),
    "ui.resolve_email": ("admin", "/admin/incidents/emails/{email}/resolve", lambda w: {}),
    "ui.retry_job": ("admin", "/admin/incidents/jobs/{job}/retry", lambda w: {}),
    "ui.resolve_job": ("admin", "/admin/incidents/jobs/{job}/resolve", lambda w: {}),
}
# rq-dashboard's buttons post by XMLHttpRequest and carry no token of ours: that header is its CSRF defence.
RQ_POSTS = {
    "rq_dashboard.delete_job_view": "/admin/rq/job/{job}/delete",
    "rq_dashboard.requeue_job_view": "/admin/rq/job/{job}/requeue",
    "rq_dashboard.empty_queue": "/admin/rq/queue/signoff/queued/empty",
    "rq_dashboard.compact_queue": "/admin/rq/queue/signoff/compact",
    "rq_dashboard.requeue_all": "/admin/rq/requeue/signoff",
}


def cookie_posts(app) -> set[str]:
    """Every endpoint taking a POST outside the API (the API takes bearer tokens, never cookies)."""
    return {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods and not r.rule.startswith("/api/")}


def _url(template, w) -> str:
    rep1_role = db.session.scalar(sa.select(org.RoleAssignment.id).where(
        org.RoleAssignment.user_id == w.people["rep1"].id))
    return template.format(plan=w.instances["T1"].key, delegation=w.admin_objects["delegation"][0].key,
                           assignment=f"rep1/{rep1_role}", email=w.admin_objects["email"][0].key, job=w.job_id)


def test_every_cookie_post_refuses_a_missing_or_wrong_csrf_token(app, world, actors, rq_queue):
    missing = cookie_posts(app) - set(CSRF_POSTS) - set(RQ_POSTS)
    assert not missing, f"add these POST routes to CSRF_POSTS (who posts, what): {sorted(missing)}"
    other_session = actors.ui("a1").token  # a real token, of somebody else's session
    cases = 0
    for endpoint, (login, template, body) in sorted(CSRF_POSTS.items()):
        s = actors.ui(login) if login else Session(app)
        url = _url(template, world)
        for token in (None, "forged", other_session):
            before = fingerprint(rq_queue)
            r = s.post(url, body(world), csrf=token, content_type="multipart/form-data")
            assert r.status_code == 400, (endpoint, token, r.status_code)
            assert fingerprint(rq_queue) == before, f"{endpoint}: refused, but something was written"
            cases += 1
        signed_in = s.get("/inbox").status_code == 200
        assert signed_in == (login is not None), endpoint  # no sign-in by a forged post, no sign-out either
    admin = actors.ui("admin")
    for endpoint, template in sorted(RQ_POSTS.items()):
        before = fingerprint(rq_queue)
        assert admin.post(_url(template, world), csrf=None).status_code == 400, endpoint
        assert fingerprint(rq_queue) == before, endpoint
        cases += 1
    # the control: the same request with the page's token goes through
    assert actors.ui("salesmgr").post(_url("/instances/{plan}/actions/approve", world)).status_code == 302
    print(f"\nCSRF: {len(CSRF_POSTS)} form routes × 3 bad tokens + {len(RQ_POSTS)} rq-dashboard routes without "
          f"its header = {cases} refusals (400), 0 writes; {len(cookie_posts(app))} POST routes in the URL map")


# ---- headers ------------------------------------------------------------------------------------------------

def _headers_ok(r, https: bool, eval_ok: bool = False) -> list[str]:
    """What is wrong with one response's security headers (`eval_ok`: rq-dashboard's pages, see web/ui)."""
    h, wrong = r.headers, []
    csp = h.get("Content-Security-Policy", "")
    script = re.search(r"script-src([^;]*)", csp) or re.search(r"default-src([^;]*)", csp)
    if not script or "'unsafe-inline'" in script.group(1) or ("'unsafe-eval'" in script.group(1)) != eval_ok:
        wrong.append(f"CSP script: {csp!r}")
    if "frame-ancestors 'none'" not in csp and h.get("X-Frame-Options") != "DENY":
        wrong.append("framing allowed")
    if h.get("X-Frame-Options") != "DENY":
        wrong.append("X-Frame-Options")
    if h.get("X-Content-Type-Options") != "nosniff":
        wrong.append("nosniff")
    if not h.get("Referrer-Policy"):
        wrong.append("Referrer-Policy")
    if https != ("max-age=" in h.get("Strict-Transport-Security", "")):
        wrong.append(f"HSTS over {'https' if https else 'http'}: {h.get('Strict-Transport-Security')!r}")
    if "text/html" in h.get("Content-Type", ""):
        nonce = re.search(r"'nonce-([^']+)'", csp)
        for tag in re.findall(r"<script\b[^>]*>", r.get_data(as_text=True)):
            runs = "src=" not in tag and "text/template" not in tag
            if runs and not (nonce and f'nonce="{nonce.group(1)}"' in tag):
                wrong.append(f"inline script without this response's nonce: {tag}")
    return wrong


def test_security_headers_on_every_kind_of_response(app, world, actors):
    plan = world.instances["T1"]
    token = actors.api.token("sm1")
    pages = {
        "sign-in page": lambda s: s["anonymous"].get("/login"),
        "inbox": lambda s: s["salesmgr"].get("/inbox"),
        "instance page": lambda s: s["salesmgr"].get(f"/instances/{plan.key}"),
        "attachment": lambda s: s["salesmgr"].get(f"/instances/{plan.key}/attachments/{plan.extra['attachment']}"),
        "UI 404": lambda s: s["salesmgr"].get("/instances/999999"),
        "static file": lambda s: s["anonymous"].get("/static/app.js"),
        "API JSON": lambda s: s["anonymous"].get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}),
        "API 401": lambda s: s["anonymous"].get("/api/v1/me"),
        "API docs (Swagger UI)": lambda s: s["anonymous"].get("/api/v1/docs"),
        "OpenAPI spec": lambda s: s["anonymous"].get("/api/v1/openapi.json"),
        "rq-dashboard": lambda s: s["admin"].get("/admin/rq/"),
        "liveness": lambda s: s["anonymous"].get("/healthz"),
    }
    problems, checked = [], 0
    for https in (False, True):
        base = "https://localhost" if https else "http://localhost"
        sessions = {login: Session(app, login, base_url=base) for login in ("salesmgr", "admin")}
        sessions["anonymous"] = Session(app, base_url=base)
        for name, fetch in pages.items():
            r = fetch(sessions)
            assert r.status_code in (200, 401, 404), (name, r.status_code)
            problems += [f"{name} ({'https' if https else 'http'}): {p}"
                         for p in _headers_ok(r, https, eval_ok=name == "rq-dashboard")]
            checked += 1
    print(f"\nsecurity headers: {checked} responses ({len(pages)} kinds × http/https), problems: {len(problems)}")
    assert not problems, "\n".join(problems)


def test_the_vendored_pages_work_under_their_policy(browser_as, rq_queue):  # noqa: F811
    """Swagger UI and rq-dashboard run in a real browser under the headers above: no script refused, tables drawn."""
    rq_queue.enqueue("os.getcwd")
    page = browser_as("admin")
    refused = []
    page.on("pageerror", lambda e: refused.append(str(e)))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(page.base + "/admin/rq/")
    page.wait_for_selector("#queues tr[data-role=queue]")
    page.goto(page.base + "/api/v1/docs")
    page.wait_for_selector(".opblock")
    operations = page.locator(".opblock").count()
    print(f"\nvendored pages under CSP: rq-dashboard queue rows drawn, Swagger UI {operations} operations; "
          f"refused scripts: {len(refused)}")
    assert not refused, refused


@pytest.mark.parametrize("copy, original", [
    ("web/templates/swagger_ui.html", Path(flask_smorest.__file__).parent / "spec/templates/swagger_ui.html"),
    ("web/templates/rq_dashboard/base.html",
     Path(rq_dashboard.__file__).parent / "templates/rq_dashboard/base.html"),
])
def test_copied_templates_follow_the_packages(copy, original):
    """The copies differ from the installed packages' templates only by the nonce: an upgrade that changes them
    fails here, so the copy is renewed rather than silently serving an old page."""
    ours = (ROOT / copy).read_text()
    ours = re.sub(r"\A\{#-.*?-#\}\n", "", ours, flags=re.S).replace(' nonce="{{ csp_nonce() }}"', "")
    assert ours == original.read_text()


@pytest.fixture
def proxied_app(app, monkeypatch):
    """The app as wsgi.py builds it for gunicorn behind one reverse proxy (PROXY_HOPS=1), on the same database."""
    monkeypatch.setenv("SIGNOFF_ENV", "testing")
    monkeypatch.setenv("SIGNOFF_INSTANCE", app.instance_path)
    monkeypatch.setenv("PROXY_HOPS", "1")
    sys.modules.pop("wsgi", None)
    module = importlib.import_module("wsgi")
    sys.modules.pop("wsgi", None)
    return module.app


def test_behind_a_proxy_https_and_the_client_address_come_from_it(app, people, proxied_app, fresh_limits,  # noqa: F811
                                                                  monkeypatch):
    via_proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}
    page = proxied_app.test_client().get("/login", headers=via_proxy)
    assert "Secure" in page.headers["Set-Cookie"] and "max-age=" in page.headers["Strict-Transport-Security"]
    forged = app.test_client().get("/login", headers=via_proxy)  # no proxy configured: the header is a lie
    assert "Secure" not in forged.headers["Set-Cookie"] and "Strict-Transport-Security" not in forged.headers
    # per-address limit: behind the proxy each client has its own budget; without it, a forged
    # X-Forwarded-For does not buy a fresh one
    for a in (app, proxied_app):
        monkeypatch.setitem(a.config, "UI_LOGIN_ADDRESS_LIMIT", 3)
    proxied = proxied_app.test_client()
    for _ in range(3):
        proxied.post("/api/v1/tokens", json={"login": "nobody", "password": "x"}, headers=via_proxy)
    assert proxied.post("/api/v1/tokens", json={"login": "a1", "password": "pw-a1"},
                        headers=via_proxy).status_code == 429
    other_client = {**via_proxy, "X-Forwarded-For": "203.0.113.6"}
    assert proxied.post("/api/v1/tokens", json={"login": "a1", "password": "pw-a1"},
                        headers=other_client).status_code == 201
    direct = app.test_client()
    for i in range(3):
        direct.post("/api/v1/tokens", json={"login": f"ghost{i}", "password": "x"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"})
    assert direct.post("/api/v1/tokens", json={"login": "a1", "password": "pw-a1"},
                       headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 429


# ---- sign-in: limits, hashes, tokens, enumeration --------------------------------------------------------

def test_api_tokens_share_the_sign_in_pages_failed_login_budget(app, people, fresh_limits, clock,  # noqa: F811
                                                                 monkeypatch):
    api = app.test_client()
    for _ in range(5):
        assert api.post("/api/v1/tokens", json={"login": "rep1", "password": "bad"}).status_code == 401
    r = api.post("/api/v1/tokens", json={"login": "rep1", "password": "pw-rep1"})  # from here, even the right one
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and r.json["error"] == "rate_limited"
    page = Session(app)
    assert page.post("/login", {"login": "rep1", "password": "pw-rep1"}).status_code == 429  # either door
    assert api.post("/api/v1/tokens", json={"login": "salesmgr", "password": "pw-salesmgr"}).status_code == 201
    monkeypatch.setitem(app.config, "UI_LOGIN_ADDRESS_LIMIT", 7)  # 5 above + 2 here from this address
    for login in ("a1", "a2"):
        page.post("/login", {"login": login, "password": "bad"})
    assert api.post("/api/v1/tokens", json={"login": "sm1", "password": "pw-sm1"}).status_code == 429


def test_passwords_are_stored_as_scrypt_hashes_whichever_way_they_are_set(app, people, actors):
    ui_admin = actors.ui("admin")
    assert ui_admin.post("/admin/users", {"login": "viaui", "name": "x", "email": "viaui@example.com",
                                          "password": "secret-via-ui"}).status_code \
        == 302
    assert actors.api.post("/users", as_="admin", json={"login": "viaapi", "name": "x", "email": "v@example.com",
                                                         "password": "secret-via-api"}).status_code == 201
    assert actors.api.patch("/users/a2", as_="admin", json={"password": "secret-patched"}).status_code == 200
    assert actors.ui("a3").post("/account", {"form": "password", "pw-current": "pw-a3", "pw-new": "secret-changed",
                                             "pw-repeat": "secret-changed"}).status_code == 302
    db.session.rollback()
    stored = dict(db.session.execute(sa.select(org.User.login, org.User.password_hash)).all())
    # werkzeug's format: scrypt:N:r:p$salt$hex(64-byte key); N=2^15, r=8, p=1 (its default work factor)
    form = re.compile(r"^scrypt:32768:8:1\$[A-Za-z0-9]{16}\$[0-9a-f]{128}$")
    bad = {login: h[:20] for login, h in stored.items() if not form.match(h)}
    print(f"\npassword hashes: {len(stored)} users (4 set through UI/API/account just now), not scrypt: {len(bad)}")
    assert not bad
    for login, password in [("viaui", "secret-via-ui"), ("viaapi", "secret-via-api"), ("a2", "secret-patched"),
                            ("a3", "secret-changed")]:
        assert password not in stored[login] and org.user_by_login(login).check_password(password)


def test_api_tokens_are_stored_only_as_their_hash(app, people):
    r = app.test_client().post("/api/v1/tokens", json={"login": "a1", "password": "pw-a1"})
    token = r.json["token"]
    db.session.rollback()
    assert db.session.scalar(sa.select(ApiToken.token_hash)) == hashlib.sha256(token.encode()).hexdigest()
    found, rows = [], 0
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                rows += 1
                if token in repr(tuple(row)) or token[3:] in repr(tuple(row)):
                    found.append(table.name)
    print(f"\ntoken search: {rows} rows in {len(db.metadata.sorted_tables)} tables, plaintext found in: {found}")
    assert not found


def _timed(call, times=3) -> tuple[float, object]:
    spent, last = [], None
    for _ in range(times):
        started = time.perf_counter()
        last = call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent), last


def test_no_user_enumeration_by_answer_or_timing(app, people, fresh_limits, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "UI_LOGIN_ACCOUNT_LIMIT", 1000)
    monkeypatch.setitem(app.config, "UI_LOGIN_ADDRESS_LIMIT", 1000)
    people["a2"].active = False  # a deactivated account must look like no account
    db.session.commit()
    api, page = app.test_client(), Session(app)
    doors = {
        "API token": lambda login: api.post("/api/v1/tokens", json={"login": login, "password": "wrong"}),
        "sign-in page": lambda login: page.post("/login", {"login": login, "password": "wrong"}),
    }
    report = []
    for door, attempt in doors.items():
        results = {kind: _timed(lambda login=login, attempt=attempt: attempt(login))
                   for kind, login in [("wrong password", "rep1"), ("unknown login", "nobody"), ("inactive", "a2")]}
        bodies = {kind: re.sub(r'value="[^"]*"', "", r.get_data(as_text=True)).replace("nobody", "X")
                  .replace("rep1", "X").replace("a2", "X") for kind, (_t, r) in results.items()}
        statuses = {r.status_code for _t, r in results.values()}
        assert statuses == {401} and len(set(bodies.values())) == 1, (door, statuses)
        base = results["wrong password"][0]
        report.append(f"{door}: " + ", ".join(f"{k} {t * 1000:.0f} ms" for k, (t, _r) in results.items()))
        for kind, (spent, _r) in results.items():
            # a real check is one scrypt (tens of ms); skipping it would be ~1 ms: a factor of 3 is no accident
            assert spent > base / 3, (door, kind, spent, base)
    print("\nno enumeration (median of 3, same status and body): " + "; ".join(report))
