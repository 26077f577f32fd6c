"""The production run of README's "Running in production", as its commands say (PostgreSQL + Redis only).

`flask db upgrade`, the company and the first administrator from the shell, `flask check`, then gunicorn
(2 processes × 4 threads) and two `flask --app wsgi worker` processes with SIGNOFF_ENV=production. Through the
API only: the administrator signs in with a password, builds a region, a store and three people; the
assistant asks for a discount and the store manager approves it; a shift handover 31 minutes late is
started, and its escalation email reaches the store manager through a real SMTP server (aiosmtpd) — sent by
the workers, in real time, nothing mocked.
"""
import time
from datetime import UTC, datetime, timedelta

import requests

from tests.server_fixtures import deployment  # noqa: F401

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}
BASE_URL = "https://signoff.example.test"  # what the links in emails say


class Client:
    """A caller of the API with a token it got by signing in, as README's curl walk-through does."""

    def __init__(self, base: str, login: str, password: str):
        self.base = base + "/api/v1"
        r = requests.post(self.base + "/tokens", json={"login": login, "password": password}, timeout=30)
        assert r.status_code == 201, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}

    def post(self, path: str, body: dict, status: int = 200, **headers) -> dict:
        r = requests.post(self.base + path, json=body, headers={**self.headers, **headers}, timeout=30)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()


def _wait(predicate, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not predicate():
        time.sleep(0.3)
    return predicate()


def test_readme_production_run(deployment, smtp, rq_queue):  # noqa: F811
    started = time.monotonic()
    deployment.base_env.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port), BASE_URL=BASE_URL)
    # README step 4, from the shell
    deployment.flask("db", "upgrade")
    deployment.flask("org", "add", "HQ", "--name", "星河零售", "--kind", "company")
    deployment.flask("users", "create", "admin", "--name", "系统管理员", "--email", "it@example.com",
                     "--password", "admin-password-1", "--role", "admin@HQ")
    check = deployment.flask("check", check=False)
    assert check.returncode == 0 and "FAIL" not in check.stdout, check.stdout + check.stderr
    for line in ("database revision", "redis", "smtp"):
        assert any(row.startswith("OK") and line in row for row in check.stdout.splitlines()), check.stdout
    # README step 5: gunicorn and two workers
    web = deployment.gunicorn(workers=2, threads=4, timeout=60)
    workers = [deployment.worker(), deployment.worker()]
    assert requests.get(web.url + "/readyz", timeout=10).json()["status"] == "ok"

    admin = Client(web.url, "admin", "admin-password-1")
    admin.post("/org-units", {"code": "EAST", "name": "华东大区", "kind": "region", "parent": "HQ"}, 201)
    admin.post("/org-units", {"code": "SH01", "name": "上海南京路店", "kind": "store", "parent": "EAST"}, 201)
    for login, role in [("li", "store_manager"), ("wang", "assistant"), ("zhao", "deputy_manager")]:
        admin.post("/users", {"login": login, "name": login, "email": f"{login}@example.com",
                              "password": f"pass-{login}-123", "roles": [{"role": role, "org_unit": "SH01"}]}, 201)
    wang, li, zhao = (Client(web.url, login, f"pass-{login}-123") for login in ("wang", "li", "zhao"))

    request = wang.post("/instances", {"workflow": "discount_request", "org_unit": "SH01", "data": REQUEST}, 201)
    path = f"/instances/{request['id']}/actions/"
    assert wang.post(path + "submit", {})["state"] == "store_review"
    approved = li.post(path + "approve", {"comment": "同意"}, **{"If-Match": "2"})
    assert (approved["state"], approved["version"]) == ("approved", 3)

    handover_at = (datetime.now(UTC) - timedelta(minutes=31)).isoformat(timespec="seconds")
    late = zhao.post("/instances", {"workflow": "shift_handover", "org_unit": "SH01",
                                    "data": {"handover_at": handover_at}}, 201)
    link = f"{BASE_URL}/instances/{late['id']}"

    def escalations():
        return [m for m in smtp.to("li@example.com")
                if "【超时升级】" in str(m["Subject"]) and link in m.get_body(("plain",)).get_content()]

    _wait(lambda: escalations(), 45)
    time.sleep(1)  # a duplicate would arrive right behind the first
    sent = escalations()
    print(f"\nproduction run: check OK, gunicorn 2×4 + 2 workers; discount request {request['id']} approved "
          f"(v{approved['version']}); handover {late['id']} 31 min late → escalation emails to the store manager: "
          f"{len(sent)}; all emails received: {len(smtp.messages)} ({sorted(set(smtp.subjects()))}); "
          f"{time.monotonic() - started:.1f} s")
    assert len(sent) == 1, smtp.subjects()
    assert "上海南京路店" in sent[0].get_body(("plain",)).get_content()
    assert all(w.alive() for w in workers) and web.alive()
