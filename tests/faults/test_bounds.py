"""Bounds on execution params (issue #18): a quantity no account can hold (``min_qty=1e12``), a fee
above the notional or slippage of the whole price is refused with its reason, by the contract, by
the algorithm's own reader and by the trigger form; and params at the bounds never make the order
build (or the engine around it) loop for hours."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from algorithms import execution_rules
from algorithms.execution_rules import PlannedOrder, build_orders, trim_buys_to_cash, validate_params
from include.contracts.forms import execution_params_form
from include.contracts.params import MAX_FEE_BPS, MAX_SHARES, MAX_SLIPPAGE_BPS, parse_execution_params
from include.errors import ExecutionParamsError
from include.pipeline import run_chain
from tests.faults.helpers import EXECUTION, range_request, run_engine

# (field, value, words of the reason the error must give)
OVER_THE_BOUNDS = [
    ("min_qty", 10**12, "at most 1,000,000,000 shares"),
    ("min_qty", MAX_SHARES + 1, "at most 1,000,000,000 shares"),
    ("lot_size", 10**12, "at most 1,000,000,000 shares"),
    ("fee_bps", 1e6, "at most 10,000 bps (100% of the notional)"),
    ("fee_bps", MAX_FEE_BPS + 0.5, "at most 10,000 bps"),
    ("slippage_open_bps", MAX_SLIPPAGE_BPS, "below 10,000 bps (100% of the price)"),
    ("slippage_close_bps", 1e9, "below 10,000 bps"),
    ("cash_buffer_ratio", 1.0, "less than 1"),
]


@pytest.mark.parametrize(("field", "value", "reason"), OVER_THE_BOUNDS)
def test_params_over_what_an_account_can_hold_are_refused_naming_field_value_and_reason(
    field: str, value: Any, reason: str
) -> None:
    with pytest.raises(ExecutionParamsError) as info:
        parse_execution_params({field: value})
    (problem,) = info.value.problems
    assert problem.startswith(f"{field}={value!r}: "), problem
    assert reason in problem, problem
    # The algorithm reads the file without pydantic (inside the Lean image): it refuses the same.
    with pytest.raises(ValueError, match=rf"params\.{field}="):
        validate_params({field: value})


def test_params_at_the_bounds_are_accepted_by_both_readers() -> None:
    at_bounds = {
        "min_qty": MAX_SHARES,
        "lot_size": MAX_SHARES,
        "fee_bps": MAX_FEE_BPS,
        "slippage_open_bps": math.nextafter(MAX_SLIPPAGE_BPS, 0.0),
        "slippage_close_bps": 9_999.0,
        "cash_buffer_ratio": 0.99,
    }
    parsed = parse_execution_params(at_bounds)
    assert parsed.min_qty == MAX_SHARES and parsed.lot_size == MAX_SHARES
    assert validate_params(at_bounds)["min_qty"] == MAX_SHARES


def test_the_trigger_form_carries_the_bounds() -> None:
    form = execution_params_form()
    assert form["min_qty"]["maximum"] == form["lot_size"]["maximum"] == MAX_SHARES
    assert form["fee_bps"]["maximum"] == MAX_FEE_BPS
    assert form["slippage_open_bps"]["exclusiveMaximum"] == form["slippage_close_bps"]["exclusiveMaximum"]
    assert form["cash_buffer_ratio"]["exclusiveMaximum"] == 1.0


# ------------------------------------------------------------------ the order build stays fast


class _CostBudget:
    """Counts the fee computations of the order build; raises once the one-lot-at-a-time trim would
    have been used (it computed the cost of every lot it removed: 1e9 of them for a 1e9-share buy)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int = 10_000) -> None:
        self.calls = 0
        real = execution_rules.FeeRule.fee

        def counted(rule: execution_rules.FeeRule, quantity: float, price: float) -> float:
            self.calls += 1
            if self.calls > limit:
                raise AssertionError(f"the order build computed {self.calls} costs: it removes one lot at a time")
            return real(rule, quantity, price)

        monkeypatch.setattr(execution_rules.FeeRule, "fee", counted)


def _params(**changes: Any) -> dict[str, Any]:
    return validate_params({**EXECUTION, "fee_bps": 1.0, **changes})


@pytest.mark.parametrize("lot", [1, 7, 100])
def test_a_min_qty_at_the_bound_costs_a_few_steps_not_one_per_share(monkeypatch: pytest.MonkeyPatch, lot: int) -> None:
    budget = _CostBudget(monkeypatch)
    params = _params(min_qty=MAX_SHARES, lot_size=lot)
    orders = build_orders(
        weights={"AAA": 0.5, "BBB": 0.3},
        prices={"AAA": 123.45, "BBB": 3.21},
        holdings={},
        cash=100_000.0,
        portfolio_value=100_000.0,
        params=params,
    )
    assert orders == []  # a billion-share minimum never fits 100k of cash: both buys are dropped
    assert budget.calls < 100


def _one_lot_at_a_time(orders: list[PlannedOrder], *, cash: float, portfolio_value: float, params: Any) -> list[Any]:
    """The trim as it was: remove one lot at a time until the buy fits (the reference)."""
    lot, minimum = params["lot_size"], math.ceil(params["min_qty"] / params["lot_size"]) * params["lot_size"]
    fee = execution_rules.FeeRule(params["fee_bps"])
    slippage = execution_rules.SlippageRule(params["slippage_open_bps"], params["slippage_close_bps"])
    available = cash - params["cash_buffer_ratio"] * portfolio_value
    kept: list[Any] = []
    for order in [o for o in orders if o.quantity < 0]:
        price = slippage.fill_price(order.reference_price, order.quantity, at_open=False)
        available += -order.quantity * price - fee.fee(order.quantity, price)
        kept.append(order.quantity)
    for order in [o for o in orders if o.quantity > 0]:
        price = slippage.fill_price(order.reference_price, order.quantity, at_open=False)
        quantity = order.quantity
        while quantity > 0 and quantity * price + fee.fee(quantity, price) > available:
            quantity -= lot
        if quantity < minimum:
            continue
        available -= quantity * price + fee.fee(quantity, price)
        kept.append(quantity)
    return kept


def test_the_fast_trim_keeps_exactly_what_the_one_lot_loop_kept() -> None:
    rng = random.Random(18)
    for _ in range(3_000):
        lot = rng.choice([1, 1, 2, 5, 10, 100])
        params = _params(
            lot_size=lot,
            min_qty=rng.choice([1, lot, 3 * lot, 250]),
            fee_bps=rng.choice([0.0, 1.0, 25.0, 10_000.0]),
            slippage_close_bps=rng.choice([0.0, 1.0, 50.0]),
            cash_buffer_ratio=rng.choice([0.0, 0.02, 0.5]),
        )
        orders = [
            PlannedOrder(f"S{i}", rng.choice([-1, 1]) * rng.randint(1, 3_000) * lot, rng.uniform(0.5, 900.0), 0.1, 0.0)
            for i in range(rng.randint(1, 5))
        ]
        cash = rng.choice([0.0, 50.0, rng.uniform(0.0, 300_000.0)])
        value = cash + rng.uniform(0.0, 200_000.0)
        fast = [o.quantity for o in trim_buys_to_cash(orders, cash=cash, portfolio_value=value, params=params)]
        assert fast == _one_lot_at_a_time(orders, cash=cash, portfolio_value=value, params=params), (orders, params)


def test_the_engine_finishes_a_backtest_with_params_at_the_bounds(tmp_path: Path) -> None:
    """End to end on the local runtime: a billion-share minimum and lot used to keep the engine busy for
    hours per symbol; now the run ends (no order fits the account) well within a generous timeout."""
    request = range_request(execution={**EXECUTION, "min_qty": MAX_SHARES, "lot_size": 1}, root=tmp_path / "artifacts")
    folder = run_chain(request, until="write_params").folder
    run_engine(folder, timeout_s=240)
    # Lean writes no events file when no order was placed; its summary says the run completed.
    assert not (folder.results_dir / f"{folder.run_key}-order-events.json").exists()
    summary = json.loads((folder.results_dir / f"{folder.run_key}-summary.json").read_text(encoding="utf-8"))
    assert summary["state"]["Status"] == "Completed"
