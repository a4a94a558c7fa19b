"""pulse_aggregates: averages, team size and response rate may be null

DESIGN §5: a period with fewer than 3 responses has its averages withheld (suppressed); a
stream without a configured team size has no response rate.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = {
    "pace_avg": sa.Numeric(),
    "tooling_avg": sa.Numeric(),
    "clarity_avg": sa.Numeric(),
    "overall_avg": sa.Numeric(),
    "team_size": sa.Integer(),
    "response_rate_pct": sa.Numeric(),
}


def upgrade() -> None:
    with op.batch_alter_table("pulse_aggregates") as batch:
        for name, type_ in COLUMNS.items():
            batch.alter_column(name, existing_type=type_, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("pulse_aggregates") as batch:
        for name, type_ in COLUMNS.items():
            batch.alter_column(name, existing_type=type_, nullable=False)
