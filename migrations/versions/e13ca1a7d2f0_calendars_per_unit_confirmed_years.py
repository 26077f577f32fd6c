"""calendars per unit: store closures, confirmed statutory years, imported official lists

Revision ID: e13ca1a7d2f0
Revises: c4a9e1d7f3b2
Create Date: 2026-12-02 18:00:00

"""
import sqlalchemy as sa
from alembic import op

import engine.db

revision = 'e13ca1a7d2f0'
down_revision = 'c4a9e1d7f3b2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('calendar_years',
                    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
                    sa.Column('source', sa.String(length=16), nullable=False),
                    sa.Column('confirmed_by', sa.String(length=64), nullable=False),
                    sa.Column('confirmed_at', engine.db.UTCDateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('year'))
    op.create_table('statutory_days',
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('working', sa.Boolean(), nullable=False),
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.PrimaryKeyConstraint('day'))
    op.create_table('unit_closures',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('org_unit_id', sa.Integer(), nullable=False),
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('closed_from', sa.Time(), nullable=True),
                    sa.Column('closed_until', sa.Time(), nullable=True),
                    sa.Column('note', sa.String(length=200), nullable=False),
                    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('org_unit_id', 'day', name='uq_unit_closures_day'))
    op.create_index(op.f('ix_unit_closures_org_unit_id'), 'unit_closures', ['org_unit_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_unit_closures_org_unit_id'), table_name='unit_closures')
    op.drop_table('unit_closures')
    op.drop_table('statutory_days')
    op.drop_table('calendar_years')
