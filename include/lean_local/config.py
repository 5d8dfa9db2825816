"""The local runtime's view of Lean's launcher ``config.json``: the keys it runs on, checked.

The file is read by the one reader, :func:`include.launch.config.read_launcher_config` (``//``
comments, ``environments`` layering); this module only types and checks the keys the engine needs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.errors import LeanConfigError
from include.launch.config import RESULTS_KEY, STORAGE_KEY, LauncherConfig, as_bool, read_launcher_config
from include.launch.data_folder import check_lean_start_files
from include.lean_local.errors import LocalConfigError

LOCAL_NOW_KEY = "local-runtime-now"


@dataclass
class RuntimeConfig:
    path: Path
    launcher: LauncherConfig
    algorithm_location: Path
    algorithm_type_name: str
    algorithm_id: str
    data_folder: Path
    results_folder: Path
    object_store_root: Path
    parameters: dict[str, str] = field(default_factory=dict)
    live_mode: bool = False
    close_automatically: bool = True
    live_cash_balance: float | None = None
    # The local runtime's clock (``local-runtime-now``, an ISO-8601 instant): tests set it; Lean has no
    # such key and reads the machine's clock, as the local runtime does without it.
    fixed_now_utc: dt.datetime | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.launcher.get(key, default)

    def now_utc(self) -> dt.datetime:
        return self.fixed_now_utc or dt.datetime.now(dt.UTC)


def load_config(path: str | os.PathLike[str]) -> RuntimeConfig:
    cfg_path = Path(path)
    try:
        launcher = read_launcher_config(cfg_path)
        parameters = launcher.parameters
        # algorithm-id, results, storage and the run's own files stay in the run folder (symlinks followed).
        confined = launcher.check_run_paths()
    except LeanConfigError as exc:
        raise LocalConfigError(f"config file {'; '.join(exc.problems)}") from None

    def required_path(key: str) -> Path:
        found = launcher.path_value(key)
        if found is None:
            raise LocalConfigError(f"missing required config key '{key}' in {cfg_path}")
        return found

    location = required_path("algorithm-location")
    if location.suffix != ".py":
        raise LocalConfigError(f"config key 'algorithm-location' must name a .py file, got {location}")
    if not location.is_file():
        raise LocalConfigError(f"config key 'algorithm-location': algorithm file not found: {location}")
    data_folder = required_path("data-folder")
    if not data_folder.is_dir():
        raise LocalConfigError(f"config key 'data-folder': folder not found: {data_folder}")
    # Refuse what the real Lean image would refuse (its market-hours and symbol-properties databases),
    # so a data folder that passes here also starts in Docker.
    missing = check_lean_start_files(data_folder)
    if missing:
        raise LocalConfigError(
            f"config key 'data-folder': {data_folder} is not a data folder Lean can start on: " + "; ".join(missing)
        )
    close_auto = launcher.get("close-automatically")
    fixed_now = _parse_now(launcher.get(LOCAL_NOW_KEY))
    return RuntimeConfig(
        path=cfg_path,
        launcher=launcher,
        algorithm_location=location,
        algorithm_type_name=str(launcher.get("algorithm-type-name") or location.stem),
        algorithm_id=launcher.algorithm_id,
        data_folder=data_folder,
        # A blank value is Lean's default: the config's folder, and its storage/ for the object store.
        results_folder=confined.get(RESULTS_KEY) or cfg_path.parent.resolve(),
        object_store_root=confined.get(STORAGE_KEY) or cfg_path.parent.resolve() / "storage",
        parameters=parameters,
        live_mode=launcher.live_mode,
        close_automatically=True if close_auto is None else as_bool(close_auto),
        live_cash_balance=_parse_cash(launcher.get("live-cash-balance")),
        fixed_now_utc=fixed_now,
    )


def _parse_now(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise LocalConfigError(f"config key '{LOCAL_NOW_KEY}' must be an ISO-8601 instant, got {value!r}") from None
    if moment.tzinfo is None:
        raise LocalConfigError(f"config key '{LOCAL_NOW_KEY}' must carry a UTC offset, got {value!r}")
    return moment.astimezone(dt.UTC)


def _parse_cash(value: Any) -> float | None:
    """``live-cash-balance``: a number, or Lean's list ``[{"currency": "USD", "amount": N}]``."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return _parse_cash(json.loads(value))
        except json.JSONDecodeError:
            try:
                return float(value)
            except ValueError as exc:
                raise LocalConfigError(f"config key 'live-cash-balance' is not a number: {value!r}") from exc
    if isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                cur = str(item.get("currency", item.get("Currency", "USD"))).upper()
                if cur == "USD":
                    return float(item.get("amount", item.get("Amount", 0)))
        return None
    raise LocalConfigError(f"config key 'live-cash-balance' has an unsupported value: {value!r}")
