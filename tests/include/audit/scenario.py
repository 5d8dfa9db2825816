"""A run folder around the hand-written Lean event fixtures (rebalance 2021-03-30).

A run folder's algorithm id is its run key, and the fixtures' events carry algorithm id
``1234567890``: so that is the run key here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from include.audit.ingest import IngestSummary, ingest_and_record_run
from include.contracts.intent import write_order_intent
from include.contracts.params import ExecutionParams, write_execution_params
from include.run_folder import RunFolder, RunRef
from tests.lean_data_factory import write_daily_zip

FIXTURES = Path(__file__).with_name("fixtures")
ALGORITHM_ID = "1234567890"
REBALANCE = dt.date(2021, 3, 30)
RUN_KEY = ALGORITHM_ID
DAG_ID = "audit_test_dag"
PARAMS: dict[str, Any] = {
    "lot_size": 1,
    "min_qty": 1,
    "cash_buffer_ratio": 0.0,
    "fee_bps": 1.0,
    "slippage_open_bps": 5.0,
    "slippage_close_bps": 5.0,
}
# Reference closes on 2021-03-29 and opens on 2021-03-30.
BARS = {
    "SPY": [(dt.date(2021, 3, 29), 399.0, 401.0, 398.0, 400.0, 1000), (REBALANCE, 401.0, 403.0, 400.0, 402.0, 1000)],
    "AAPL": [(dt.date(2021, 3, 29), 99.0, 101.0, 98.0, 100.0, 1000), (REBALANCE, 100.0, 101.0, 99.0, 100.5, 1000)],
    "QQQ": [(dt.date(2021, 3, 29), 299.0, 301.0, 298.0, 300.0, 1000), (REBALANCE, 340.0, 341.0, 335.0, 338.0, 1000)],
    "IBM": [(dt.date(2021, 3, 29), 129.0, 131.0, 128.0, 130.0, 1000), (REBALANCE, 130.0, 131.0, 129.0, 130.0, 1000)],
}
WEIGHTS = {"SPY": 0.5, "QQQ": 0.45, "AAPL": 0.0}
START = {"cash": 50_000.0, "holdings": {"AAPL": {"quantity": 100, "average_price": 95.0}}}


@dataclass(frozen=True)
class Planned:
    symbol: str
    quantity: int
    reference_price: float


def reference_build_orders(
    *,
    weights: Mapping[str, float],
    prices: Mapping[str, float],
    holdings: Mapping[str, float],
    cash: float,
    portfolio_value: float,
    params: ExecutionParams,
) -> Sequence[Planned]:
    """A plain stand-in for algorithms.execution_rules.build_orders (floor to lots, sells for dropped holdings)."""
    out = []
    for symbol in sorted(set(weights) | set(holdings)):
        price = prices[symbol]
        budget = weights.get(symbol, 0.0) * portfolio_value * (1 - params.cash_buffer_ratio)
        target = math.floor(budget / price / params.lot_size) * params.lot_size
        delta = int(target - holdings.get(symbol, 0.0))
        if abs(delta) >= params.min_qty and delta != 0:
            out.append(Planned(symbol, delta, price))
    return out


def make_run(tmp_path: Path, results_fixture: str, *, weights: Mapping[str, float] = WEIGHTS) -> RunFolder:
    folder = RunFolder.create(RunRef(DAG_ID, RUN_KEY), root=tmp_path / "artifacts")
    data = tmp_path / "data"
    for ticker, bars in BARS.items():
        write_daily_zip(data, ticker, bars)
    write_order_intent(
        output_dir=folder.path,
        run_key=RUN_KEY,
        rebalances={REBALANCE: [{"symbol": s, "weight": w} for s, w in weights.items()]},
        source="test",
    )
    write_execution_params(output_dir=folder.path, run_id=RUN_KEY, params=PARAMS)
    folder.initial_state_path.write_text(json.dumps(START), encoding="utf-8")
    algorithm = tmp_path / "algo" / "main.py"
    algorithm.parent.mkdir()
    algorithm.write_text("# algorithm under audit\n", encoding="utf-8")
    config = {
        "environment": "backtesting",
        "algorithm-id": ALGORITHM_ID,
        "algorithm-location": str(algorithm),
        "data-folder": str(data),
        "parameters": {"starting-cash": "50000", "initial-state-path": "/Files/initial_state.json"},
        "environments": {"backtesting": {"live-mode": False}},
    }
    folder.config_path.write_text(json.dumps(config), encoding="utf-8")
    folder.snapshots_path.write_text("{}\n", encoding="utf-8")
    shutil.copytree(FIXTURES / results_fixture / "results", folder.results_dir)
    return folder


def ingest(folder: RunFolder, engine: Engine) -> IngestSummary:
    """What the DAG's ingest_events task stores for the run folder (and its manifest.json)."""
    return ingest_and_record_run(engine, folder)
