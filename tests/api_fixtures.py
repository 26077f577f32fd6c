"""Fixtures for the API tests: a test client and bearer tokens for the `people` org (tests/conftest.py)."""
import pytest

from engine import tokens

REQUEST = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户"}


class Api:
    """The Flask test client with a bearer token per login: `api.get("/instances", as_="a1")`."""

    def __init__(self, client, people):
        self.client = client
        self.people = people
        self.tokens = {}

    def token(self, login: str) -> str:
        if login not in self.tokens:
            self.tokens[login] = tokens.issue(self.people[login])
        return self.tokens[login]

    def call(self, method: str, path: str, as_: str | None = None, headers: dict | None = None, **kw):
        headers = dict(headers or {})
        if as_:
            headers["Authorization"] = f"Bearer {self.token(as_)}"
        url = path if path.startswith("/api/") else "/api/v1" + path
        return self.client.open(url, method=method, headers=headers, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def put(self, path, **kw):
        return self.call("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.call("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def start(self, as_="a1", unit="S1", data=None, workflow="discount_request"):
        r = self.post("/instances", as_=as_, json={"workflow": workflow, "org_unit": unit, "data": data or REQUEST})
        assert r.status_code == 201, r.json
        return r.json

    def submitted(self, as_="a1", unit="S1", data=None):
        inst = self.start(as_, unit, data)
        r = self.post(f"/instances/{inst['id']}/actions/submit", as_=as_, json={})
        assert r.status_code == 200, r.json
        return r.json


@pytest.fixture(name="api")
def api_fixture(app, people, clock):
    return Api(app.test_client(), people)
