"""The calibration every replica serves, per model version

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("calibration_version", sa.String(128), nullable=False),
        sa.Column("knots", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
