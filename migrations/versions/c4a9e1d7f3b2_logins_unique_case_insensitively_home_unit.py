"""logins unique case-insensitively; users carry the unit that answers for them while they hold no role

Revision ID: c4a9e1d7f3b2
Revises: c4f1e7a2d9b6
Create Date: 2026-11-28 09:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'c4a9e1d7f3b2'
down_revision = 'c4f1e7a2d9b6'
branch_labels = None
depends_on = None


def upgrade():
    # Logins that differ only in case are two accounts for what every person reads as one name. Merging them
    # is a decision about people, not a migration's: refuse, naming them, and let an administrator rename one.
    clashes = op.get_bind().execute(sa.text(
        "SELECT lower(login), count(*) FROM users GROUP BY lower(login) HAVING count(*) > 1 ORDER BY 1")).all()
    if clashes:
        raise RuntimeError("logins that differ only in upper/lower case: "
                           + ", ".join(f"{login} ({n} users)" for login, n in clashes)
                           + " — rename all but one of each (UPDATE users SET login = ...) and migrate again")
    op.create_index('uq_users_login_lower', 'users', [sa.text('lower(login)')], unique=True)
    # A plain ADD COLUMN (no table copy: SQLite would refuse to copy a table other tables refer to). Existing
    # people without a role get NULL: only the company's administrators see them, as before for nobody less.
    if op.get_bind().dialect.name == 'sqlite':  # SQLite adds a column with a reference, but not a constraint
        op.execute('ALTER TABLE users ADD COLUMN home_unit_id INTEGER REFERENCES org_units (id)')
    else:
        op.add_column('users', sa.Column('home_unit_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_users_home_unit', 'users', 'org_units', ['home_unit_id'], ['id'])


def downgrade():
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_users_home_unit', 'users', type_='foreignkey')
    op.drop_column('users', 'home_unit_id')
    op.drop_index('uq_users_login_lower', table_name='users')
