"""credentials that end: API tokens expire, users carry a session generation

Revision ID: c4f1e7a2d9b6
Revises: b7e3d1a5c9f2
Create Date: 2026-11-28 09:00:00

"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = 'c4f1e7a2d9b6'
down_revision = 'b7e3d1a5c9f2'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
    op.add_column('api_tokens', sa.Column('expires_at', sa.DateTime(), nullable=True))
    # Tokens issued before expiry existed get the default lifetime from now (stored as naive UTC, like UTCDateTime).
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(tzinfo=None)
    op.execute(sa.text("UPDATE api_tokens SET expires_at = :expires").bindparams(expires=expires))
    with op.batch_alter_table('api_tokens') as batch:  # no other table refers to api_tokens: SQLite may copy it
        batch.alter_column('expires_at', existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('expires_at')
    op.drop_column('users', 'session_generation')
