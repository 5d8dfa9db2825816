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
at D's close. Live (Lean live never ends by itself, and never delivers a bar that closed before
it started), a run is one session: started on D before the close, it refuses an intent that has
no rebalance dated D, sizes on D-1's close (``settings.seed_initial_prices``), places explicit
``market_on_close_order``s (sells first) before the MarketOnClose cutoff, persists the account on
every order event, and once every order is terminal, or at the deadline 10 minutes after the close
(what is still open is canceled), writes ``done-<D>.json`` and calls ``quit()``. Both fill at D's
close. Fees (fee_bps x quantity x the security's price) and slippage (open/close bps against the order side) come from
models attached by the security initializer, so every security gets them, in backtest and live alike.
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

FINAL_STATE_KEY = "lean-airflow/final-state.json"
# The live run's record of its session (submitted / done), in the deployment's persistent object store.
LIVE_DAY_KEY = "lean-airflow/live/{day}.json"
DONE_FILE = "done-{day}.json"
DEADLINE_MINUTES_AFTER_CLOSE = 10
DONE_VERSION = 1


class IntentNotForTodayError(ValueError):
    """A live run was given an intent with no rebalance dated today: it trades nothing and stops."""


def _apply_execution_constraints(*, raw_qty: float, lot_size: int, min_qty: int) -> int:
    """The seed's name for the constraint rule (see execution_rules.apply_execution_constraints)."""
    return apply_execution_constraints(raw_qty=raw_qty, lot_size=lot_size, min_qty=min_qty)


class BpsFeeModel(FeeModel):
    """fee_bps x |quantity| x the security's price, in USD (not the slipped fill price: Lean's
    ``OrderFeeParameters`` carries none)."""

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
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
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
        self._symbols: dict[str, Symbol] = {}
        self._attach_execution_models()
        if self.live_mode:
            self._initialize_live(intent_path)
            return
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
        if continued:
            # One daily bar of warm-up prices the restored holdings: a backtest's starting value is
            # its cash after Initialize, re-captured as the whole portfolio's value when a warm-up
            # ends (Lean's BacktestingSetupHandler and BaseResultsHandler.OnWarmupFinished), so the
            # run's Start Equity is the previous run's End Equity.
            self.set_warm_up(1, Resolution.DAILY)

        tickers = sorted({s for weights in self._rebalances.values() for s in weights} | set(state["holdings"]))
        self._symbols = {t: self.add_equity(t, Resolution.DAILY).symbol for t in tickers}
        if state["cash"] is not None:
            self.set_cash(float(state["cash"]))
        for ticker, holding in state["holdings"].items():
            self.portfolio[self._symbols[ticker]].set_holdings(
                float(holding.get("average_price", 0.0)), float(holding["quantity"])
            )
        anchor = self._symbols[tickers[0]]
        self.schedule.on(
            self.date_rules.every_day(anchor), self.time_rules.after_market_open(anchor, 1), self._scheduled_rebalance
        )

    def _attach_execution_models(self) -> None:
        fee = FeeRule(float(self._params["fee_bps"]))
        slippage = SlippageRule(float(self._params["slippage_open_bps"]), float(self._params["slippage_close_bps"]))

        def attach_models(security: Security) -> None:
            security.set_fee_model(BpsFeeModel(fee))
            security.set_slippage_model(BpsSlippageModel(slippage))

        self.set_security_initializer(attach_models)

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

    def _scheduled_rebalance(self) -> None:
        if self.is_warming_up:  # scheduled events also fire while the warm-up bar is replayed
            return
        today = self.time.date()
        weights = self._rebalances.get(today)
        if weights is None:
            return
        orders = self._build_orders(weights)
        for order in orders:  # build_orders puts sells first
            self.market_order(self._symbols[order.symbol], order.quantity, tag=f"rebalance {today.isoformat()}")
        self.log(f"rebalance {today.isoformat()}: {len(orders)} orders for {len(weights)} targets")

    def _build_orders(self, weights: dict[str, float], prices: dict[str, float] | None = None) -> list[Any]:
        holdings = {t: float(self.portfolio[s].quantity) for t, s in self._symbols.items()}
        if prices is None:
            prices = {t: float(self.securities[s].price) for t, s in self._symbols.items()}
            value = float(self.portfolio.total_portfolio_value)
        else:
            value = float(self.portfolio.cash) + sum(q * prices.get(t, 0.0) for t, q in holdings.items())
        return build_orders(
            weights=weights,
            prices=prices,
            holdings=holdings,
            cash=float(self.portfolio.cash),
            portfolio_value=value,
            params=self._params,
        )

    def _sizing_prices(self) -> dict[str, float]:
        """D-1's close in today's shares: Lean's history, split-adjusted to now. The seeded (raw) price of a
        security split today is the pre-split close, which would size its order by the split factor."""
        split_adjusted = DataNormalizationMode.SPLIT_ADJUSTED
        symbols = list(self._symbols.values())
        history = self.history(symbols, 1, Resolution.DAILY, data_normalization_mode=split_adjusted)
        prices: dict[str, float] = {}
        for ticker, symbol in self._symbols.items():
            try:
                prices[ticker] = float(history.loc[symbol]["close"].iloc[-1])
            except (KeyError, IndexError):
                prices[ticker] = float(self.securities[symbol].price)
        return prices

    # ------------------------------------------------------------------ live: one session, then quit()

    def _initialize_live(self, intent_path: str) -> None:
        today = self.time.date()
        weights = self._rebalances.get(today)
        if weights is None:
            dates = ", ".join(sorted(d.isoformat() for d in self._rebalances)) or "none"
            raise IntentNotForTodayError(
                f"execution-intent-path {intent_path}: no rebalance dated today, {today.isoformat()} (the intent's "
                f"dates: {dates}). A live run trades only today's targets at today's close; write today's intent, "
                "or run a backtest for other dates"
            )
        self._today = today
        self._tag = f"rebalance {today.isoformat()}"
        self._today_weights = weights
        # Sized on D-1's close: the last daily bar that closed before now prices each security when it is
        # added (Lean's seeding), as the backtest sizes on the last close before D's open.
        self.settings.seed_initial_prices = True
        self._symbols = {t: self.add_equity(t, Resolution.DAILY).symbol for t in sorted(weights)}
        self._tickets: list[OrderTicket] = []
        self._submitting = False
        self._deadline_hit = False
        self._finished = False
        # The brokerage loads the account after Initialize (Lean's BrokerageSetupHandler), so the orders are
        # built in a scheduled event at once ("now"), and the deadline comes after today's close.
        self.schedule.on(self.date_rules.today, self.time_rules.now, self._submit_today)
        self.schedule.on(
            self.date_rules.today,
            self.time_rules.after_market_close(self._anchor(), DEADLINE_MINUTES_AFTER_CLOSE),
            self._deadline,
        )

    def _anchor(self) -> Symbol:
        if self._symbols:
            return next(iter(self._symbols.values()))
        return self.add_equity("SPY", Resolution.DAILY).symbol  # an all-cash target: the exchange's hours

    def _held(self) -> dict[str, Symbol]:
        """Every symbol the account holds (the brokerage's holdings), with the targets' symbols."""
        held = {h.symbol.value: h.symbol for h in self.portfolio.values() if h.invested}
        return {**held, **self._symbols}

    def _submit_today(self) -> None:
        if self._finished:
            return
        record = self._day_record()
        if record.get("status") == "done":
            self.log(f"{self._tag}: already done by an earlier run ({self._live_day_key()}): nothing to submit")
            self._finish("already-done", record.get("orders", []))
            return
        # A real brokerage reloads today's open orders and fills after a restart (Lean's
        # BrokerageSetupHandler.GetOpenOrders): they are today's orders, never submitted twice.
        existing = self.transactions.get_orders(lambda order: order.tag == self._tag)
        if existing:
            self.log(f"{self._tag}: {len(existing)} orders of today are already at the brokerage: not submitted again")
            self._tickets = [self.transactions.get_order_ticket(order.id) for order in existing]
            self._check_done()
            return
        if record.get("status") == "submitted":
            # The paper brokerage keeps no order across a restart: what it had died with the process, and the
            # account (persisted on every fill) says what is left to trade.
            self.log(f"{self._tag}: an earlier process submitted orders the brokerage no longer has: sizing again")
        self._symbols = self._held()
        orders = self._build_orders(self._today_weights, self._sizing_prices())
        self._submitting = True
        try:
            for order in orders:  # sells first
                ticket = self.market_on_close_order(self._symbols[order.symbol], order.quantity, tag=self._tag)
                self._tickets.append(ticket)
        finally:
            self._submitting = False
        self._save_day_record("submitted")
        self._persist_account()
        self.log(f"{self._tag}: {len(orders)} market-on-close orders for {len(self._today_weights)} targets")
        self._check_done()

    def _deadline(self) -> None:
        if self._finished:
            return
        self._deadline_hit = True
        for ticket in self._tickets:
            if ticket.status not in _TERMINAL:
                ticket.cancel(f"{self._tag}: deadline {DEADLINE_MINUTES_AFTER_CLOSE} minutes after the close")
        self._finish("deadline")

    def _check_done(self) -> None:
        if self._finished or self._submitting:
            return
        if all(ticket.status in _TERMINAL for ticket in self._tickets):
            self._finish("deadline" if self._deadline_hit else "terminal")

    def _ticket_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": int(ticket.order_id),
                "symbol": ticket.symbol.value,
                "quantity": float(ticket.quantity),
                "status": _STATUS_NAMES.get(ticket.status, str(ticket.status)),
                "tag": self._tag,
            }
            for ticket in self._tickets
        ]

    def _finish(self, reason: str, orders: list[dict[str, Any]] | None = None) -> None:
        """The session is over: ``done-<D>.json`` (atomic), the record, the account; then ``quit()`` (exit 0)."""
        self._finished = True
        rows = self._ticket_rows() if orders is None else orders
        account = self._account()
        done = {
            "version": DONE_VERSION,
            "date": self._today.isoformat(),
            "algorithmId": str(self.algorithm_id),
            "reason": reason,
            "orders": rows,
            "account": account,
        }
        final_state = self.get_parameter("final-state-path")
        if final_state:
            folder = os.path.dirname(os.path.abspath(final_state))
            _atomic_write(os.path.join(folder, DONE_FILE.format(day=self._today.isoformat())), _dumps(done))
        self._save_day_record("done", rows)
        self._persist_account()
        statuses = ", ".join(f"{row['symbol']} {row['status']}" for row in rows) or "no orders"
        self.quit(f"{self._tag} done ({reason}): {statuses}")

    def _live_day_key(self) -> str:
        return LIVE_DAY_KEY.format(day=self._today.isoformat())

    def _day_record(self) -> dict[str, Any]:
        key = self._live_day_key()
        if not self.object_store.contains_key(key):
            return {}
        record = json.loads(self.object_store.read(key))
        return record if isinstance(record, dict) else {}

    def _save_day_record(self, status: str, orders: list[dict[str, Any]] | None = None) -> None:
        rows = self._ticket_rows() if orders is None else orders
        record = {"date": self._today.isoformat(), "status": status, "orders": rows}
        self.object_store.save(self._live_day_key(), _dumps(record))

    def on_order_event(self, order_event: OrderEvent) -> None:
        if order_event.status == OrderStatus.FILLED:
            self.debug(
                f"filled {order_event.symbol.value} {order_event.fill_quantity:+.0f} @ {order_event.fill_price:.4f}"
            )
        if self.live_mode and not self._finished:
            # Persisted at once on every event: a process killed after a fill restarts from the right account.
            self._persist_account()
            if not self._submitting:
                self._save_day_record("submitted")
            self._check_done()

    def _account(self) -> dict[str, Any]:
        symbols = self._held() if self.live_mode else self._symbols
        holdings = {
            ticker: {
                "quantity": float(self.portfolio[symbol].quantity),
                "average_price": float(self.portfolio[symbol].average_price),
            }
            for ticker, symbol in sorted(symbols.items())
            if self.portfolio[symbol].quantity
        }
        return {"cash": float(self.portfolio.cash), "holdings": holdings}

    def _persist_account(self) -> None:
        text = _dumps(self._account())
        self.object_store.save(FINAL_STATE_KEY, text)
        path = self.get_parameter("final-state-path")
        if path:
            _atomic_write(path, text + "\n")

    def on_end_of_algorithm(self) -> None:
        self._persist_account()


def _dumps(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, indent=2)


_TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID)
_STATUS_NAMES = {
    OrderStatus.NEW: "New",
    OrderStatus.SUBMITTED: "Submitted",
    OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELED: "Canceled",
    OrderStatus.INVALID: "Invalid",
    OrderStatus.CANCEL_PENDING: "CancelPending",
    OrderStatus.UPDATE_SUBMITTED: "UpdateSubmitted",
}
