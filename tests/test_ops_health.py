"""/healthz and /readyz, the 503 when the database or Redis cannot be reached, the pool recovering by itself,
`flask --app wsgi check`, and the warning about a Redis without persistence."""
import copy
import logging
import os

import pytest
import sqlalchemy as sa

import config
from engine import checks, health, org, queue, tokens
from engine.db import db
from tests.conftest import POSTGRES, needs_postgres
from web import create_app

pytest_plugins = ["tests.ui_fixtures"]


def app_with(tmp_path, **env) -> object:
    """Another app on this test run's settings, with some of them replaced."""
    return create_app(config.TestingConfig(dict(os.environ, SIGNOFF_INSTANCE=str(tmp_path), **env)))


@pytest.fixture
def down_app(app, tmp_path):
    """An app whose database and Redis cannot be reached (nothing listens there; the SQLite file's folder is
    missing)."""
    database = ("postgresql://root@127.0.0.1:1/signoff" if POSTGRES else f"sqlite:///{tmp_path}/missing/signoff.db")
    return app_with(tmp_path, TEST_DATABASE_URL=database, TEST_REDIS_URL="redis://127.0.0.1:1/0")


def redis_url(app) -> str:
    cfg = app.config["SIGNOFF_CONFIG"]
    return cfg.REDIS_URL or queue.embedded_url(cfg)


def test_healthz_and_readyz_when_all_is_up(app):
    c = app.test_client()
    r = c.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"} and "Set-Cookie" not in r.headers
    r = c.get("/readyz")
    body = r.get_json()
    assert r.status_code == 200 and body["status"] == "ok", body
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert r.headers["Cache-Control"] == "no-store"


def test_database_and_redis_down_give_503s_that_say_so(app, down_app, people, signed_in):
    c = down_app.test_client()
    assert c.get("/healthz").status_code == 200  # alive: restarting the process would not help
    r = c.get("/readyz")
    assert r.status_code == 503 and r.headers["Retry-After"]
    body = r.get_json()
    assert body["status"] == "unavailable" and body["failed"] == ["database", "redis"]
    assert body["checks"]["database"]["error"] == "OperationalError"
    r = c.get("/metrics")  # still scraped: says what is down
    assert r.status_code == 200 and 'signoff_up{dependency="database"} 0.0' in r.get_data(as_text=True)
    assert 'signoff_up{dependency="redis"} 0.0' in r.get_data(as_text=True)

    # The API: its one error shape, in the caller's language, with Retry-After.
    r = c.get("/api/v1/tasks", headers={"Authorization": "Bearer some-token"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    body = r.get_json()
    assert body["code"] == 503 and body["error"] == "service_unavailable"
    assert body["details"] == {"dependency": "database"} and "稍后重试" in body["message"]
    r = c.post("/api/v1/instances", json={}, headers={"Authorization": "Bearer x", "Accept-Language": "en"})
    assert r.status_code == 503 and "temporarily unavailable" in r.get_json()["message"]

    # The UI: a signed-in person (session cookie from the healthy app) gets a page, not a stack trace.
    cookie = signed_in("rep1").client.get_cookie("session")
    c.set_cookie("session", cookie.value)
    r = c.get("/inbox")
    page = r.get_data(as_text=True)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert "暂时无法使用" in page and "Traceback" not in page
    r = c.get("/inbox", headers={"Accept-Language": "en"})
    assert r.status_code == 503 and "Temporarily unavailable" in r.get_data(as_text=True)


def test_redis_down_on_a_page_that_needs_it_is_a_503_too(app, tmp_path, people, signed_in, caplog):
    database = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    no_redis = app_with(tmp_path, TEST_DATABASE_URL=database, TEST_REDIS_URL="redis://127.0.0.1:1/0")
    c = no_redis.test_client()
    c.set_cookie("session", signed_in("admin").client.get_cookie("session").value)
    assert c.get("/inbox").status_code == 200  # pages that do not need Redis still work
    with caplog.at_level(logging.WARNING, logger="web.errors"):
        r = c.get("/admin/incidents")  # lists the failed jobs kept in Redis
    assert r.status_code == 503 and r.headers["Retry-After"] == "5" and "暂时无法使用" in r.get_data(as_text=True)
    assert "redis unavailable during GET /admin/incidents" in caplog.text


@needs_postgres
def test_the_pool_recovers_after_the_database_dropped_its_connections(app, people):
    token = tokens.issue(people["rep1"])
    c, auth = app.test_client(), {"Authorization": f"Bearer {token}"}
    assert c.get("/api/v1/me", headers=auth).status_code == 200
    db.session.remove()  # every connection back in the pool
    # As a restart would: the server ends every connection the app has pooled.
    outside = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with outside.connect() as conn:
        killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    outside.dispose()
    assert killed >= 1
    for _ in range(3):  # every request succeeds: dead connections are replaced at checkout, nobody restarts
        assert c.get("/api/v1/me", headers=auth).status_code == 200
    assert c.get("/readyz").status_code == 200


def run_check(app):
    with app.app_context():  # as the flask command does
        result = app.test_cli_runner().invoke(args=["check"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_check_passes_then_fails_when_smtp_is_down(app, smtp):
    code, out = run_check(app)
    assert code == 0, out
    lines = out.splitlines()
    for name in ("TIMEZONE", "MAIL settings", "database", "database revision", "redis", "smtp"):
        assert any(line.startswith("OK") and f"  {name}:" in line for line in lines), (name, out)
    assert "WARN  environment: not the production configuration" in out  # SIGNOFF_ENV=testing
    smtp.stop()
    code, out = run_check(app)
    assert code == 1 and f"FAIL  smtp: 127.0.0.1:{smtp.port}: ConnectionRefusedError" in out


def test_check_fails_on_a_database_behind_the_migrations(app, ctx, smtp):
    head = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    db.session.execute(sa.text("UPDATE alembic_version SET version_num = '63a0d211d313'"))
    db.session.commit()
    try:
        code, out = run_check(app)
    finally:
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    assert code == 1
    assert f"FAIL  database revision: at 63a0d211d313, the head is {head}: run `flask --app wsgi db upgrade`" in out


def test_check_fails_when_nothing_is_reachable(down_app):
    code, out = run_check(down_app)
    assert code == 1
    assert "FAIL  database: " in out and "FAIL  redis: redis://127.0.0.1:1/0 unreachable" in out


def test_check_configuration_rules_in_production():
    good = {"SECRET_KEY": "k" * 40, "BASE_URL": "https://signoff.example.com", "TIMEZONE": "Asia/Shanghai",
            "MAIL_SERVER": "smtp.example.com", "MAIL_PORT": 587, "MAIL_USE_TLS": True, "MAIL_USE_SSL": False,
            "MAIL_USERNAME": "signoff", "MAIL_FROM": "signoff@example.com",
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://signoff@db/signoff", "REDIS_URL": "redis://redis:6379/0"}
    assert {c.level for c in checks.configuration(good, production=True)} == {checks.Level.OK}
    bad = {**good, "SECRET_KEY": "changeme", "BASE_URL": "signoff.example.com", "TIMEZONE": "Mars/Olympus",
           "MAIL_USE_SSL": True, "REDIS_URL": ""}
    failed = {c.name for c in checks.configuration(bad, production=True) if c.level == checks.Level.FAIL}
    assert failed == {"SECRET_KEY", "BASE_URL", "TIMEZONE", "MAIL settings", "REDIS_URL"}
    plain = {**good, "BASE_URL": "http://127.0.0.1:5000", "MAIL_USE_TLS": False,
             "SQLALCHEMY_DATABASE_URI": "sqlite:////srv/signoff.db"}
    warned = {c.name for c in checks.configuration(plain, production=True) if c.level == checks.Level.WARN}
    assert warned == {"BASE_URL", "MAIL settings", "DATABASE_URL"}  # local links, a password in clear, SQLite
    assert not any(c.level == checks.Level.FAIL for c in checks.configuration(bad | {"SECRET_KEY": "x"}, False)
                   if c.name in ("SECRET_KEY", "REDIS_URL"))  # development: its defaults are fine


def test_redis_without_persistence_is_warned_at_start_up(app, ctx, tmp_path, caplog):
    cfg = copy.copy(app.config["SIGNOFF_CONFIG"])
    cfg.REDIS_URL = redis_url(app)
    conn = health.quick_redis(cfg)
    settings = {**conn.config_get("appendonly"), **conn.config_get("maxmemory-policy")}
    problems = health.redis_persistence(conn)
    assert any("appendonly" in p for p in problems) == (settings["appendonly"] != "yes")
    assert any("maxmemory-policy" in p for p in problems) == (settings["maxmemory-policy"] != "noeviction")
    if not app.config["SIGNOFF_CONFIG"].REDIS_URL:  # the embedded server is this test run's own: make it safe
        conn.config_set("appendonly", "yes")
        try:
            assert health.redis_persistence(conn) == []
        finally:
            conn.config_set("appendonly", settings["appendonly"])
    assert problems, "this machine's test Redis runs without appendonly, so there is something to warn about"

    web = app_with(tmp_path, TEST_REDIS_URL=cfg.REDIS_URL)  # a web process: warns on its first request, once
    with caplog.at_level(logging.WARNING, logger="engine.health"):
        web.test_client().get("/healthz")
        web.test_client().get("/healthz")
    warned = [r.getMessage() for r in caplog.records if r.name == "engine.health"]
    assert warned == problems


def test_check_warns_of_each_step_nobody_can_take(app, people, smtp):
    """A gap is named until someone holds the step's role."""
    code, out = run_check(app)
    assert code == 0, out  # a gap is a warning: escalations still reach someone
    assert ("WARN  workflow steps: unit S3, workflow complaint, state received: nobody can act (assignee rule "
            "service_agent: nobody holds it)") in out, out
    org.grant(people["a3"], "service_agent", "S3")
    db.session.commit()
    code, out = run_check(app)  # (other tests' definitions may still be registered: look at this gap only)
    assert "workflow complaint, state received" not in out and code == 0, out
