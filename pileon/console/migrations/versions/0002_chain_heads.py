"""The chain heads the pages carried (``evidence.heads``), checked on the incident page.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pileon.console.db import UTCDateTime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "chain_heads",
        sa.Column("idempotency_key", sa.String(256), primary_key=True),
        sa.Column("incident_id", sa.String(128), nullable=False, index=True),
        sa.Column("person", sa.String(63), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chain_heads")
