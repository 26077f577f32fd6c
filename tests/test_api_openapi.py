"""The OpenAPI document: valid, complete (every endpoint, status and schema), bearer security declared; the
docs UI served from local assets; a schemathesis run of 1,000+ generated requests with no 5xx and no
response that breaks its documented schema; and its stateful phase along the declared links (instance → action
→ history) with no 5xx. Both run on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (`make test` in CI)."""
import re
from collections import Counter

import pytest
from openapi_spec_validator import validate

from tests.api_fixtures import api_fixture  # noqa: F401
from tests.conftest import empty_tables

API_DOC_ENDPOINTS = {"api-docs.openapi_json", "api-docs.openapi_swagger_ui", "api_docs_assets"}


@pytest.fixture
def spec(app):
    return app.test_client().get("/api/v1/openapi.json").json


def test_the_spec_validates_and_declares_bearer_auth(spec):
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/api/v1/tokens"]["post"]["security"] == []


def test_every_endpoint_is_documented_with_its_statuses(app, spec):
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops
                  if method in ("get", "post", "put", "patch", "delete")}
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint in API_DOC_ENDPOINTS:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (path, method)
            assert {"429", "500"} <= codes, (path, method)
            if op.get("security") != []:
                assert "401" in codes, (path, method)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")) and "content" in response:
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert op.get("summary"), (path, method)


def test_docs_ui_is_served_locally(app):
    client = app.test_client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/api/v1/docs/assets/") for a in assets)
    assert "cdn" not in html.lower() and "//" not in "".join(assets).replace("/api/v1/docs/assets/", "")
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200 and len(r.data) > 1000


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(app, api, monkeypatch):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    monkeypatch.setitem(app.config, "API_RATE_LIMIT", 0)
    # some real objects for the generated requests to find
    for _ in range(3):
        api.submitted()
    headers = {"Authorization": f"Bearer {api.token('admin')}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    per_operation = -(-1000 // len(operations)) + 5
    sent = []
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]

    for operation in operations:
        if operation.path == "/api/v1/tokens/current" or (operation.path, operation.method) == ("/api/v1/tokens",
                                                                                                 "delete"):
            continue  # they would revoke the token the run uses; covered in test_api_core and test_security_credentials

        @settings(max_examples=per_operation, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy())
        def run(case):
            case.headers = {**(case.headers or {}), **headers}
            response = case.call()
            sent.append(response.status_code)
            case.validate_response(response, checks=checks)

        run()
    assert len(sent) >= 1000, len(sent)
    assert not [s for s in sent if s >= 500]
    assert sum(200 <= s < 300 for s in sent) >= 200  # not only refusals: real reads and writes happened
    print(f"schemathesis: {len(sent)} requests, statuses {dict(sorted(Counter(sent).items()))}")


# what the stateful fuzz keeps between scenarios: the org, the people and their tokens
ORG_AND_PEOPLE = frozenset({"org_units", "users", "role_assignments", "delegations", "api_tokens", "alembic_version"})


def test_schemathesis_stateful_links_instance_action_history(app, api, monkeypatch):
    """Schemathesis's stateful phase follows the declared OpenAPI links: start an instance, then read it, fire
    the first action it offers and read its history, chained on the ids and triggers the responses carry."""
    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import status_code_conformance

    monkeypatch.setitem(app.config, "API_RATE_LIMIT", 0)
    headers = {"Authorization": f"Bearer {api.token('a1')}"}  # a1 may start the documented example
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    chain = {("POST", "/api/v1/instances"), ("GET", "/api/v1/instances/{instance_id}"),
             ("POST", "/api/v1/instances/{instance_id}/actions/{trigger}"),
             ("GET", "/api/v1/instances/{instance_id}/history")}
    schema = schema.include(path_regex=r"^/api/v1/instances(/\{instance_id\}(/history|/actions/\{trigger\})?)?$")
    sent = []

    class Workflow(schema.as_state_machine()):
        # Each scenario starts from the same database (the org, the tokens, one submitted request): what a
        # scenario can do next depends on the answers, so instances left by the one before would make Hypothesis
        # draw differently for the same choices ("inconsistent data generation").
        def setup(self):
            api.submitted()

        def teardown(self):
            empty_tables(keep=ORG_AND_PEOPLE)

        def before_call(self, case):
            case.headers = {**(case.headers or {}), **headers}

        def after_call(self, response, case):
            sent.append((case.operation.method.upper(), case.operation.path, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    Workflow.run(settings=settings(max_examples=200, stateful_step_count=6, deadline=None, database=None,
                                   derandomize=True, suppress_health_check=list(HealthCheck)))
    statuses = Counter(status for *_, status in sent)
    print(f"schemathesis stateful: {len(sent)} requests, statuses {dict(sorted(statuses.items()))}")
    assert not [s for s in statuses if s >= 500]
    linked = {(method, path) for method, path, status in sent if 200 <= status < 300}
    assert chain <= linked, chain - linked  # each step of the chain was reached and answered

