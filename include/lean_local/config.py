"""Lean launcher ``config.json`` reading: ``//`` comments, ``environments`` layering, typed keys."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.lean_local.errors import LocalConfigError

# A launcher config is a few KiB; a bigger file is a mistake. Refused before it is read, so a
# huge file neither fills memory nor keeps the comment stripper busy.
MAX_CONFIG_BYTES = 16 << 20


def strip_json_comments(text: str) -> str:
    """Remove ``//`` line comments (and ``/* */`` blocks) that are not inside JSON strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _lookup(raw: Mapping[str, Any], environment: str, key: str) -> Any:
    """Lean's Config.GetToken: ``environments.<env>.<key>`` first (env names may nest with '.'), then top level."""
    envs = raw.get("environments")
    if environment and isinstance(envs, Mapping):
        node: Any = envs
        for part in environment.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and key in node:
            return node[key]
    return raw.get(key)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


@dataclass
class RuntimeConfig:
    path: Path
    raw: dict[str, Any]
    environment: str
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
        value = _lookup(self.raw, self.environment, key)
        return default if value is None else value


def _param_str(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def load_config(path: str | os.PathLike[str]) -> RuntimeConfig:
    cfg_path = Path(path)
    if not cfg_path.is_file():
        raise LocalConfigError(f"config file not found: {cfg_path}")
    size = cfg_path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise LocalConfigError(f"config file {cfg_path} is {size} bytes, over the {MAX_CONFIG_BYTES}-byte limit")
    try:
        raw = json.loads(strip_json_comments(cfg_path.read_text(encoding="utf-8")))
    except UnicodeDecodeError as exc:
        raise LocalConfigError(f"config file {cfg_path} is not UTF-8 text (byte offset {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise LocalConfigError(f"config file {cfg_path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise LocalConfigError(f"config file {cfg_path}: top level must be a JSON object")
    base = cfg_path.resolve().parent
    environment = str(raw.get("environment") or "backtesting")

    def req(key: str) -> Any:
        value = _lookup(raw, environment, key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise LocalConfigError(f"missing required config key '{key}' in {cfg_path}")
        return value

    def as_path(value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else (base / p)

    location = as_path(req("algorithm-location"))
    if location.suffix != ".py":
        raise LocalConfigError(f"config key 'algorithm-location' must name a .py file, got {location}")
    if not location.is_file():
        raise LocalConfigError(f"config key 'algorithm-location': algorithm file not found: {location}")
    type_name = str(_lookup(raw, environment, "algorithm-type-name") or location.stem)
    algorithm_id = str(_lookup(raw, environment, "algorithm-id") or type_name)
    data_folder = as_path(req("data-folder"))
    if not data_folder.is_dir():
        raise LocalConfigError(f"config key 'data-folder': folder not found: {data_folder}")
    results = as_path(_lookup(raw, environment, "results-destination-folder") or ".")
    store = as_path(_lookup(raw, environment, "object-store-root") or "./storage")
    params_raw = _lookup(raw, environment, "parameters") or {}
    if not isinstance(params_raw, Mapping):
        raise LocalConfigError("config key 'parameters' must be a JSON object of name -> value")
    parameters = {str(k): _param_str(v) for k, v in params_raw.items()}
    live_value = _lookup(raw, environment, "live-mode")
    live = _as_bool(live_value) if live_value is not None else False
    live = live or environment.lower().startswith("live")
    as_of = _lookup(raw, environment, "live-as-of")
    if as_of is not None:
        as_of = str(as_of)
        try:
            import datetime as _dt

            _dt.date.fromisoformat(as_of)
        except ValueError as exc:
            raise LocalConfigError(f"config key 'live-as-of' must be yyyy-MM-dd, got {as_of!r}") from exc
    cash_raw = _lookup(raw, environment, "live-cash-balance")
    cash = _parse_cash(cash_raw)
    close_auto = _lookup(raw, environment, "close-automatically")
    return RuntimeConfig(
        path=cfg_path,
        raw=raw,
        environment=environment,
        algorithm_location=location,
        algorithm_type_name=type_name,
        algorithm_id=algorithm_id,
        data_folder=data_folder,
        results_folder=results,
        object_store_root=store,
        parameters=parameters,
        live_mode=live,
        close_automatically=True if close_auto is None else _as_bool(close_auto),
        live_as_of=as_of,
        live_cash_balance=cash,
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
