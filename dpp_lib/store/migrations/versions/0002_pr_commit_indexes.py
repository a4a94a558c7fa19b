"""pr_events: index commits per repository for deploy -> PR linking

The worker finds the PR a deploy ships by its merge or head commit; without an index on
head_sha every deploy scanned pr_events (the ingestion benchmark's worker spent 85 % of its
time there).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_pr_events_merge_commit_sha"), table_name="pr_events")
    op.create_index(
        op.f("ix_pr_events_repo_id_merge_commit_sha"),
        "pr_events",
        ["repo_id", "merge_commit_sha"],
        unique=False,
    )
    op.create_index(
        op.f("ix_pr_events_repo_id_head_sha"), "pr_events", ["repo_id", "head_sha"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pr_events_repo_id_head_sha"), table_name="pr_events")
    op.drop_index(op.f("ix_pr_events_repo_id_merge_commit_sha"), table_name="pr_events")
    op.create_index(
        op.f("ix_pr_events_merge_commit_sha"), "pr_events", ["merge_commit_sha"], unique=False
    )
