"""Execution rules shared by the Lean algorithm and the audit that checks it.

Pure and stdlib-only: this file is mounted next to the algorithm at ``/LeanCLI`` inside the Lean
container, where the ``include`` package does not exist. ``include.audit.consistency`` imports
the very same ``build_orders`` to recompute Lean's orders independently.

Rounding rules (``apply_execution_constraints``):
* 0 stays 0 (no order); the sign is kept (a sell stays a sell);
* |q| is truncated toward zero to whole lots, as Lean rounds order quantities;
* a non-zero |q| is at least ``min_qty`` rounded up to the lot (the seed's case: 0.2 with lot 1
  and min 1 gives 1), so a tiny but real delta still trades the minimum.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1  # execution params
INTENT_SCHEMA_VERSION = 2
PARAM_FIELDS = (
    "min_qty",
    "lot_size",
    "cash_buffer_ratio",
    "fee_bps",
    "slippage_open_bps",
    "slippage_close_bps",
    "risk_overrides",
)
RISK_FIELDS = ("max_weight", "max_weight_by_symbol", "blocked_symbols", "max_gross_exposure")
# The contract's upper bounds (include.contracts.params: MAX_SHARES, MAX_FEE_BPS, MAX_SLIPPAGE_BPS).
MAX_SHARES = 1_000_000_000
MAX_FEE_BPS = 10_000.0
MAX_SLIPPAGE_BPS = 10_000.0
_TICKER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def apply_execution_constraints(*, raw_qty: float, lot_size: int, min_qty: int) -> int:
    """A signed order quantity that respects the lot size and the minimum quantity."""
    if isinstance(lot_size, bool) or not isinstance(lot_size, int) or lot_size < 1:
        raise ValueError(f"lot_size={lot_size!r} must be an integer >= 1")
    if isinstance(min_qty, bool) or not isinstance(min_qty, int) or min_qty < 1:
        raise ValueError(f"min_qty={min_qty!r} must be an integer >= 1")
    if not isinstance(raw_qty, int | float) or not math.isfinite(raw_qty):
        raise ValueError(f"raw_qty={raw_qty!r} must be a finite number")
    if raw_qty == 0:
        return 0
    sign = 1 if raw_qty > 0 else -1
    # The small epsilon absorbs float noise (2.9999999 lots is 3 lots), like Lean's AdjustByLotSize.
    lots = math.floor(abs(raw_qty) / lot_size + 1e-9)
    minimum = math.ceil(min_qty / lot_size) * lot_size
    return sign * max(lots * lot_size, minimum)


@dataclass(frozen=True)
class FeeRule:
    """Fee = fee_bps x |quantity| x price: the security's price when the order fills, not the slipped
    fill price (Lean's fee model sees the security and the order, never the fill)."""

    fee_bps: float

    def fee(self, quantity: float, price: float) -> float:
        return self.fee_bps / 10_000.0 * abs(quantity * price)


@dataclass(frozen=True)
class SlippageRule:
    """A price amount: slippage_open_bps x price for fills at the open, slippage_close_bps otherwise."""

    open_bps: float
    close_bps: float

    def amount(self, price: float, at_open: bool) -> float:
        return (self.open_bps if at_open else self.close_bps) / 10_000.0 * price

    def fill_price(self, price: float, quantity: float, at_open: bool) -> float:
        """Against the order side: buys pay more, sells receive less."""
        slip = self.amount(price, at_open)
        return price + slip if quantity > 0 else price - slip


def _get(params: Any, name: str) -> Any:
    return params[name] if isinstance(params, Mapping) else getattr(params, name)


def _overrides_dict(overrides: Any) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    return {name: getattr(overrides, name, None) for name in RISK_FIELDS}


def apply_risk_overrides(weights: Mapping[str, float], risk_overrides: Any) -> dict[str, float]:
    """Blocked symbols -> 0; per-symbol and global caps clip |w|; then the gross cap scales all down."""
    overrides = _overrides_dict(risk_overrides)
    blocked = {str(s).upper() for s in overrides.get("blocked_symbols") or ()}
    per_symbol = {str(k).upper(): float(v) for k, v in (overrides.get("max_weight_by_symbol") or {}).items()}
    global_cap = overrides.get("max_weight")
    out: dict[str, float] = {}
    for symbol, weight in weights.items():
        w = 0.0 if symbol.upper() in blocked else float(weight)
        caps = [c for c in (per_symbol.get(symbol.upper()), global_cap) if c is not None]
        if caps:
            cap = min(float(c) for c in caps)
            w = max(-cap, min(cap, w))
        out[symbol] = w
    gross_cap = overrides.get("max_gross_exposure")
    gross = sum(abs(w) for w in out.values())
    if gross_cap is not None and gross > float(gross_cap) > 0:
        scale = float(gross_cap) / gross
        out = {s: w * scale for s, w in out.items()}
    return out


@dataclass(frozen=True)
class PlannedOrder:
    symbol: str
    quantity: int
    reference_price: float
    target_weight: float
    target_quantity: float


def trim_buys_to_cash(
    orders: Iterable[PlannedOrder], *, cash: float, portfolio_value: float, params: Any
) -> list[PlannedOrder]:
    """Sells first, then buys trimmed by whole lots so cash never falls below the buffer.

    Cash available = cash + sell proceeds (net of fees and slippage) - cash_buffer_ratio x value.
    A buy trimmed below the minimum quantity is dropped.
    """
    lot = int(_get(params, "lot_size"))
    min_qty = int(_get(params, "min_qty"))
    fee = FeeRule(float(_get(params, "fee_bps")))
    slippage = SlippageRule(float(_get(params, "slippage_open_bps")), float(_get(params, "slippage_close_bps")))
    minimum = math.ceil(min_qty / lot) * lot
    sells = [o for o in orders if o.quantity < 0]
    buys = [o for o in orders if o.quantity > 0]
    available = cash - float(_get(params, "cash_buffer_ratio")) * portfolio_value
    for order in sells:
        price = slippage.fill_price(order.reference_price, order.quantity, at_open=False)
        available += -order.quantity * price - fee.fee(order.quantity, price)
    kept = list(sells)
    for order in buys:
        price = slippage.fill_price(order.reference_price, order.quantity, at_open=False)
        quantity = order.quantity

        def cost(q: int, price: float = price) -> float:
            return q * price + fee.fee(q, price)

        quantity = _largest_affordable(quantity, lot, cost, available, price * (1.0 + fee.fee_bps / 10_000.0))
        if quantity < minimum:
            continue
        available -= cost(quantity)
        kept.append(
            PlannedOrder(order.symbol, quantity, order.reference_price, order.target_weight, order.target_quantity)
        )
    return kept


def _largest_affordable(
    quantity: int, lot: int, cost: Callable[[int], float], available: float, unit_cost: float
) -> int:
    """``quantity`` less as few whole lots as make ``cost`` fit in ``available`` (0 or less when none
    fits): what removing one lot at a time finds, in a few steps instead of one per lot (a buy of a
    billion shares took hours). ``cost`` grows with the quantity, so the closed-form estimate is
    only corrected by a step or two, with ``cost`` itself deciding, as the one-lot loop did."""
    if quantity <= 0 or cost(quantity) <= available:
        return quantity
    over = (quantity * unit_cost - available) / unit_cost if unit_cost > 0 else 0.0
    steps = max(1, min(math.ceil(quantity / lot), math.ceil(over / lot))) if math.isfinite(over) else 1
    candidate = quantity - steps * lot
    # One lot fewer removed while that still fits (the estimate may overshoot by float noise)...
    while steps > 1 and cost(candidate + lot) <= available:
        steps -= 1
        candidate += lot
    # ...and one lot more while it does not fit yet (or undershoot).
    while candidate > 0 and cost(candidate) > available:
        candidate -= lot
    return candidate


def build_orders(
    *,
    weights: Mapping[str, float],
    prices: Mapping[str, float],
    holdings: Mapping[str, float],
    cash: float,
    portfolio_value: float,
    params: Any,
) -> list[PlannedOrder]:
    """The whole order build: risk overrides -> target quantities -> deltas -> constraints -> cash.

    target quantity = weight x portfolio value x (1 - cash_buffer_ratio) / price, truncated to
    whole lots; the order is the delta to the current holding. Sells come first, then buys,
    each in symbol order. A symbol without a positive price gets no order.
    """
    lot = int(_get(params, "lot_size"))
    min_qty = int(_get(params, "min_qty"))
    investable = portfolio_value * (1.0 - float(_get(params, "cash_buffer_ratio")))
    capped = apply_risk_overrides(weights, _get(params, "risk_overrides"))
    symbols = sorted(set(capped) | {s for s, q in holdings.items() if q})
    planned: list[PlannedOrder] = []
    for symbol in symbols:
        price = float(prices.get(symbol) or 0.0)
        if not price > 0 or not math.isfinite(price):
            continue
        weight = capped.get(symbol, 0.0)
        target = weight * investable / price
        target_lots = math.floor(abs(target) / lot + 1e-9) * lot * (1 if target >= 0 else -1)
        delta = target_lots - float(holdings.get(symbol, 0.0))
        quantity = apply_execution_constraints(raw_qty=delta, lot_size=lot, min_qty=min_qty)
        if quantity:
            planned.append(PlannedOrder(symbol, quantity, price, weight, target))
    sells = sorted((o for o in planned if o.quantity < 0), key=lambda o: o.symbol)
    buys = sorted((o for o in planned if o.quantity > 0), key=lambda o: o.symbol)
    return trim_buys_to_cash([*sells, *buys], cash=cash, portfolio_value=portfolio_value, params=params)


# ----------------------------------------------------------------- file validation (no pydantic)


def _fail(where: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{where}={value!r}: {why}")


def _finite(where: str, value: Any, *, minimum: float | None = None, below: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, value, "must be a finite number")
    if minimum is not None and value < minimum:
        raise _fail(where, value, f"must be >= {minimum}")
    if below is not None and value >= below:
        raise _fail(where, value, f"must be < {below}")
    return float(value)


def _symbol(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(where, value, "must be a ticker string")
    text = value.strip().upper()
    if not text or len(text) > 12 or not text[0].isalpha() or not set(text) <= _TICKER_CHARS:
        raise _fail(where, value, "is not a ticker")
    return text


def _keys(where: str, raw: Any, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(where, raw, "must be a JSON object")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", raw[unknown[0]], "unknown field")
    missing = sorted(set(required) - set(raw))
    if missing:
        raise ValueError(f"{where}.{missing[0]}: required field missing")
    return raw


def validate_params(raw: Any) -> dict[str, Any]:
    """Execution params as the pydantic ExecutionParams contract accepts them (defaults filled)."""
    _keys("params", raw, ("schema_version", *PARAM_FIELDS))
    if raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise _fail("params.schema_version", raw.get("schema_version"), f"must be {SCHEMA_VERSION}")
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    for name in ("min_qty", "lot_size"):
        value = raw.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(f"params.{name}", value, "must be an integer >= 1")
        if value > MAX_SHARES:
            raise _fail(
                f"params.{name}", value, f"must be at most {MAX_SHARES:,} shares (more than an account can hold)"
            )
        out[name] = value
    out["cash_buffer_ratio"] = _finite(
        "params.cash_buffer_ratio", raw.get("cash_buffer_ratio", 0.0), minimum=0.0, below=1.0
    )
    out["fee_bps"] = _finite("params.fee_bps", raw.get("fee_bps", 0.0), minimum=0.0)
    if out["fee_bps"] > MAX_FEE_BPS:
        raise _fail("params.fee_bps", out["fee_bps"], f"must be at most {MAX_FEE_BPS:,.0f} bps (100% of the notional)")
    for name in ("slippage_open_bps", "slippage_close_bps"):
        out[name] = _finite(f"params.{name}", raw.get(name, 0.0), minimum=0.0, below=MAX_SLIPPAGE_BPS)
    risk = _keys("params.risk_overrides", raw.get("risk_overrides", {}), RISK_FIELDS)
    checked: dict[str, Any] = {}
    for name in ("max_weight", "max_gross_exposure"):
        if risk.get(name) is not None:
            value = _finite(f"params.risk_overrides.{name}", risk[name])
            if not 0.0 < value <= 1.0:
                raise _fail(f"params.risk_overrides.{name}", value, "must be within (0, 1]")
            checked[name] = value
    caps = risk.get("max_weight_by_symbol") or {}
    if not isinstance(caps, dict):
        raise _fail("params.risk_overrides.max_weight_by_symbol", caps, "must be a JSON object")
    checked_caps = {}
    for key, cap in caps.items():
        where = f"params.risk_overrides.max_weight_by_symbol[{key!r}]"
        value = _finite(where, cap)
        if not 0.0 <= value <= 1.0:
            raise _fail(where, value, "must be within [0, 1]")
        checked_caps[_symbol(where, key)] = value
    if checked_caps:
        checked["max_weight_by_symbol"] = checked_caps
    blocked = risk.get("blocked_symbols") or []
    if not isinstance(blocked, list):
        raise _fail("params.risk_overrides.blocked_symbols", blocked, "must be a list")
    blocked_symbols = [_symbol(f"params.risk_overrides.blocked_symbols[{i}]", s) for i, s in enumerate(blocked)]
    if len(set(blocked_symbols)) != len(blocked_symbols):
        raise _fail("params.risk_overrides.blocked_symbols", blocked, "has duplicates")
    if blocked_symbols:
        checked["blocked_symbols"] = blocked_symbols
    out["risk_overrides"] = checked
    return out


def validate_intent(raw: Any) -> dict[str, Any]:
    """The order intent as the pydantic OrderIntent contract accepts it (rebalances sorted by date)."""
    import datetime as dt

    _keys(
        "intent",
        raw,
        ("schema_version", "run_key", "source", "rebalances", "intent_orders"),
        ("run_key", "source", "rebalances", "intent_orders"),
    )
    if raw.get("schema_version", INTENT_SCHEMA_VERSION) != INTENT_SCHEMA_VERSION:
        raise _fail("intent.schema_version", raw.get("schema_version"), f"must be {INTENT_SCHEMA_VERSION}")
    rebalances = raw["rebalances"]
    if not isinstance(rebalances, list) or not rebalances:
        raise _fail("intent.rebalances", rebalances, "must be a non-empty list")
    parsed: list[dict[str, Any]] = []
    previous: dt.date | None = None
    for index, rebalance in enumerate(rebalances):
        where = f"intent.rebalances[{index}]"
        _keys(where, rebalance, ("date", "items"), ("date", "items"))
        try:
            day = dt.date.fromisoformat(str(rebalance["date"]))
        except ValueError:
            raise _fail(f"{where}.date", rebalance["date"], "must be YYYY-MM-DD") from None
        if previous is not None and day <= previous:
            raise _fail(f"{where}.date", rebalance["date"], "dates must be strictly increasing")
        previous = day
        items: dict[str, float] = {}
        if not isinstance(rebalance["items"], list):
            raise _fail(f"{where}.items", rebalance["items"], "must be a list")
        for j, item in enumerate(rebalance["items"]):
            _keys(f"{where}.items[{j}]", item, ("symbol", "weight"), ("symbol", "weight"))
            symbol = _symbol(f"{where}.items[{j}].symbol", item["symbol"])
            weight = _finite(f"{where}.items[{j}].weight", item["weight"], minimum=-1.0)
            if weight > 1.0:
                raise _fail(f"{where}.items[{j}].weight", weight, "must be <= 1")
            if symbol in items:
                raise _fail(f"{where}.items[{j}].symbol", symbol, "duplicate symbol")
            items[symbol] = weight
        if sum(abs(w) for w in items.values()) > 1.0 + 1e-9:
            raise _fail(f"{where}.items", rebalance["items"], "gross weight exceeds 1.0")
        parsed.append({"date": day, "weights": items})
    if not isinstance(raw["intent_orders"], list):
        raise _fail("intent.intent_orders", raw["intent_orders"], "must be a list")
    return {"run_key": raw["run_key"], "source": raw["source"], "rebalances": parsed}


def _load_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} file {path!r}: cannot read JSON ({exc})") from None


def load_intent(path: str) -> dict[str, Any]:
    return validate_intent(_load_json(path, "execution intent"))


def load_params(path: str) -> dict[str, Any]:
    return validate_params(_load_json(path, "execution params"))
