"""The run-folder layout the audit reads.

``<artifact root>/<dag_id>/<run_key>/`` (see ``include.artifacts.run_dir``) holds::

    snapshots_run_<key>.jsonl          decision snapshots (optional for the audit)
    order_intent_run_<key>.json        OrderIntent (exactly one; it names the run key)
    execution_params_run_<key>.json    ExecutionParams
    config.json                        the Lean launcher config (algorithm-id, data-folder, parameters)
    initial_state.json                 optional starting account {"cash", "holdings": {SYM: {...}}}
    results/                           Lean's results-destination-folder
    manifest.json                      written by include.audit.manifest
    report.json, report.html           written by include.audit.consistency

Paths inside ``config.json`` are as the engine saw them: for Docker runs they are container
paths (``/Lean/Data``, ``/Files/initial_state.json``). A path that does not exist on this
machine is resolved by file name inside the run folder (``/Files/x`` -> ``<run_dir>/x``) and
the data folder falls back to ``include.artifacts.data_folder()``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.contracts.intent import OrderIntent
from include.contracts.params import ExecutionParams
from include.contracts.validation import check_file_size
from include.errors import LeanAirflowError, RunFolderError
from include.execution_params import load_execution_params
from include.intent import load_order_intent

_INTENT_RE = re.compile(r"^order_intent_run_(?P<key>.+)\.json$")
_COMMENT_RE = re.compile(r"^\s*//.*$", re.MULTILINE)


@dataclass(frozen=True)
class StartingState:
    cash: float | None
    holdings: dict[str, float] = field(default_factory=dict)
    average_prices: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFolder:
    run_dir: Path
    dag_id: str
    run_key: str
    config: dict[str, Any]

    @property
    def intent_path(self) -> Path:
        return self.run_dir / f"order_intent_run_{self.run_key}.json"

    @property
    def params_path(self) -> Path:
        return self.run_dir / f"execution_params_run_{self.run_key}.json"

    @property
    def snapshot_path(self) -> Path:
        return self.run_dir / f"snapshots_run_{self.run_key}.jsonl"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.json"

    @property
    def results_dir(self) -> Path:
        return self.run_dir / "results"

    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "manifest.json"

    @property
    def algorithm_id(self) -> str:
        return str(self.config["algorithm-id"])

    @property
    def parameters(self) -> dict[str, Any]:
        params = self.config.get("parameters") or {}
        return dict(params) if isinstance(params, dict) else {}

    @property
    def mode(self) -> str:
        env_name = self.config.get("environment", "backtesting")
        env = (self.config.get("environments") or {}).get(env_name) or {}
        live = env.get("live-mode", self.config.get("live-mode", False))
        return "live" if live in (True, "true", "True") else "backtest"

    def local_path(self, engine_path: str | None) -> Path | None:
        """A path from the config as it exists here, or the same file name in the run folder."""
        if not engine_path:
            return None
        candidate = Path(engine_path)
        if candidate.exists():
            return candidate
        local = self.run_dir / candidate.name
        return local if local.exists() else None

    def data_folder(self, override: str | os.PathLike[str] | None = None) -> Path:
        if override is not None:
            return Path(override)
        configured = self.config.get("data-folder")
        if configured and Path(configured).is_dir():
            return Path(configured)
        from include.artifacts import data_folder

        return data_folder()

    def algorithm_path(self) -> Path | None:
        found = self.local_path(self.config.get("algorithm-location"))
        if found is not None:
            return found
        from include.artifacts import ALGORITHM_PATH

        name = Path(str(self.config.get("algorithm-location", ""))).name
        return ALGORITHM_PATH if ALGORITHM_PATH.exists() and ALGORITHM_PATH.name == name else None

    def load_intent(self) -> OrderIntent:
        return load_order_intent(self.intent_path)

    def load_params(self) -> ExecutionParams:
        return load_execution_params(self.params_path)

    def starting_state(self) -> StartingState:
        return read_starting_state(self.parameters, self.local_path(self.parameters.get("initial-state-path")))


def read_config(path: Path) -> dict[str, Any]:
    try:
        check_file_size(path, RunFolderError)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunFolderError([f"{path}: cannot read ({exc.strerror})"]) from None
    except UnicodeDecodeError as exc:
        raise RunFolderError([f"{path}: not UTF-8 text (byte offset {exc.start})"]) from None
    try:
        loaded = json.loads(_COMMENT_RE.sub("", text))
    except json.JSONDecodeError as exc:
        raise RunFolderError([f"{path}: not valid JSON ({exc})"]) from None
    if not isinstance(loaded, dict) or not loaded.get("algorithm-id"):
        raise RunFolderError([f"{path}: expected a launcher config object with an algorithm-id"])
    return loaded


def read_starting_state(parameters: dict[str, Any], initial_state_path: Path | None) -> StartingState:
    """Cash and holdings before the run: ``initial-state-path`` JSON if any, else ``starting-cash``."""
    cash: float | None = None
    raw_cash = parameters.get("starting-cash")
    if raw_cash is not None:
        try:
            cash = float(raw_cash)
        except (TypeError, ValueError):
            raise RunFolderError([f"parameters.starting-cash={raw_cash!r}: not a number"]) from None
    if initial_state_path is None:
        return StartingState(cash=cash)
    if initial_state_path.is_file():
        check_file_size(initial_state_path, RunFolderError)
    try:
        state = json.loads(initial_state_path.read_text(encoding="utf-8"))
        holdings = {str(sym).upper(): float(item["quantity"]) for sym, item in (state.get("holdings") or {}).items()}
        prices = {
            str(sym).upper(): float(item.get("average_price", 0.0))
            for sym, item in (state.get("holdings") or {}).items()
        }
        state_cash = state.get("cash")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunFolderError([f"{initial_state_path.name}: not a valid initial state ({exc})"]) from None
    return StartingState(
        cash=float(state_cash) if state_cash is not None else cash, holdings=holdings, average_prices=prices
    )


def open_run_folder(run_dir: str | os.PathLike[str]) -> RunFolder:
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunFolderError([f"{folder}: not a directory"])
    keys = sorted(m.group("key") for p in folder.iterdir() if (m := _INTENT_RE.match(p.name)))
    if len(keys) != 1:
        raise RunFolderError([f"{folder}: expected exactly one order_intent_run_<key>.json, found {len(keys)}"])
    run = RunFolder(run_dir=folder, dag_id=folder.resolve().parent.name, run_key=keys[0], config={})
    config = read_config(run.config_path)
    run = RunFolder(run_dir=folder, dag_id=run.dag_id, run_key=run.run_key, config=config)
    missing = [p.name for p in (run.params_path,) if not p.exists()]
    if missing:
        raise RunFolderError([f"{folder}: missing {', '.join(missing)}"])
    return run


def try_open_run_folder(path: str | os.PathLike[str]) -> RunFolder | None:
    try:
        return open_run_folder(path)
    except LeanAirflowError:
        return None
