"""The cluster heartbeat table: one row per node sharing the database.

Revision ID: 0002
Revises: 0001

Every node upserts its row about once a second (`tollway.controlplane.store.cluster`), so
`GET /cluster/nodes` shows which nodes are alive and which revision each one serves.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("hostname", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("applied_revision", sa.Integer),
        sa.Column("applied_hash", sa.String(32)),
    )


def downgrade() -> None:
    op.drop_table("cluster_nodes")
