"""indexes that keep reports flat as history grows: open instances by due time, audit events by time

Revision ID: a1c4e2f9b7d3
Revises: 7e0ecff095d8
Create Date: 2026-11-27 06:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a1c4e2f9b7d3'
down_revision = '7e0ecff095d8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_instances_open_due', 'instances', ['due_at'], postgresql_where=sa.text('closed_at IS NULL'),
                    sqlite_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_audit_events_created_at', 'audit_events', ['created_at'])


def downgrade():
    op.drop_index('ix_audit_events_created_at', table_name='audit_events')
    op.drop_index('ix_instances_open_due', table_name='instances')
