"""The migrations build exactly the schema the models describe; configuration comes from the environment."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import config
from engine.db import db


# SQLite's reflection cannot read the index on lower(login); PostgreSQL's can and compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index:UserWarning")
def test_migrated_schema_matches_the_models(ctx):
    # The session fixture built this database (SQLite or PostgreSQL) from empty with `flask db upgrade`.
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        config.from_env({"SIGNOFF_ENV": "production", "SIGNOFF_INSTANCE": str(tmp_path)})
    assert config.from_env({"SIGNOFF_ENV": "production", "SECRET_KEY": "k"}).SECRET_KEY == "k"


def test_defaults_need_no_services(tmp_path):
    cfg = config.from_env({"SIGNOFF_INSTANCE": str(tmp_path)})
    assert cfg.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path}/signoff.db"
    assert cfg.REDIS_URL == "" and cfg.TIMEZONE == "Asia/Shanghai"
    assert cfg.SECRET_KEY == config.from_env({"SIGNOFF_INSTANCE": str(tmp_path)}).SECRET_KEY  # kept, not regenerated
    pg = config.from_env({"DATABASE_URL": "postgresql://root@localhost/test", "SECRET_KEY": "k"})
    assert pg.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://root@localhost/test"
    with pytest.raises(RuntimeError, match="SIGNOFF_ENV"):
        config.from_env({"SIGNOFF_ENV": "prod"})
