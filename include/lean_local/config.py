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
from include.launch.config import LauncherConfig, as_bool, read_launcher_config
from include.lean_local.errors import LocalConfigError


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
    live_as_of: str | None = None
    live_cash_balance: float | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.launcher.get(key, default)


def load_config(path: str | os.PathLike[str]) -> RuntimeConfig:
    cfg_path = Path(path)
    try:
        launcher = read_launcher_config(cfg_path)
        parameters = launcher.parameters
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
    as_of = launcher.get("live-as-of")
    if as_of is not None:
        as_of = str(as_of)
        try:
            dt.date.fromisoformat(as_of)
        except ValueError as exc:
            raise LocalConfigError(f"config key 'live-as-of' must be yyyy-MM-dd, got {as_of!r}") from exc
    close_auto = launcher.get("close-automatically")
    return RuntimeConfig(
        path=cfg_path,
        launcher=launcher,
        algorithm_location=location,
        algorithm_type_name=str(launcher.get("algorithm-type-name") or location.stem),
        algorithm_id=launcher.algorithm_id,
        data_folder=data_folder,
        results_folder=launcher.path_value("results-destination-folder", ".") or cfg_path.parent,
        object_store_root=launcher.path_value("object-store-root", "./storage") or cfg_path.parent / "storage",
        parameters=parameters,
        live_mode=launcher.live_mode,
        close_automatically=True if close_auto is None else as_bool(close_auto),
        live_as_of=as_of,
        live_cash_balance=_parse_cash(launcher.get("live-cash-balance")),
    )


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
