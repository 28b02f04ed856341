"""Entity timestamps stored with each revision.

Revision ID: 0003
Revises: 0002

`created_at` / `updated_at` of every entity (`tollway.controlplane.store.times`), as JSON
beside the revision's entities, so they survive a restart and every node of a cluster
reports the same ones. Revisions stored before have none (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("config_revisions", sa.Column("times", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("config_revisions") as batch:
        batch.drop_column("times")
