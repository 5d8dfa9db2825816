"""The files a live run leaves besides its order events: ``done-<D>.json``, ``final-state.json`` and
Lean's ``<id>.json`` (a ``LiveResult``).

* ``results/done-<YYYY-MM-DD>.json`` (:class:`LiveDoneMarker`), written atomically by the algorithm
  once every order of session D is terminal, or at the deadline close(D) + 10 min after it
  cancelled what was still open: the orders with their terminal status and the account. Its
  absence after Lean exited means the engine did not finish the session (a crash, a stop, the
  engine's timeout): :class:`LiveSessionNotDoneError`.
* ``results/final-state.json`` (:class:`LiveAccount`): the algorithm's account, rewritten on every
  order event and at done: ``{"cash": c, "holdings": {"SPY": {"quantity": q, "average_price": p}}}``.
* ``results/<id>.json``: Lean's ``LiveResult`` status file (Lean ``Common/Packets/LiveResultPacket.cs``,
  written by ``Engine/Results/LiveTradingResultHandler.cs`` ``StoreStatusFile`` L485-528, at exit
  L848-852). Lean writes no ``<id>-summary.json`` live. Its ``holdings`` are keyed by the symbol's
  security identifier (``"SPY R735QTJ8XC9X"``, L1316-1331) with Lean's one-letter fields (``q``
  quantity, ``a`` average price, ``p`` market price; zero fields left out: ``Common/Global.cs``
  ``Holding``); ``cash`` maps a currency to its ``Cash`` (``amount``). :func:`read_live_result`
  reads what the audit and the report need, leniently: the rest of the file is Lean's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.contracts._base import FiniteFloat, Symbol
from include.errors import ContractValidationError, LeanAirflowError

DONE_MARKER_VERSION = 1
FINAL_STATE_NAME = "final-state.json"


def done_marker_name(session: dt.date) -> str:
    return f"done-{session.isoformat()}.json"


class LiveSessionNotDoneError(LeanAirflowError, FileNotFoundError):
    """A live run's engine exited without writing ``done-<D>.json``: it did not finish session D."""

    def __init__(self, results_dir: str, session: dt.date, lean_status: str | None, log_tail: str = "") -> None:
        self.session = session
        status = f"Lean's last status {lean_status!r}" if lean_status else "no Lean status file"
        tail = f"\nLean's log ends with:\n{log_tail}" if log_tail else ""
        super().__init__(
            f"live run of session {session.isoformat()}: no {done_marker_name(session)} in {results_dir} "
            f"({status}). The engine did not finish the session: Lean crashed, was stopped, or hit the engine "
            "timeout before the algorithm's deadline (close + 10 min). Orders it placed may still be working "
            "at the broker: look at the broker's open orders and Lean's log, then clear this run's run_lean "
            "task to run the session again (the algorithm does not resubmit what its object store records as "
            f"submitted), or mark the run failed if the session is over.{tail}"
        )


class LiveRunFileError(ContractValidationError):
    """A live run's file (``done-<D>.json``, ``final-state.json``, ``<id>.json``) exists but cannot be read."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("live run file", problems)


class _Lenient(BaseModel):
    """Frozen, strict on NaN, and tolerant of fields a later algorithm version adds."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, populate_by_name=True)


class LiveHolding(_Lenient):
    quantity: FiniteFloat
    average_price: FiniteFloat = 0.0


class LiveAccount(_Lenient):
    """``final-state.json`` and a done marker's ``account``: cash and holdings by ticker."""

    cash: FiniteFloat
    holdings: dict[Symbol, LiveHolding] = Field(default_factory=dict)

    def quantities(self) -> dict[str, float]:
        return {symbol: h.quantity for symbol, h in self.holdings.items() if h.quantity != 0}


class LiveDoneOrder(_Lenient):
    id: int
    symbol: Symbol
    quantity: FiniteFloat
    status: str = Field(min_length=1)  # Lean's OrderStatus name: Filled, Canceled, Invalid...
    tag: str | None = None

    @property
    def filled(self) -> bool:
        return self.status.lower() == "filled"


class LiveDoneMarker(_Lenient):
    version: Literal[1]
    date: dt.date
    algorithm_id: str = Field(alias="algorithmId", min_length=1)
    reason: Literal["terminal", "deadline", "already-done"]
    orders: tuple[LiveDoneOrder, ...] = ()
    account: LiveAccount | None = None


def read_done_marker(path: str | os.PathLike[str], *, session: dt.date, algorithm_id: str) -> LiveDoneMarker:
    """The done marker of ``session``; ``LiveRunFileError`` naming what is wrong with it."""
    from include.contracts.validation import check_file_size

    check_file_size(path, LiveRunFileError)
    name = Path(path).name
    try:
        marker = LiveDoneMarker.model_validate_json(Path(path).read_bytes())
    except ValidationError as exc:
        problems = [f"{name}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise LiveRunFileError(problems) from None
    problems = []
    if marker.date != session:
        problems.append(f"{name}: date {marker.date.isoformat()}, expected the run's session {session.isoformat()}")
    if marker.algorithm_id != algorithm_id:
        problems.append(f"{name}: algorithmId {marker.algorithm_id!r}, expected {algorithm_id!r}")
    if problems:
        raise LiveRunFileError(problems)
    return marker


def read_account(path: str | os.PathLike[str]) -> LiveAccount:
    """``final-state.json``; ``LiveRunFileError`` (a named contract error) when it is not one."""
    from include.contracts.validation import check_file_size

    check_file_size(path, LiveRunFileError)
    try:
        return LiveAccount.model_validate_json(Path(path).read_bytes())
    except ValidationError as exc:
        problems = [f"{Path(path).name}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise LiveRunFileError(problems) from None


@dataclass(frozen=True)
class LiveResultView:
    """What the audit and the report read from Lean's ``LiveResult`` ``<id>.json``."""

    holdings: dict[str, float] | None  # ticker -> quantity; None when the file has no ``holdings``
    average_prices: dict[str, float] = field(default_factory=dict)
    cash: float | None = None  # the account currency's amount
    account_currency: str | None = None
    statistics: dict[str, str] = field(default_factory=dict)
    runtime_statistics: dict[str, str] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)


def _ticker(key: str, holding: Mapping[str, Any]) -> str:
    """A holding's ticker: its ``symbol``'s value when given, else the first word of Lean's key
    (the security identifier ``"SPY R735QTJ8XC9X"``, or a plain ticker)."""
    symbol = holding.get("symbol") or holding.get("Symbol")
    if isinstance(symbol, Mapping):
        value = symbol.get("value") or symbol.get("Value")
        if value:
            return str(value).upper()
    elif isinstance(symbol, str) and symbol:
        return symbol.split()[0].upper()
    return str(key).split()[0].upper()


def _number(holding: Mapping[str, Any], *names: str) -> float:
    for name in names:
        if holding.get(name) is not None:
            return float(holding[name])
    return 0.0  # Lean leaves zero fields out (DefaultValueHandling.Ignore)


def is_live_result(result: Any) -> bool:
    """A ``LiveResult`` (``holdings``/``cash``/``accountCurrency``), not a backtest's result."""
    return isinstance(result, Mapping) and any(k in result for k in ("holdings", "cash", "accountCurrency"))


def live_result_view(result: Mapping[str, Any]) -> LiveResultView:
    """The parts of a decoded ``LiveResult`` the audit and the report use (``ValueError`` on a
    holding or cash amount that is not a number)."""
    holdings: dict[str, float] | None = None
    prices: dict[str, float] = {}
    raw_holdings = result.get("holdings")
    if isinstance(raw_holdings, Mapping):
        holdings = {}
        for key, holding in raw_holdings.items():
            if not isinstance(holding, Mapping):
                continue
            ticker = _ticker(str(key), holding)
            quantity = _number(holding, "q", "quantity", "Quantity")
            holdings[ticker] = holdings.get(ticker, 0.0) + quantity
            prices[ticker] = _number(holding, "a", "averagePrice", "AveragePrice")
        holdings = {t: q for t, q in holdings.items() if q != 0}
    currency = result.get("accountCurrency")
    cash = None
    raw_cash = result.get("cash")
    if isinstance(raw_cash, Mapping):
        entry = raw_cash.get(currency or "USD")
        if isinstance(entry, Mapping):
            cash = _number(entry, "amount", "Amount")

    def strings(name: str) -> dict[str, str]:
        found = result.get(name)
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}

    return LiveResultView(
        holdings=holdings,
        average_prices=prices,
        cash=cash,
        account_currency=str(currency) if currency else None,
        statistics=strings("statistics"),
        runtime_statistics=strings("runtimeStatistics"),
        state=strings("state"),
    )


def read_live_result(path: str | os.PathLike[str]) -> LiveResultView | None:
    """Lean's ``<id>.json`` of a live run; None when absent or not a ``LiveResult``. A file that is
    not JSON raises ``LiveRunFileError`` naming it (Lean writes it whole at exit, L848-852)."""
    from include.contracts.validation import check_file_size

    source = Path(path)
    if not source.is_file():
        return None
    check_file_size(source, LiveRunFileError)
    try:
        result = json.loads(source.read_text(encoding="utf-8"))
        return live_result_view(result) if is_live_result(result) else None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise LiveRunFileError([f"{source.name}: not a readable LiveResult ({exc})"]) from None
