"""work_item_cycles: cycle time and flow efficiency may be null

DESIGN §5: items that never entered an active status are throughput but have no cycle time
or flow efficiency; efficiency is null when active + wait is zero.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_item_cycles") as batch:
        batch.alter_column("cycle_time_days", existing_type=sa.Numeric(), nullable=True)
        batch.alter_column("flow_efficiency_pct", existing_type=sa.Numeric(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("work_item_cycles") as batch:
        batch.alter_column("cycle_time_days", existing_type=sa.Numeric(), nullable=False)
        batch.alter_column("flow_efficiency_pct", existing_type=sa.Numeric(), nullable=False)
