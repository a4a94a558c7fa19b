"""pr_cycles: the PR's merge and head commits (deploy → PR matching reads them there)

Backfilled from pr_events the way the projection computes them (the greatest non-null value
of the PR's events), so existing databases need no rebuild.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pr_cycles") as batch:
        batch.add_column(sa.Column("merge_commit_sha", sa.String(64), nullable=True))
        batch.add_column(sa.Column("head_sha", sa.String(64), nullable=True))
    for column in ("merge_commit_sha", "head_sha"):
        op.execute(
            f"UPDATE pr_cycles SET {column} = (SELECT max(e.{column}) FROM pr_events e"
            " WHERE e.repo_id = pr_cycles.repo_id AND e.pr_number = pr_cycles.pr_number"
            f" AND e.{column} <> '')"
        )


def downgrade() -> None:
    with op.batch_alter_table("pr_cycles") as batch:
        batch.drop_column("head_sha")
        batch.drop_column("merge_commit_sha")
