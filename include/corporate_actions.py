"""Splits and cash dividends between two runs of a carried account, applied the way Lean applies them.

A live account carries from one run to the next: ``pipeline.step_write_params`` copies the previous run's
``final-state.json`` into the new run's ``initial_state.json``. Live runs are one-shot, so no Lean process
sees what happens to the account overnight; a broker (and Lean, had it kept running) would:

* apply a **split** to the holdings, on live or Raw prices only (``Common/Securities/
  SecurityPortfolioManager.cs`` L819-858, ``ApplySplit``; L826-830): quantity / split factor truncated to
  whole shares, average price x split factor (L834-840), the fractional share paid in cash at the
  reference price in post-split terms, as Lean does when no bar has come since the split (L843-851);
* pay a **cash dividend** to the holder at the close before the ex-date. Lean leaves that to the
  brokerage's cash sync in live mode (L789-796, ``ApplyDividend`` returns when live) and credits
  quantity x distribution itself in Raw/SplitAdjusted backtests (L798-808); here the carry-over plays the
  broker, on the ex-date (no pay dates are modelled, as in Lean's backtests).

Dividends go before splits on the same day (``Engine/AlgorithmManager.cs`` L446-449).

An **Adjusted** account (the backtests: Lean fills them on adjusted prices by default) is left alone: its
quantities are in today's share units on both sides of a split and its prices already carry the dividends,
which is why Lean applies neither there (``ApplySplit`` L826-830, ``ApplyDividend`` L798-799). That holds
while both runs read the same factor file: one updated in between rescales the earlier run's prices.

Events come from the factor files through the one reader (``include.lean_local.data.FactorFile``) and the
runtime's timing (``include.lean_local.corporate.corporate_events``). What was applied is recorded in the
carried state under ``carried_over`` (the audit reads it back with :func:`read_carry_record`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from include.run_folder import RunFolder

ActionKind = Literal["split", "dividend"]
# Lean's DataNormalizationMode names (the orders' ``priceAdjustmentMode``) -> what a held account gets.
ACTIONS_BY_BASIS: Mapping[str, frozenset[ActionKind]] = {
    "Raw": frozenset({"split", "dividend"}),
    "SplitAdjusted": frozenset({"dividend"}),
    "Adjusted": frozenset(),
}
CARRY_KEY = "carried_over"


@dataclass(frozen=True)
class CorporateAction:
    """A split or a cash dividend of ``symbol``, effective at the start of session ``date`` (the split's
    first post-split session, the dividend's ex-date), as Lean's corporate event providers time them."""

    symbol: str
    kind: ActionKind
    date: dt.date
    reference_price: float  # the raw close before it (the factor file's 4th column)
    split_factor: float = 1.0  # 0.5 for a 2:1 split
    distribution: float = 0.0  # cash per share held before the ex-date


@dataclass(frozen=True)
class CarryRecord:
    """What the carry-over did to a state: from which run and session, to which, and each action applied."""

    from_run_key: str
    from_session: dt.date
    to_session: dt.date
    price_basis: str
    applied: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def applied_keys(self) -> set[tuple[str, str, dt.date]]:
        return {(str(a["symbol"]).upper(), str(a["kind"]), dt.date.fromisoformat(str(a["date"]))) for a in self.applied}


def corporate_actions(
    data_folder: str | os.PathLike[str], tickers: Iterable[str], *, after: dt.date, through: dt.date
) -> list[CorporateAction]:
    """Splits and dividends of ``tickers`` effective in (``after``, ``through``], oldest first (dividends
    before splits on a day). A ticker without a factor file has none."""
    from include.lean_local.corporate import corporate_events
    from include.lean_local.data import DataProvider
    from include.lean_local.enums import SplitType
    from include.lean_local.errors import DataFormatError
    from include.lean_local.market_data import Dividend
    from include.lean_local.sessions import from_yyyymmdd, yyyymmdd
    from include.market_data import MarketDataError
    from include.trading_calendar import is_session, previous_session, sessions_between

    if through <= after:
        return []
    # An event on the first session after ``after`` comes from the factor row of the session before it.
    first = after if is_session(after) else (previous_session(after) or after)
    days = [yyyymmdd(d) for d in sessions_between(first, through)]
    provider = DataProvider(Path(data_folder))
    found: list[CorporateAction] = []
    for ticker in sorted({t.upper() for t in tickers}):
        try:
            factors = provider.factor_file(ticker)
            if factors is None:
                continue
            map_file = provider.map_file(ticker)
            events = corporate_events(
                provider.symbol_for(ticker),
                factors,
                days,
                data_range=(map_file.rows[0][0], map_file.rows[-1][0]) if map_file else None,
                raw_close_before=lambda _k: 0.0,  # only the split warnings carry it; they are not actions
            )
        except DataFormatError as exc:
            raise MarketDataError(str(exc)) from None
        for k, items in events.items():
            day = from_yyyymmdd(days[k])
            if not after < day <= through:
                continue
            for event in items:
                if isinstance(event, Dividend):
                    found.append(
                        CorporateAction(ticker, "dividend", day, event.reference_price, distribution=event.distribution)
                    )
                elif event.type == SplitType.SPLIT_OCCURRED:
                    found.append(CorporateAction(ticker, "split", day, event.reference_price, event.split_factor))
    return sorted(found, key=lambda a: (a.date, a.kind != "dividend", a.symbol))


def apply_corporate_actions(
    state: Mapping[str, Any], actions: Sequence[CorporateAction]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state (``{"cash", "holdings": {SYMBOL: {"quantity", "average_price"}}}``) after ``actions``, and
    a record of each one that touched a holding (actions of symbols not held change nothing)."""
    holdings = {str(s).upper(): dict(h) for s, h in (state.get("holdings") or {}).items()}
    cash = float(state.get("cash") or 0.0)
    applied: list[dict[str, Any]] = []
    for action in sorted(actions, key=lambda a: (a.date, a.kind != "dividend", a.symbol)):
        holding = holdings.get(action.symbol)
        quantity = float(holding["quantity"]) if holding else 0.0
        if not quantity or holding is None:
            continue
        record: dict[str, Any] = {
            "symbol": action.symbol,
            "kind": action.kind,
            "date": action.date.isoformat(),
            "reference_price": action.reference_price,
            "quantity_before": quantity,
        }
        if action.kind == "dividend":
            amount = quantity * action.distribution  # shorts pay it
            cash += amount
            record.update(distribution=action.distribution, quantity_after=quantity, cash=amount)
        else:
            # Lean divides decimals; float division could land a hair under a whole share and lose it.
            exact = Decimal(repr(quantity)) / Decimal(repr(action.split_factor))
            whole = int(exact)  # toward zero, as C#'s (int) cast
            fraction = float(exact - whole)
            paid = fraction * action.reference_price * action.split_factor
            cash += paid
            average = float(holding.get("average_price") or 0.0)
            record.update(
                split_factor=action.split_factor,
                quantity_after=float(whole),
                average_price_before=average,
                average_price_after=average * action.split_factor,
                cash=paid,
            )
            if whole:
                holding.update(quantity=float(whole), average_price=average * action.split_factor)
            else:
                del holdings[action.symbol]
        applied.append(record)
    return {**state, "cash": cash, "holdings": holdings}, applied


def carry_over(state_text: str, *, previous: RunFolder, folder: RunFolder) -> str:
    """The state a run starts from: the previous run's final state with the corporate actions between its
    session and this run's first one applied, recorded under ``carried_over``. Unchanged text (byte for
    byte) when nothing applies: no holding, an Adjusted account, or no event in between."""
    from include.errors import RunFolderError

    try:
        state = json.loads(state_text)
        held = [str(s) for s, h in (state.get("holdings") or {}).items() if float(h["quantity"])]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RunFolderError([f"{previous.final_state_path}: not a valid final state ({exc})"]) from None
    if not held:
        return state_text
    config = previous.read_config()
    # Live runs fill on Raw prices (Lean's BrokerageTransactionHandler.SetPriceAdjustmentMode); the
    # backtests this project chains fill on Adjusted ones, where Lean applies neither action.
    basis = "Raw" if config.mode == "live" else "Adjusted"
    kinds = ACTIONS_BY_BASIS[basis]
    if not kinds:
        return state_text
    since = previous.load_intent().rebalances[-1].date
    until = folder.load_intent().rebalances[0].date
    actions = [
        a for a in corporate_actions(previous.data_folder(config), held, after=since, through=until) if a.kind in kinds
    ]
    carried, applied = apply_corporate_actions(state, actions)
    if not applied:
        return state_text
    carried[CARRY_KEY] = {
        "from_run_key": previous.run_key,
        "from_session": since.isoformat(),
        "to_session": until.isoformat(),
        "price_basis": basis,
        "corporate_actions": applied,
    }
    return json.dumps(carried, indent=2, sort_keys=True) + "\n"


def read_carry_record(path: str | os.PathLike[str] | None) -> CarryRecord | None:
    """The ``carried_over`` record of an initial state (None without a file or a record)."""
    from include.contracts.validation import check_file_size
    from include.errors import RunFolderError

    if path is None or not Path(path).is_file():
        return None
    check_file_size(path, RunFolderError)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8")).get(CARRY_KEY)
        if raw is None:
            return None
        record = CarryRecord(
            from_run_key=str(raw["from_run_key"]),
            from_session=dt.date.fromisoformat(str(raw["from_session"])),
            to_session=dt.date.fromisoformat(str(raw["to_session"])),
            price_basis=str(raw["price_basis"]),
            applied=tuple(dict(a) for a in raw.get("corporate_actions") or ()),
        )
        record.applied_keys()  # every action names its symbol, kind and date
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RunFolderError([f"{Path(path).name}: not a valid {CARRY_KEY} record ({exc})"]) from None
    return record
