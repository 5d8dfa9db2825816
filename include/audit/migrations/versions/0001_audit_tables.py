"""Audit tables: rebalance_runs, intent_orders, order_events, consistency_results.

Revision ID: 0001_audit_tables
Revises:
Create Date: 2026-08-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_audit_tables"
down_revision = None
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rebalance_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_key", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("algorithm_id", sa.String(128), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("snapshot_sha256", sa.String(64), nullable=True),
        sa.Column("intent_sha256", sa.String(64), nullable=True),
        sa.Column("params_sha256", sa.String(64), nullable=True),
        sa.Column("config_sha256", sa.String(64), nullable=True),
        sa.Column("manifest", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("airflow_dag_run_id", sa.String(250), nullable=True),
        sa.Column("airflow_task_id", sa.String(250), nullable=True),
        sa.Column("airflow_try_number", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dag_id", "run_key", name="uq_rebalance_runs_dag_run_key"),
        sa.CheckConstraint("mode IN ('backtest', 'live')", name="ck_rebalance_runs_mode"),
        sa.CheckConstraint("runtime IN ('docker', 'local')", name="ck_rebalance_runs_runtime"),
    )
    op.create_table(
        "intent_orders",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("rebalance_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rebalance_date", sa.Date(), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.UniqueConstraint("run_id", "rebalance_date", "symbol", name="uq_intent_orders_run_date_symbol"),
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name="ck_intent_orders_side"),
    )
    op.create_table(
        "order_events",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("rebalance_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("algorithm_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_event_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("symbol_value", sa.String(32), nullable=False),
        sa.Column("symbol_permtick", sa.String(32), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("fill_price", sa.Float(), nullable=False),
        sa.Column("fill_price_currency", sa.String(8), nullable=False),
        sa.Column("fill_quantity", sa.Float(), nullable=False),
        sa.Column("fee_amount", sa.Float(), nullable=True),
        sa.Column("fee_currency", sa.String(8), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("is_assignment", sa.Boolean(), nullable=False),
        sa.Column("is_in_the_money", sa.Boolean(), nullable=False),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("extras", sa.JSON(none_as_null=True), nullable=True),
        sa.Column(
            "intent_order_id", sa.Integer(), sa.ForeignKey("intent_orders.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("source_file", sa.String(255), nullable=False),
        sa.UniqueConstraint("run_id", "order_id", "order_event_id", name="uq_order_events_run_order_event"),
    )
    op.create_index("ix_order_events_run_symbol", "order_events", ["run_id", "symbol_value"])
    op.create_table(
        "consistency_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("rebalance_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("verdict IN ('pass', 'warn', 'fail')", name="ck_consistency_results_verdict"),
    )
    op.create_index("ix_consistency_results_run", "consistency_results", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_consistency_results_run", table_name="consistency_results")
    op.drop_table("consistency_results")
    op.drop_index("ix_order_events_run_symbol", table_name="order_events")
    op.drop_table("order_events")
    op.drop_table("intent_orders")
    op.drop_table("rebalance_runs")
