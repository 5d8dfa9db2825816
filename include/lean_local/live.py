"""Live paper trading on the local runtime, the way Lean runs live (Lean 24863901 paths below).

* **The clock.** The machine's clock, as Lean's (``QCAlgorithm.cs`` L3778-3788: live ends at the end of
  time). Config key ``local-runtime-now`` (tests, replays of a past session) starts the clock at a set
  instant; that clock is *virtual* while it is behind the machine's: it jumps from one event to the next,
  and once it catches up it waits in real time, like the machine's clock.
* **It never exits by itself.** Only ``quit()`` (``QCAlgorithm.cs`` L2965-2969), SIGINT
  (``Launcher/Program.cs`` L98, L118-126) or a stop command file (``command*.json`` in the working
  folder, ``Common/Commands/FileCommandHandler.cs`` L32-50) end the run; ``OnEndOfAlgorithm`` runs then,
  and Lean exits 0.
* **The data queue is the data folder.** Lean builds the daily bar from its data queue's ticks and emits
  it when the clock passes the close (``Engine/DataFeeds/AggregationManager.cs`` L146-154,
  ``AlgorithmSettings.DailyPreciseEndTime``); nothing from before the start is replayed but the warm-up
  (``LiveTradingDataFeed.cs`` L421-468). Here session D's bar is read from the data folder at D's close
  (waiting up to ``$LEAN_LOCAL_BAR_WAIT_S`` real seconds for it to be written there: by default 60 on the
  machine's clock, none on a replay's). A
  live environment without ``data-queue-handler`` fails as Lean's stub ``LiveDataQueue`` does
  (``Engine/DataFeeds/Queues/DataQueue.cs`` L27-34, caught by ``LiveTradingDataFeed.cs`` L117-135 as a
  runtime error: exit 1).
* **The paper brokerage's account.** ``live-cash-balance`` and ``live-holdings`` (JSON lists, as lean-cli
  writes them) replace what Initialize set (``Brokerages/Brokerage.cs`` GetCashBalance/GetAccountHoldings,
  ``Brokerages/Paper/PaperBrokerageFactory.cs`` BrokerageData); without them the account is Initialize's.
  Only the paper brokerage exists here: any other ``live-mode-brokerage`` is refused by name.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from include.lean_local.enums import Resolution
from include.lean_local.errors import LocalRuntimeError, NotSupportedByLocalRuntime

if TYPE_CHECKING:
    from include.lean_local.config import RuntimeConfig
    from include.lean_local.engine import Engine
    from include.lean_local.orders import OrderEvent

# How long a live run waits at a close for the session's bar to land in the data folder (real seconds, on
# either clock: the data folder is the data queue, and a bar arrives when it is written).
BAR_WAIT_ENV = "LEAN_LOCAL_BAR_WAIT_S"
DEFAULT_BAR_WAIT_S = 60.0
# How often a wait on the machine's clock looks for a stop (signal or command file).
POLL_S = 0.2
PAPER_BROKERAGES = frozenset({"PaperBrokerage", "QuantConnect.Brokerages.Paper.PaperBrokerage"})
STOP_COMMAND_TYPE = "QuantConnect.Commands.AlgorithmStatusCommand"


def bar_wait_s(*, virtual: bool) -> float:
    """``$LEAN_LOCAL_BAR_WAIT_S``; unset, 60 s on the machine's clock and none on a replay's virtual clock (a
    past session's bars are in the data folder or never will be)."""
    raw = os.environ.get(BAR_WAIT_ENV, "")
    if not raw:
        return 0.0 if virtual else DEFAULT_BAR_WAIT_S
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise LocalRuntimeError(f"environment variable {BAR_WAIT_ENV}={raw!r}: expected a number of seconds") from None


class LiveDataQueueError(LocalRuntimeError):
    """A live environment without ``data-queue-handler``: Lean subscribes through its stub LiveDataQueue and stops."""


class LiveClock:
    """The live run's clock: virtual from a set instant until it reaches the machine's clock, then the machine's."""

    def __init__(
        self,
        start_utc: dt.datetime | None,
        *,
        command_dir: Path | None = None,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._wall = wall
        self._sleep = sleep
        self._virtual = start_utc if start_utc is not None and start_utc < wall() else None
        self.command_dir = command_dir
        self.stop_reason: str | None = None
        self.acknowledged: list[Path] = []

    @property
    def is_virtual(self) -> bool:
        return self._virtual is not None

    def now(self) -> dt.datetime:
        return self._virtual if self._virtual is not None else self._wall()

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` of real time without moving a virtual clock; False when a stop came."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._sleep(min(POLL_S, max(end - time.monotonic(), 0.0)))
            self._read_commands()
            if self.stop_reason is not None:
                return False
        return True

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def wait_until(self, moment_utc: dt.datetime) -> bool:
        """Advance to ``moment_utc``; False when a stop came first (the clock then stays where it was)."""
        self._read_commands()
        if self.stop_reason is not None:
            return False
        if self._virtual is not None:
            if moment_utc <= self._wall():
                self._virtual = max(self._virtual, moment_utc)
                return True
            self._virtual = None  # caught up with the machine's clock: real time from here
        while self._wall() < moment_utc:
            self._sleep(min(POLL_S, max((moment_utc - self._wall()).total_seconds(), 0.0)))
            self._read_commands()
            if self.stop_reason is not None:
                return False
        return True

    def _read_commands(self) -> None:
        """Lean's FileCommandHandler: ``command*.json`` in the working folder, in name order, acknowledged by
        ``result-command-<id>.json``; an ``AlgorithmStatusCommand`` with Status Stopped (lean-cli's ``lean live
        stop``) stops the algorithm."""
        folder = self.command_dir
        if folder is None or not folder.is_dir():
            return
        for path in sorted(folder.glob("command*.json")):
            try:
                command = json.loads(path.read_text(encoding="utf-8"))
                path.unlink()
            except (OSError, json.JSONDecodeError):
                continue  # half-written: read again on the next poll
            items = command if isinstance(command, list) else [command]
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                kind = str(item.get("$type", "")).split(",")[0].strip()
                success = kind == STOP_COMMAND_TYPE and str(item.get("Status", "")) == "Stopped"
                if success:
                    self.request_stop("stop command")
                ack = folder / f"result-command-{item.get('Id') or path.stem}.json"
                ack.write_text(json.dumps({"Command": item, "Success": success}), encoding="utf-8")
                self.acknowledged.append(ack)


@contextmanager
def sigint_stops(clock: LiveClock) -> Iterator[None]:
    """SIGINT asks the live loop to stop (Lean's ExitKeyPress): the algorithm ends and results are flushed."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        clock.request_stop("SIGINT")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (an in-process run in a test): no handler, no stop by signal
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_live_environment(cfg: RuntimeConfig) -> None:
    """What the local runtime's paper brokerage can run: refused by name otherwise (before any data is read)."""
    brokerage = str(cfg.get("live-mode-brokerage") or "PaperBrokerage")
    if brokerage not in PAPER_BROKERAGES:
        raise NotSupportedByLocalRuntime(
            f"live-mode-brokerage {brokerage!r} (the local runtime has only Lean's PaperBrokerage; a real broker "
            "runs in the Lean image)"
        )
    queue = cfg.get("data-queue-handler")
    if not queue or (isinstance(queue, list) and not any(queue)):
        raise LiveDataQueueError(
            f"Failed to subscribe: LiveDataQueue has not implemented live data (config {cfg.path}: environment "
            f"{cfg.launcher.environment!r} has no 'data-queue-handler', so Lean falls back to its stub "
            "LiveDataQueue, which throws on the first subscription: Engine/DataFeeds/Queues/DataQueue.cs)"
        )


def _json_list(value: Any, key: str) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise LocalRuntimeError(f"config key {key!r} is not JSON: {value[:80]!r}") from None
    if not isinstance(value, list):
        raise LocalRuntimeError(f"config key {key!r} must be a JSON list, got {type(value).__name__}")
    return value


def _field(row: Mapping[str, Any], name: str) -> Any:
    """A field as Newtonsoft reads it into Lean's types: property names match case-insensitively."""
    for key, value in row.items():
        if key.lower() == name.lower():
            return value
    return None


def load_brokerage_account(cfg: RuntimeConfig, engine: Engine) -> None:
    """The paper brokerage's cash and holdings (``live-cash-balance``, ``live-holdings``), priced at the last
    close before now (Lean prices loaded holdings at the broker's or the last known price,
    ``Engine/Setup/BrokerageSetupHandler.cs`` L438-457)."""
    if cfg.live_cash_balance is not None:
        engine.portfolio.cash = cfg.live_cash_balance
    for row in _json_list(cfg.get("live-holdings"), "live-holdings"):
        if not isinstance(row, Mapping):
            raise LocalRuntimeError(f"config key 'live-holdings': each entry must be an object, got {row!r}")
        symbol = _field(row, "Symbol")
        ticker = _field(symbol, "Value") if isinstance(symbol, Mapping) else symbol
        quantity = _field(row, "Quantity")
        if not ticker or quantity is None:
            raise LocalRuntimeError(f"config key 'live-holdings': entry {row!r} needs Symbol.Value and Quantity")
        sec = engine.add_equity(str(ticker), Resolution.DAILY)
        sec.holdings.set_holdings(float(_field(row, "AveragePrice") or 0.0), float(quantity))
        engine.seed_price(sec)
    engine.portfolio.invalidate()


class LiveResultWriter:
    """Lean's ``LiveTradingResultHandler`` files: ``<id>-<yyyy-MM-dd>-order-events.json`` per UTC day, with every
    event of that day, rewritten in full on each order event with a plain write, not atomically
    (``Engine/Results/LiveTradingResultHandler.cs`` L463-484); no ``-summary.json``."""

    def __init__(self, folder: Path, algorithm_id: str, serialize: Callable[[OrderEvent, str], dict[str, Any]]) -> None:
        self.folder = folder
        self.algorithm_id = algorithm_id
        self._serialize = serialize
        self._days: dict[dt.date, list[dict[str, Any]]] = {}

    def path_of(self, day: dt.date) -> Path:
        return self.folder / f"{self.algorithm_id}-{day:%Y-%m-%d}-order-events.json"

    def order_event(self, event: OrderEvent) -> None:
        day = event.utc_time.astimezone(dt.UTC).date()
        self._days.setdefault(day, []).append(self._serialize(event, self.algorithm_id))
        self.flush(day)

    def flush(self, day: dt.date | None = None) -> None:
        for d in [day] if day is not None else sorted(self._days):
            text = json.dumps(self._days[d], separators=(",", ":"))
            with open(self.path_of(d), "w", encoding="utf-8") as handle:  # Lean's File.WriteAllText
                handle.write(text)

    @property
    def files(self) -> list[Path]:
        return [self.path_of(d) for d in sorted(self._days)]
