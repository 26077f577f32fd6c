"""Test set-up. The database is real: SQLite by default, PostgreSQL when TEST_DATABASE_URL is set.

The schema is built by the migrations (never by create_all), and every table is emptied between tests.
Only the clock is mocked (`clock` fixture).
"""
import functools
import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from engine import calendar, org, registry
from engine import clock as engine_clock
from engine.db import db
from web import create_app

POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="PostgreSQL only (set TEST_DATABASE_URL)")


def drop_everything(engine) -> None:
    """Leave the database empty, as a fresh install would find it."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    else:
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    env = dict(os.environ, SIGNOFF_INSTANCE=str(tmp_path_factory.mktemp("instance")))
    app = create_app(config.TestingConfig(env))
    with app.app_context():
        drop_everything(db.engine)
        upgrade()
    yield app


@pytest.fixture(autouse=True)
def _clean_tables(request):
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    calendar.invalidate()
    with app.app_context():
        empty_tables()


def empty_tables(keep: frozenset[str] = frozenset()) -> None:
    """Empty every table but those in `keep` (ids start again from 1), in the app context."""
    db.session.rollback()
    with db.engine.begin() as conn:
        existing = set(sa.inspect(conn).get_table_names()) - keep
        tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name in existing]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                conn.exec_driver_sql(f"DELETE FROM {table}")
    db.session.remove()


@pytest.fixture(autouse=True)
def _registry_as_loaded():
    """The workflow registry is process-wide: the test definitions a test registers are gone after it (a lint
    of the org in a later test would otherwise report their steps too)."""
    registry.load()
    loaded = dict(registry._compiled)
    yield
    registry._compiled.clear()
    registry._compiled.update(loaded)


@pytest.fixture
def ctx(app):
    """An app context with a fresh session."""
    with app.app_context():
        yield app
        db.session.remove()


class Clock:
    """A hand-moved clock: `clock.set(...)`, `clock.advance(hours=2)`."""

    def __init__(self, start: datetime):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def set(self, value: datetime) -> None:
        self.current = value

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    c = Clock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    monkeypatch.setattr(engine_clock, "source", c.now)
    return c


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashes():
    """scrypt is slow on purpose; tests hash each distinct password once per session (same algorithm)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(org, "generate_password_hash", functools.lru_cache(org.generate_password_hash))
        yield


@pytest.fixture
def people(ctx):
    """A small org: HQ → regions EAST, SOUTH → stores S1, S2 (EAST) and S3 (SOUTH), team T1 (EAST).

    Returns a dict login → User. Every role is held by somebody.
    """
    for code, kind, parent in [("HQ", "company", None), ("EAST", "region", "HQ"), ("SOUTH", "region", "HQ"),
                               ("S1", "store", "EAST"), ("S2", "store", "EAST"), ("S3", "store", "SOUTH"),
                               ("T1", "team", "EAST")]:
        org.add_unit(code, f"unit {code}", kind, parent)
    spec = {
        "boss": ["regional_manager@HQ"], "acct": ["accountant@HQ"], "admin": ["admin@HQ"],
        "east": ["regional_manager@EAST"], "south": ["regional_manager@SOUTH"],
        "sm1": ["store_manager@S1"], "dep1": ["deputy_manager@S1"], "a1": ["assistant@S1"], "a1b": ["assistant@S1"],
        "sm2": ["store_manager@S2"], "a2": ["assistant@S2"],
        "sm3": ["store_manager@S3"], "a3": ["assistant@S3"],
        "salesmgr": ["sales_manager@T1"], "rep1": ["rep@T1"], "trainer": ["trainer@EAST"],
        "agent": ["service_agent@EAST"],
        "sm1asst": ["store_manager@S1", "assistant@S1"],  # a manager who also sells: for segregation tests
    }
    users = {}
    for login, roles in spec.items():
        users[login] = org.add_user(login, login.title(), f"{login}@example.com", "pw-" + login,
                                    [tuple(r.split("@")) for r in roles], locale="en" if login == "south" else "zh")
    db.session.commit()
    return users


# ---- real Redis, real RQ workers, a real SMTP server --------------------------------------------------

class Inbox:
    """What the SMTP server received: parsed messages, in arrival order."""

    def __init__(self):
        self.messages = []
        self.refuse = set()  # addresses answered with 550
        self.controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(msg)
        return "250 OK"

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address):
        return [m for m in self.messages if address in m["To"]]

    def subjects(self):
        return [str(m["Subject"]) for m in self.messages]


@pytest.fixture
def smtp(app, monkeypatch):
    """A real SMTP server (aiosmtpd) on a free loopback port; the app sends to it. `smtp.stop()` takes it
    down and `smtp.start()` brings it back on the same port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    inbox.port = port
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", port)
    inbox.start()
    yield inbox
    inbox.stop()


@pytest.fixture
def rq_queue(ctx):
    """The app's RQ queue on a real Redis (TEST_REDIS_URL, else the embedded one), emptied before and after."""
    from engine import queue

    q = queue.current()
    q.connection.flushdb()
    yield q
    q.connection.flushdb()


@pytest.fixture
def work(app, rq_queue):
    """Run a real RQ worker in burst mode (it reconciles timers first, like every worker's maintenance)."""
    from engine.jobs import AppWorker

    def run():
        AppWorker.app = app
        worker = AppWorker([rq_queue], connection=rq_queue.connection)
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        db.session.rollback()  # end this session's snapshot and forget its objects: see what the worker did
        db.session.expire_all()

    return run


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright for the whole run, defined here once: a test module importing a session fixture gets its
    own copy, and a second sync_playwright() in the same process refuses to start."""
    from pathlib import Path

    from tests.ui_fixtures import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make install-dev installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p
