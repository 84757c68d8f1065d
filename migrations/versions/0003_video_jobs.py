"""Stored-video jobs and their results

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "video_jobs",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False, unique=True),
        sa.Column("api", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("frames_done", sa.BigInteger(), nullable=False),
        sa.Column("video_metadata", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_video_jobs_status_pk", "video_jobs", ["status", "pk"])
    op.create_table(
        "video_results",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "job_pk",
            Id,
            sa.ForeignKey("video_jobs.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("by_time", sa.Integer(), nullable=False),
        sa.Column("by_index", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_video_results_job_by_time", "video_results", ["job_pk", "by_time"])
    op.create_index("ix_video_results_job_by_index", "video_results", ["job_pk", "by_index"])


def downgrade() -> None:
    op.drop_table("video_results")
    op.drop_table("video_jobs")
