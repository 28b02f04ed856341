"""Config revisions, the head pointer, and the rate-limiting `cluster` counters.

Revision ID: 0001
Revises: (none)

The DDL is written out here, not imported from the store's table definitions: a migration
must keep creating what it created when it shipped. Tables that the pre-Alembic embedded
store or the rate-limiting plugin already created in `<prefix>/tollway.db` (same columns)
are adopted, not recreated, so an existing node keeps its history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    if "config_revisions" not in existing:
        op.create_table(
            "config_revisions",
            sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("hash", sa.String(32), nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("author", sa.Text),
            sa.Column("message", sa.Text),
            # the normalised Config.entities as canonical JSON
            sa.Column("entities", sa.Text, nullable=False),
        )
    # One row (id 1): the latest revision and its hash. A writer locks this row, so the
    # If-Match check and the insert are one serialised step on every backend.
    head = op.create_table(
        "config_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.Integer),
        sa.Column("hash", sa.String(32)),
    )
    latest = bind.execute(sa.text(
        "SELECT revision, hash FROM config_revisions ORDER BY revision DESC LIMIT 1")).first()
    op.bulk_insert(head, [{"id": 1, "revision": latest[0] if latest else None,
                           "hash": latest[1] if latest else None}])
    if "ratelimiting_metrics" not in existing:
        # Kong's table and primary key; `ttl` is the epoch second after which the row is dead
        op.create_table(
            "ratelimiting_metrics",
            sa.Column("identifier", sa.Text, nullable=False),
            sa.Column("period", sa.Text, nullable=False),
            sa.Column("period_date", sa.BigInteger, nullable=False),
            sa.Column("service_id", sa.Text, nullable=False),
            sa.Column("route_id", sa.Text, nullable=False),
            sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("ttl", sa.BigInteger),
            sa.PrimaryKeyConstraint("identifier", "period", "period_date", "service_id",
                                    "route_id"),
        )
    op.create_index("ratelimiting_metrics_ttl_idx", "ratelimiting_metrics", ["ttl"])


def downgrade() -> None:
    op.drop_table("ratelimiting_metrics")
    op.drop_table("config_head")
    op.drop_table("config_revisions")
