"""The case database: users, sessions, incidents, alert events, notes, reports, silences,
audit and feed offsets.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pileon.console.db import UTCDateTime

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("persons", sa.JSON(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("person", sa.String(63), nullable=False, index=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("assessment", sa.String(32), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence_from", UTCDateTime(), nullable=False),
        sa.Column("evidence_to", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("disposition", sa.String(32), nullable=True),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "alert_events",
        sa.Column("idempotency_key", sa.String(256), primary_key=True),
        sa.Column("incident_id", sa.String(128),
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )
    for name, columns in {
        "notes": [sa.Column("author", sa.String(128), nullable=False),
                  sa.Column("at", UTCDateTime(), nullable=False),
                  sa.Column("text", sa.Text(), nullable=False)],
        "reports": [sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("recipient", sa.String(200), nullable=False),
                    sa.Column("reference", sa.String(200), nullable=False),
                    sa.Column("by", sa.String(128), nullable=False),
                    sa.Column("at", UTCDateTime(), nullable=False)],
        "silences": [sa.Column("alertmanager", sa.String(500), nullable=False),
                     sa.Column("silence_id", sa.String(100), nullable=False),
                     sa.Column("ends_at", UTCDateTime(), nullable=False)],
    }.items():
        op.create_table(
            name,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("incident_id", sa.String(128),
                      sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False,
                      index=True),
            *columns,
        )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(128), nullable=True, index=True),
        sa.Column("person", sa.String(63), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_table(
        "feed_offsets",
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for name in ("feed_offsets", "audit", "silences", "reports", "notes", "alert_events",
                 "incidents", "login_failures", "sessions", "users"):
        op.drop_table(name)
