"""Attempts of a run: a re-run with changed inputs supersedes the current attempt (issue #18).

``rebalance_runs`` gains ``attempt``, ``inputs_sha256`` and ``superseded_at``; the unique key
(dag_id, run_key) becomes a partial unique index over the current attempts, so a superseded
attempt keeps its row, intent orders, events and check results as history.

Revision ID: 0002_run_attempts
Revises: 0001_audit_tables
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_run_attempts"
down_revision = "0001_audit_tables"
branch_labels = None
depends_on = None

_CURRENT = sa.text("superseded_at IS NULL")


def upgrade() -> None:
    # SQLite drops the old unique constraint by copying the table (batch mode); the migration
    # environment switches foreign keys off around it, so the copy cascades nothing.
    with op.batch_alter_table("rebalance_runs") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("inputs_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("uq_rebalance_runs_dag_run_key", type_="unique")
    op.create_index(
        "uq_rebalance_runs_current_attempt",
        "rebalance_runs",
        ["dag_id", "run_key"],
        unique=True,
        sqlite_where=_CURRENT,
        postgresql_where=_CURRENT,
    )
    op.create_index(
        "uq_rebalance_runs_dag_run_key_attempt", "rebalance_runs", ["dag_id", "run_key", "attempt"], unique=True
    )


def downgrade() -> None:
    # Superseded attempts cannot live under the old key: they go, with their rows (CASCADE).
    # Children first: SQLite migrates with foreign keys off, so no CASCADE would reach them.
    superseded = "SELECT id FROM rebalance_runs WHERE superseded_at IS NOT NULL"
    for table in ("consistency_results", "order_events", "intent_orders"):
        op.execute(sa.text(f"DELETE FROM {table} WHERE run_id IN ({superseded})"))
    op.execute(sa.text("DELETE FROM rebalance_runs WHERE superseded_at IS NOT NULL"))
    op.drop_index("uq_rebalance_runs_dag_run_key_attempt", table_name="rebalance_runs")
    op.drop_index("uq_rebalance_runs_current_attempt", table_name="rebalance_runs")
    with op.batch_alter_table("rebalance_runs") as batch:
        batch.create_unique_constraint("uq_rebalance_runs_dag_run_key", ["dag_id", "run_key"])
        batch.drop_column("superseded_at")
        batch.drop_column("inputs_sha256")
        batch.drop_column("attempt")
