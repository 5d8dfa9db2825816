"""A live run's audit beyond its order events: did the engine finish session D, and is the account right?

One live run trades one session D (its intent's rebalance date) with market-on-close orders, then
the algorithm writes ``done-<D>.json`` and quits (the contract: ``include.contracts.live``).

* **Ingestion** (:func:`require_session_done`): Lean has exited when ``ingest_events`` runs. Without
  ``done-<D>.json`` the engine did not finish the session (a crash, a stop, the engine's timeout):
  ``LiveSessionNotDoneError`` names what to do, before anything is stored. Its events files are
  complete then (Lean rewrites them in full, not atomically, only while it runs: Lean
  ``Engine/Results/LiveTradingResultHandler.cs`` L463-484), so a truncated one is still an error.
* **The starting account** (:func:`live_starting_state`): Lean gets it through the config's
  ``live-cash-balance``/``live-holdings`` (paper), written from ``initial_state.json`` (the previous
  live run's ``final-state.json``, splits and dividends carried); a real broker's account is the
  broker's (neither key): then only ``initial_state.json`` (the previous run's view) tells it.
* **The check** (:func:`check_live_session`), two checks of their own:

  ``live_session``  every order of ``done-<D>.json`` is Filled: one canceled at the deadline or
                    invalid fails, dated D, naming its symbol and status; the marker's reason
                    (``terminal``, ``deadline``, ``already-done``) is reported.
  ``live_account``  the account the check recomputes (start + fills) against the algorithm's
                    ``results/final-state.json``, and against the holdings of Lean's ``LiveResult``
                    ``<id>.json``: with a real broker those are the broker's (Lean loads them from
                    it: ``Engine/Setup/BrokerageSetupHandler.cs`` L369-467), the truth, so every
                    difference is a failure; with the paper brokerage they are Lean's own portfolio.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from include.audit.findings import Findings
from include.contracts.live import (
    FINAL_STATE_NAME,
    LiveAccount,
    LiveDoneMarker,
    LiveResultView,
    LiveSessionNotDoneError,
    done_marker_name,
    read_account,
    read_done_marker,
    read_live_result,
)
from include.contracts.report import Verdict
from include.run_folder import RunFolder, StartingState, lean_algorithm_state, read_starting_state

if TYPE_CHECKING:
    from include.contracts.intent import OrderIntent
    from include.launch.config import LauncherConfig

PAPER_BROKERAGE = "PaperBrokerage"
# Shares and cash compared with this much room (Lean's decimals against the audit's floats).
QUANTITY_TOLERANCE = 1e-6
CASH_TOLERANCE = 0.01


def live_session(intent: OrderIntent) -> dt.date:
    """Session D of a live run: its intent's (last) rebalance date."""
    return max(r.date for r in intent.rebalances)


def brokerage(config: LauncherConfig) -> str:
    """Lean's ``live-mode-brokerage`` of the run's environment (``PaperBrokerage`` when unset)."""
    return str(config.get("live-mode-brokerage") or PAPER_BROKERAGE)


def is_real_broker(config: LauncherConfig) -> bool:
    return brokerage(config) != PAPER_BROKERAGE


def live_starting_state(folder: RunFolder, config: LauncherConfig) -> StartingState:
    """The account a live run started from (module docstring): ``initial_state.json`` when the run
    has one, else the config's ``live-cash-balance``/``live-holdings`` (Lean's keys, lean-cli
    ``deploy.py`` L290-300), else the ``starting-cash`` parameter (a first run)."""
    if folder.initial_state_path.exists():
        return read_starting_state(config.parameters, folder.inside(folder.initial_state_path))
    started = read_starting_state(config.parameters, None)
    balances = config.get("live-cash-balance")
    cash = started.cash
    if isinstance(balances, list):
        usd = [b for b in balances if isinstance(b, Mapping) and str(b.get("currency", "USD")).upper() == "USD"]
        if usd:
            cash = float(usd[0].get("amount", 0.0))
    holdings: dict[str, float] = {}
    prices: dict[str, float] = {}
    for item in config.get("live-holdings") or []:
        if not isinstance(item, Mapping):
            continue
        symbol = item.get("Symbol") or item.get("symbol") or {}
        ticker = str(symbol.get("Value") or symbol.get("value") if isinstance(symbol, Mapping) else symbol).upper()
        holdings[ticker] = float(item.get("Quantity", item.get("quantity", 0.0)))
        prices[ticker] = float(item.get("AveragePrice", item.get("averagePrice", 0.0)))
    if is_real_broker(config) and balances is None:
        cash = None  # the broker's cash, unknown here
    return StartingState(cash=cash, holdings=holdings, average_prices=prices)


def require_session_done(folder: RunFolder, session: dt.date) -> LiveDoneMarker:
    """``done-<D>.json`` of the run's results, validated; ``LiveSessionNotDoneError`` without it."""
    results = folder.inside(folder.results_dir)
    path = results / done_marker_name(session)
    if not path.exists():
        state = lean_algorithm_state(results, folder.algorithm_id) or {}
        raise LiveSessionNotDoneError(
            f"{folder.dag_id}/{folder.run_key}/results", session, state.get("Status"), folder.log_tail(15)
        )
    return read_done_marker(folder.inside(path), session=session, algorithm_id=folder.algorithm_id)


class LiveRun:
    """What the check of a live run reads besides the events: marker, final state, LiveResult."""

    def __init__(
        self,
        *,
        session: dt.date,
        done: LiveDoneMarker | None,
        final_state: LiveAccount | None,
        result: LiveResultView | None,
        real_broker: bool,
        problems: tuple[str, ...] = (),
    ) -> None:
        self.session = session
        self.done = done
        self.final_state = final_state
        self.result = result
        self.real_broker = real_broker
        self.problems = problems

    @classmethod
    def from_folder(cls, folder: RunFolder, config: LauncherConfig, session: dt.date) -> LiveRun:
        from include.errors import ContractValidationError

        results = folder.inside(folder.results_dir)
        problems: list[str] = []
        done = final = result = None
        try:
            done = require_session_done(folder, session)
        except (LiveSessionNotDoneError, ContractValidationError) as exc:
            problems.append(str(exc).splitlines()[0])
        if (results / FINAL_STATE_NAME).exists():
            try:
                final = read_account(folder.inside(results / FINAL_STATE_NAME))
            except ContractValidationError as exc:
                problems.append(str(exc))
        try:
            result = read_live_result(folder.inside(results / f"{folder.algorithm_id}.json"))
        except ContractValidationError as exc:
            problems.append(str(exc))
        return cls(
            session=session,
            done=done,
            final_state=final,
            result=result,
            real_broker=is_real_broker(config),
            problems=tuple(problems),
        )


def check_live_session(run: LiveRun, account: Mapping[str, Any], findings: Findings) -> None:
    """``live_session`` and ``live_account`` (module docstring). ``account``: the check's recomputed
    account after the session, ``{"cash": float | None, "holdings": {ticker: quantity}}``."""
    day = run.session
    for problem in run.problems:
        findings.add("live_session", "fail", problem, day=day)
    if run.done is not None:
        _check_done_orders(run.done, findings)
    _check_account(run, account, findings)


def _check_done_orders(done: LiveDoneMarker, findings: Findings) -> None:
    day = done.date
    unfilled = [o for o in done.orders if not o.filled]
    for order in unfilled:
        at_deadline = " at the deadline (close + 10 min)" if done.reason == "deadline" else ""
        findings.add(
            "live_session",
            "fail",
            f"order {order.id} ({order.symbol} {order.quantity:+g}) ended {order.status}{at_deadline}, not Filled: "
            f"the session's rebalance of {order.symbol} did not happen",
            symbol=order.symbol,
            day=day,
            order_id=order.id,
            status=order.status,
            reason=done.reason,
        )
    if not unfilled:
        findings.add(
            "live_session",
            "pass",
            f"done-{day.isoformat()}.json ({done.reason}): all {len(done.orders)} orders filled",
            day=day,
            reason=done.reason,
        )


def _differences(expected: Mapping[str, float], found: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    out = {}
    for symbol in sorted(set(expected) | set(found)):
        want, got = float(expected.get(symbol, 0.0)), float(found.get(symbol, 0.0))
        if abs(want - got) > QUANTITY_TOLERANCE:
            out[symbol] = (want, got)
    return out


def _check_account(run: LiveRun, account: Mapping[str, Any], findings: Findings) -> None:
    day = run.session
    recomputed: dict[str, float] = {s: float(q) for s, q in (account.get("holdings") or {}).items() if q}
    cash = account.get("cash")
    final = run.final_state
    if final is None:
        findings.add("live_account", "fail", f"no readable results/{FINAL_STATE_NAME}: the account is unknown", day=day)
    else:
        for symbol, (want, got) in _differences(recomputed, final.quantities()).items():
            findings.add(
                "live_account",
                "fail",
                f"{symbol}: {FINAL_STATE_NAME} holds {got:g} shares, the start and the fills give {want:g}",
                symbol=symbol,
                day=day,
                recomputed=want,
                final_state=got,
            )
        if cash is not None and abs(final.cash - float(cash)) > CASH_TOLERANCE:
            findings.add(
                "live_account",
                "fail",
                f"{FINAL_STATE_NAME} holds {final.cash:,.2f} USD cash, the start, the fills and the fees give "
                f"{float(cash):,.2f}",
                day=day,
                recomputed=float(cash),
                final_state=final.cash,
            )
    holder = "the broker" if run.real_broker else "Lean's paper portfolio"
    if run.result is None or run.result.holdings is None:
        verdict: Verdict = "fail" if run.real_broker else "warn"
        findings.add("live_account", verdict, f"no holdings of {holder} in Lean's LiveResult to compare", day=day)
    else:
        truth = run.result.holdings
        for symbol, (want, got) in _differences(recomputed, truth).items():
            findings.add(
                "live_account",
                "fail",
                f"{symbol}: {holder} holds {got:g} shares (Lean's LiveResult), the check's account {want:g}",
                symbol=symbol,
                day=day,
                recomputed=want,
                lean=got,
                real_broker=run.real_broker,
            )
    if not any(r.check == "live_account" and r.verdict != "pass" for r in findings.results):
        findings.add(
            "live_account",
            "pass",
            f"the account ({len(recomputed)} holdings) matches {FINAL_STATE_NAME} and {holder}",
            day=day,
        )
