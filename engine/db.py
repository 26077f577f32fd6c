"""The database handle and column types shared by every engine model."""
import decimal
import json
import threading
from contextlib import contextmanager
from datetime import UTC, date, datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.exc import StaleDataError

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


def _json_default(value):
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value) -> str:
    """The JSON encoder for JSON columns: Decimal as text, dates as ISO 8601, Chinese kept readable."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware datetimes, stored as naive UTC so SQLite and PostgreSQL agree."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# ---- transactions ---------------------------------------------------------------------------------------

_immediate = threading.local()


def init_db(app) -> None:
    """Bind the database to `app` and tune SQLite (WAL, busy timeout, foreign keys, BEGIN IMMEDIATE for writes)."""
    import engine.calendar  # noqa: F401  (every table registered before migrations or queries run)
    import engine.models  # noqa: F401
    import engine.stock  # noqa: F401
    import engine.targets  # noqa: F401

    db.init_app(app)
    from engine import audit

    audit.install(db.session)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_connect)
            sa.event.listen(engine, "begin", _sqlite_begin)


def _sqlite_connect(dbapi_connection, _record):
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN instead of the driver
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn):
    # A write transaction takes SQLite's write lock up front, so two writers queue instead of one
    # failing mid-transaction when it tries to upgrade its read lock.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if getattr(_immediate, "on", False) else "BEGIN")


@contextmanager
def write_transaction():
    """One engine write: commits on success, rolls back everything on any error.

    Whatever the session had open is committed first, so the write starts a fresh transaction.
    StaleDataError (someone else updated the row first) becomes VersionConflict.
    """
    from engine import alarm
    from engine.errors import VersionConflict

    session = db.session
    session.commit()
    _immediate.on = True
    try:
        yield session
        session.commit()
    except StaleDataError:
        session.rollback()
        alarm.discard(session)
        raise VersionConflict("the instance was changed by someone else; reload and try again") from None
    except BaseException:
        session.rollback()
        alarm.discard(session)
        raise
    finally:
        _immediate.on = False
    alarm.after_commit(session)


def in_ids(column, ids):
    """`column IN ids` for many ids: one array parameter on PostgreSQL (thousands of separate parameters cost
    more to send than the lookup costs to run)."""
    if db.engine.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(ids), type_=ARRAY(sa.Integer)))
    return column.in_(ids)
