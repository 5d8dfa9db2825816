"""Live paper mode: one step at "now", holdings and cash persisted in the object store between runs.

"Now" is the session of config key ``live-as-of`` (yyyy-MM-dd; the latest session on or before it), else the
last date that has a bar among the subscribed tickers. The step runs at that session's close.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.atomic_io import atomic_write_text
from include.lean_local.config import RuntimeConfig
from include.lean_local.corporate import corporate_events
from include.lean_local.enums import Resolution, SplitType
from include.lean_local.market_data import Split
from include.lean_local.sessions import from_yyyymmdd, local_to_utc, yyyymmdd

if TYPE_CHECKING:
    from include.lean_local.engine import Engine
    from include.lean_local.securities import Security

STATE_VERSION = 1


def state_key(cfg: RuntimeConfig) -> str:
    return f"lean-local-live-state-{cfg.algorithm_id}.json"


@dataclass
class LiveState:
    start_equity: float
    previous: dict[str, Any] | None


def _now_index(cfg: RuntimeConfig, engine: Engine) -> int:
    sessions = engine.sessions
    if cfg.live_as_of:
        day = yyyymmdd(dt.date.fromisoformat(cfg.live_as_of))
        i = sessions.index_of(day)
        if i >= len(sessions.days) or sessions.days[i] != day:
            i -= 1
        return max(i, 0)
    last = 0
    for sec in engine.securities.values():
        bars = engine.feed.bars_of(sec.symbol)
        if bars is not None and len(bars):
            last = max(last, bars.days[-1])
    if last == 0:
        return sessions.index_of(yyyymmdd(dt.date.today())) - 1
    i = sessions.index_of(last)
    return i if i < len(sessions.days) and sessions.days[i] == last else i - 1


def prepare(cfg: RuntimeConfig, engine: Engine) -> LiveState:
    path = cfg.object_store_root / state_key(cfg)
    previous: dict[str, Any] | None = None
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
    if previous is not None:
        engine.portfolio.cash = float(previous["cash"])
        for ticker, row in sorted(previous.get("holdings", {}).items()):
            sec = (
                engine.add_equity(ticker, Resolution.DAILY)
                if not engine.securities.contains(ticker)
                else engine.securities.security(ticker)
            )
            sec.holdings.set_holdings(float(row["averagePrice"]), float(row["quantity"]))
    elif cfg.live_cash_balance is not None:
        engine.portfolio.cash = cfg.live_cash_balance
    engine.portfolio.cash_locked = True
    index = _now_index(cfg, engine)
    engine.live_now_index = index
    now_day = from_yyyymmdd(engine.sessions.days[index])
    splits = (
        _splits_since(engine, int(str(previous.get("asOf", "")).replace("-", "") or 0), index)
        if previous is not None
        else []
    )
    before_now = [(sec, split) for sec, split in splits if split.time.date() < now_day]
    for sec, split in before_now:  # the last close before "now" is already post-split
        _apply_live_split(engine, sec, split)
    engine.start_date = dt.datetime.combine(now_day, dt.time())
    engine.end_date = engine.start_date
    # value the restored holdings at the last close before "now" for the starting equity
    start_equity = engine.portfolio.cash
    for sec in engine.securities.values():
        bars = engine.history_bars(sec.symbol, 1, end=engine.sessions.closes[max(index - 1, 0)])
        if bars:
            sec.set_market_price(bars[-1])
        start_equity += sec.holdings.quantity * sec.price
    for sec, split in splits[len(before_now) :]:  # effective today: today's bar is the first post-split one
        _apply_live_split(engine, sec, split)
    engine.portfolio.invalidate()
    return LiveState(start_equity=start_equity, previous=previous)


def _splits_since(engine: Engine, as_of: int, now_index: int) -> list[tuple[Security, Split]]:
    """Splits effective after the previous run's session, up to and including "now", oldest first.

    Live prices are raw, so Lean applies a split to the holdings in live mode (dividends are left to the
    brokerage's cash sync, which a paper account does not have); a run that skipped days catches up here.
    """
    now_day = engine.sessions.days[now_index]
    found: list[tuple[Security, Split]] = []
    for sec in engine.securities.values():
        factors = engine.provider.factor_file(sec.symbol.value) if sec.holdings.quantity else None
        if factors is None:
            continue
        events = corporate_events(
            sec.symbol, factors, engine.sessions.days, data_range=None, raw_close_before=lambda k: 0.0
        )
        for k, items in events.items():
            if as_of < engine.sessions.days[k] <= now_day:
                found += [(sec, e) for e in items if isinstance(e, Split) and e.type == SplitType.SPLIT_OCCURRED]
    return sorted(found, key=lambda pair: (pair[1].time, pair[0].symbol.value))


def _apply_live_split(engine: Engine, sec: Security, split: Split) -> None:
    before = sec.holdings.quantity
    fraction = sec.holdings.apply_split(split.split_factor)
    price = split.reference_price * split.split_factor  # the pre-split close in post-split terms
    engine.portfolio.cash += fraction * price
    engine.log_line(
        f"Live: split of {sec.symbol.value} effective {split.time:%Y-%m-%d} (factor "
        f"{split.split_factor:g}): {before:g} shares -> {sec.holdings.quantity:g}, "
        f"fractional share paid at {price:g}"
    )


def save(cfg: RuntimeConfig, engine: Engine, state: LiveState) -> None:
    holdings = {
        s.symbol.value: {"quantity": s.holdings.quantity, "averagePrice": s.holdings.average_price}
        for s in sorted(engine.securities.values(), key=lambda s: s.symbol.value)
        if s.holdings.quantity != 0
    }
    payload = {
        "version": STATE_VERSION,
        "algorithmId": cfg.algorithm_id,
        "asOf": engine.start_date.strftime("%Y-%m-%d"),
        "cash": engine.portfolio.cash,
        "holdings": holdings,
        "totalFees": engine.portfolio.total_fees + float((state.previous or {}).get("totalFees", 0.0)),
    }
    atomic_write_text(cfg.object_store_root / state_key(cfg), json.dumps(payload, indent=2, sort_keys=True) + "\n")


def live_events_filename(cfg: RuntimeConfig, engine: Engine) -> str:
    index = engine.live_now_index if engine.live_now_index is not None else 0
    utc_day = local_to_utc(engine.sessions.closes[index]).date()
    return f"{cfg.algorithm_id}-{utc_day:%Y-%m-%d}-order-events.json"
