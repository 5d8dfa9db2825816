"""Lean algorithm: hold the backend's target weights, applying our execution rules in Lean.

Inputs (launcher config ``parameters``):
* ``execution-intent-path``: the order intent (dated rebalances of symbol weights);
* ``execution-params-path``: min_qty, lot_size, cash_buffer_ratio, fee_bps, slippage bps, risk_overrides;
* optional ``starting-cash`` (default 100000), ``start-date`` / ``end-date`` (default: seven days
  before the first rebalance .. the last rebalance; a continued account starts on the first
  rebalance, after one warm-up bar), ``initial-state-path`` (a previous run's final account, to
  continue it) and ``final-state-path`` (where to write this run's).

Timing: in a backtest a rebalance dated D is sized on prices known before D's open (the last
daily close) and sent one minute after the open; on daily-only data Lean turns these intraday
market orders into MarketOnClose orders (QCAlgorithm.MarketOrder, backtest only), so they fill
at D's close. A live run trades when D's daily bar arrives after the close (``on_data``), with
plain market orders at that price. Both fill at D's close. Sells go first. Fees (fee_bps x notional) and
slippage (open/close bps against the order side) come from models attached by the security
initializer, so every security gets them, in backtest and live alike.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from typing import Any

try:
    from AlgorithmImports import *

    QCAlgorithm  # noqa: B018 - raises NameError under quantconnect-stubs' empty namespace package
except NameError:  # imported outside any Lean runtime (unit tests): use the embedded runtime's API
    from include.lean_local.shim.AlgorithmImports import *

try:  # imported as a package module (the local runtime with the repo on sys.path, tests, the audit)
    from algorithms import execution_rules as rules
except ImportError:  # inside Lean: only the algorithm folder (/LeanCLI) is on sys.path
    import execution_rules as rules  # type: ignore[import-not-found,no-redef]

FeeRule = rules.FeeRule
SlippageRule = rules.SlippageRule
apply_execution_constraints = rules.apply_execution_constraints
build_orders = rules.build_orders
load_intent = rules.load_intent
load_params = rules.load_params

EXECUTED_KEY = "lean-airflow/executed-rebalances"
FINAL_STATE_KEY = "lean-airflow/final-state.json"


def _apply_execution_constraints(*, raw_qty: float, lot_size: int, min_qty: int) -> int:
    """The seed's name for the constraint rule (see execution_rules.apply_execution_constraints)."""
    return apply_execution_constraints(raw_qty=raw_qty, lot_size=lot_size, min_qty=min_qty)


class BpsFeeModel(FeeModel):
    """fee_bps x |fill notional|, in the account currency."""

    def __init__(self, rule: FeeRule) -> None:
        super().__init__()
        self.rule = rule

    def get_order_fee(self, parameters: OrderFeeParameters) -> OrderFee:
        price = float(parameters.security.price)
        amount = self.rule.fee(float(parameters.order.absolute_quantity), price)
        return OrderFee(CashAmount(amount, "USD"))


class BpsSlippageModel:
    """slippage_open_bps x price for fills at the open, slippage_close_bps x price otherwise."""

    def __init__(self, rule: SlippageRule) -> None:
        self.rule = rule

    def get_slippage_approximation(self, asset: Security, order: Order) -> float:
        at_open = order.type == OrderType.MARKET_ON_OPEN
        return self.rule.amount(float(asset.price), at_open)


def _atomic_write(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".final-state.", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class LeanTrendRotation(QCAlgorithm):
    def initialize(self) -> None:
        intent_path = self.get_parameter("execution-intent-path")
        params_path = self.get_parameter("execution-params-path")
        if not intent_path or not params_path:
            raise ValueError("parameters execution-intent-path and execution-params-path are required")
        intent = load_intent(intent_path)
        self._params: dict[str, Any] = load_params(params_path)
        self._rebalances: dict[dt.date, dict[str, float]] = {r["date"]: r["weights"] for r in intent["rebalances"]}
        dates = sorted(self._rebalances)
        state = self._initial_state()
        continued = state["cash"] is not None or bool(state["holdings"])
        # A fresh account starts a week early, so the first rebalance has a last close to size on.
        # A continued one starts on its first rebalance: its holdings were not held before.
        start = self._date_parameter("start-date", dates[0] - dt.timedelta(days=0 if continued else 7))
        end = self._date_parameter("end-date", dates[-1])
        self.set_start_date(start.year, start.month, start.day)
        self.set_end_date(end.year, end.month, end.day)
        self.set_cash(float(self.get_parameter("starting-cash", 100000.0)))
        if continued and not self.live_mode:
            # One daily bar of warm-up prices the restored holdings: a backtest's starting value is
            # its cash after Initialize, re-captured as the whole portfolio's value when a warm-up
            # ends (Lean's BacktestingSetupHandler and BaseResultsHandler.OnWarmupFinished), so the
            # run's Start Equity is the previous run's End Equity.
            self.set_warm_up(1, Resolution.DAILY)

        fee = FeeRule(float(self._params["fee_bps"]))
        slippage = SlippageRule(float(self._params["slippage_open_bps"]), float(self._params["slippage_close_bps"]))

        def attach_models(security: Security) -> None:
            security.set_fee_model(BpsFeeModel(fee))
            security.set_slippage_model(BpsSlippageModel(slippage))

        self.set_security_initializer(attach_models)
        tickers = sorted({s for weights in self._rebalances.values() for s in weights} | set(state["holdings"]))
        self._symbols: dict[str, Symbol] = {t: self.add_equity(t, Resolution.DAILY).symbol for t in tickers}
        if state["cash"] is not None:
            self.set_cash(float(state["cash"]))
        for ticker, holding in state["holdings"].items():
            self.portfolio[self._symbols[ticker]].set_holdings(
                float(holding.get("average_price", 0.0)), float(holding["quantity"])
            )
        # Live runs remember executed dates, so a restart never trades the same day twice; a
        # backtest always replays its whole intent.
        self._executed: set[str] = set()
        if self.live_mode and self.object_store.contains_key(EXECUTED_KEY):
            self._executed = set(json.loads(self.object_store.read(EXECUTED_KEY)))
        anchor = self._symbols[tickers[0]]
        self.schedule.on(
            self.date_rules.every_day(anchor), self.time_rules.after_market_open(anchor, 1), self._scheduled_rebalance
        )

    def _date_parameter(self, name: str, default: dt.date) -> dt.date:
        value = self.get_parameter(name)
        return dt.date.fromisoformat(value) if value else default

    def _initial_state(self) -> dict[str, Any]:
        path = self.get_parameter("initial-state-path")
        if not path:
            return {"cash": None, "holdings": {}}
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
        if not isinstance(raw, dict) or not isinstance(raw.get("holdings", {}), dict):
            raise ValueError(f"initial state {path!r}: expected {{'cash': number, 'holdings': {{SYMBOL: ...}}}}")
        holdings = {str(k).upper(): v for k, v in (raw.get("holdings") or {}).items() if float(v["quantity"])}
        return {"cash": raw.get("cash"), "holdings": holdings}

    def on_data(self, data: Slice) -> None:
        if self.live_mode:
            self.rebalance()

    def _scheduled_rebalance(self) -> None:
        if not self.live_mode:
            self.rebalance()

    def rebalance(self) -> None:
        if self.is_warming_up:  # scheduled events also fire while the warm-up bar is replayed
            return
        today = self.time.date()
        weights = self._rebalances.get(today)
        if weights is None or today.isoformat() in self._executed:
            return
        prices = {t: float(self.securities[s].price) for t, s in self._symbols.items()}
        holdings = {t: float(self.portfolio[s].quantity) for t, s in self._symbols.items()}
        orders = build_orders(
            weights=weights,
            prices=prices,
            holdings=holdings,
            cash=float(self.portfolio.cash),
            portfolio_value=float(self.portfolio.total_portfolio_value),
            params=self._params,
        )
        for order in orders:  # build_orders puts sells first
            self.market_order(self._symbols[order.symbol], order.quantity, tag=f"rebalance {today.isoformat()}")
        self._executed.add(today.isoformat())
        if self.live_mode:
            self.object_store.save(EXECUTED_KEY, json.dumps(sorted(self._executed)))
        self.log(f"rebalance {today.isoformat()}: {len(orders)} orders for {len(weights)} targets")

    def on_order_event(self, order_event: OrderEvent) -> None:
        if order_event.status == OrderStatus.FILLED:
            self.debug(
                f"filled {order_event.symbol.value} {order_event.fill_quantity:+.0f} @ {order_event.fill_price:.4f}"
            )

    def on_end_of_algorithm(self) -> None:
        holdings = {
            ticker: {
                "quantity": float(self.portfolio[symbol].quantity),
                "average_price": float(self.portfolio[symbol].average_price),
            }
            for ticker, symbol in sorted(self._symbols.items())
            if self.portfolio[symbol].quantity
        }
        text = json.dumps({"cash": float(self.portfolio.cash), "holdings": holdings}, sort_keys=True, indent=2)
        self.object_store.save(FINAL_STATE_KEY, text)
        path = self.get_parameter("final-state-path")
        if path:
            _atomic_write(path, text + "\n")
