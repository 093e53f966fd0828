"""Responders' dispositions on their way to the detector (an outbox of ``pileon.verdict/v1``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pileon.console.db import UTCDateTime

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(128), sa.ForeignKey("incidents.id"), nullable=False,
                  index=True),
        sa.Column("person", sa.String(63), nullable=False),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("verdicts")
