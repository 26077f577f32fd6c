"""stock lists per store: every SKU a store stocks (name, unit cost), imported from CSV / Excel

Revision ID: e5b8d2c7a913
Revises: e13ca1a7d2f0
Create Date: 2026-12-02 18:00:00

"""
import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = 'e5b8d2c7a913'
down_revision = 'e13ca1a7d2f0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stock_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('sku', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('unit_cost', sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column('loaded_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_unit_id', 'sku', name='uq_stock_items_unit_sku'),
    )
    op.create_index('ix_stock_items_org_unit_id', 'stock_items', ['org_unit_id'])


def downgrade():
    op.drop_index('ix_stock_items_org_unit_id', table_name='stock_items')
    op.drop_table('stock_items')
