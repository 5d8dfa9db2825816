"""Unmodified Lean regression algorithms through the local runtime vs their published ExpectedStatistics.

Needs a Lean checkout (a normal directory with ``Data/`` and ``Algorithm.Python/``, and for the Sharpe ratio's
risk-free rate ``Data/alternative/interest-rate``) in ``LEAN_REPO_DIR``. Nothing of Lean is stored in this repo.
Expected figures are those of ``Algorithm.CSharp/<Name>.cs`` ExpectedStatistics at Lean 24863901deff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.include.lean_local.helpers import run_inprocess

LEAN = os.environ.get("LEAN_REPO_DIR")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LEAN, reason="set LEAN_REPO_DIR to a Lean checkout (Data/ + Algorithm.Python/)"),
]

# name: (total orders, end equity, total fees, extra exact statistics)
EXPECTED: dict[str, tuple[int, float, float, dict[str, str]]] = {
    # one order
    "BasicTemplateDailyAlgorithm": (
        1,
        104486.22,
        3.49,
        {
            "Sharpe Ratio": "17.304",
            "Drawdown": "0.800%",
            "Compounding Annual Return": "424.375%",
            "Portfolio Turnover": "10.01%",
            "Net Profit": "4.486%",
        },
    ),
    # several symbols, delisting warning -> liquidation, order on a delisted security rejected
    "DelistingEventsAlgorithm": (
        2,
        94421.6,
        36.70,
        {"Sharpe Ratio": "-5.495", "Drawdown": "5.600%", "Portfolio Turnover": "18.33%"},
    ),
    # many orders with liquidations, indicator composition
    "DisplacedMovingAverageRibbon": (
        7,
        253075.04,
        49.40,
        {
            "Sharpe Ratio": "1.05",
            "Drawdown": "12.400%",
            "Compounding Annual Return": "16.731%",
            "Win Rate": "100%",
            "Average Win": "19.17%",
        },
    ),
    # many orders (MACD crossings, liquidate). The 85th order exists because of a dividend: on 2005-03-18
    # 00:00 Lean runs on_data for SPY's ex-dividend slice while the 2005-03-17 liquidation (a market-on-open
    # order) is still open, so liquidate() cancels it and submits it again.
    "MACDTrendAlgorithm": (
        85,
        137751.04,
        468.54,
        {"Sharpe Ratio": "0.029", "Drawdown": "34.900%", "Win Rate": "57%", "Portfolio Turnover": "2.09%"},
    ),
}


def _run(name: str, tmp_path: Path) -> dict[str, Any]:
    assert LEAN is not None
    repo = Path(LEAN)
    cfg = {
        "environment": "backtesting",
        "algorithm-location": str(repo / "Algorithm.Python" / f"{name}.py"),
        "algorithm-id": name,
        "data-folder": str(repo / "Data"),
        "results-destination-folder": str(tmp_path / "results"),
        "object-store-root": str(tmp_path / "storage"),
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert run_inprocess(path) == 0, (tmp_path / "results" / "log.txt").read_text()[-3000:]
    stats: dict[str, Any] = json.loads((tmp_path / "results" / f"{name}-summary.json").read_text())["statistics"]
    return stats


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_regression_statistics(name: str, tmp_path: Path) -> None:
    orders, end_equity, fees, exact = EXPECTED[name]
    stats = _run(name, tmp_path)
    assert float(stats["End Equity"]) == pytest.approx(end_equity, rel=0.005)
    assert float(stats["Total Fees"].lstrip("$")) == pytest.approx(fees, rel=0.05)
    for key, value in exact.items():
        assert stats[key] == value, key
    assert int(stats["Total Orders"]) == orders
