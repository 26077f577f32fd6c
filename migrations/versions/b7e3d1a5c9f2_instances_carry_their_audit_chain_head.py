"""instances carry their audit chain head (the next event chains to it without reading the trail)

Revision ID: b7e3d1a5c9f2
Revises: a1c4e2f9b7d3
Create Date: 2026-11-27 06:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b7e3d1a5c9f2'
down_revision = 'a1c4e2f9b7d3'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD/DROP COLUMN (no table copy: SQLite would refuse to copy a table other tables refer to).
    op.add_column('instances', sa.Column('audit_hash', sa.String(length=64), nullable=True))
    op.execute("UPDATE instances SET audit_hash = (SELECT e.hash FROM audit_events e "
               "WHERE e.instance_id = instances.id ORDER BY e.seq DESC LIMIT 1)")


def downgrade():
    op.drop_column('instances', 'audit_hash')
