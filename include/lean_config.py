"""The Lean launcher config: one generator for the Docker image and the local runtime.

The same dict is written as ``config.json`` for both runtimes; only the paths differ (paths
as the engine sees them: container paths for Docker, host paths for local).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from include.contracts._base import check_run_key
from include.errors import LeanConfigError

Mode = Literal["backtest", "live"]

INTENT_PATH_KEY = "execution-intent-path"
PARAMS_PATH_KEY = "execution-params-path"

# Handlers of Lean's Launcher/config.json environments, so the file also drives the real image.
_BACKTESTING_ENVIRONMENT: dict[str, Any] = {
    "live-mode": False,
    "setup-handler": "QuantConnect.Lean.Engine.Setup.BacktestingSetupHandler",
    "result-handler": "QuantConnect.Lean.Engine.Results.BacktestingResultHandler",
    "data-feed-handler": "QuantConnect.Lean.Engine.DataFeeds.FileSystemDataFeed",
    "real-time-handler": "QuantConnect.Lean.Engine.RealTime.BacktestingRealTimeHandler",
    "history-provider": ["SubscriptionDataReaderHistoryProvider"],
    "transaction-handler": "QuantConnect.Lean.Engine.TransactionHandlers.BacktestingTransactionHandler",
}
_LIVE_PAPER_ENVIRONMENT: dict[str, Any] = {
    "live-mode": True,
    "live-mode-brokerage": "PaperBrokerage",
    "setup-handler": "QuantConnect.Lean.Engine.Setup.BrokerageSetupHandler",
    "result-handler": "QuantConnect.Lean.Engine.Results.LiveTradingResultHandler",
    "data-feed-handler": "QuantConnect.Lean.Engine.DataFeeds.LiveTradingDataFeed",
    "real-time-handler": "QuantConnect.Lean.Engine.RealTime.LiveTradingRealTimeHandler",
    "history-provider": ["SubscriptionDataReaderHistoryProvider"],
    "transaction-handler": "QuantConnect.Lean.Engine.TransactionHandlers.BacktestingTransactionHandler",
}
ENVIRONMENT_BY_MODE: dict[str, str] = {"backtest": "backtesting", "live": "live-paper"}


def should_skip_order_build(execution_source: str | None) -> bool:
    """True only when Lean builds the orders ("lean", trimmed, any case).

    Then our Python order build is skipped in the pipeline; it still runs inside the
    consistency check as the independent recomputation.
    """
    return isinstance(execution_source, str) and execution_source.strip().lower() == "lean"


def build_execution_config(
    *,
    intent_path: str,
    params_path: str,
    algorithm_location: str,
    algorithm_id: str,
    data_folder: str,
    results_folder: str,
    object_store_root: str,
    mode: Mode = "backtest",
    parameters: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The launcher config dict. The two execution paths appear top level and under
    ``parameters`` (the algorithm reads them with ``get_parameter``)."""
    problems: list[str] = []
    if mode not in ENVIRONMENT_BY_MODE:
        problems.append(f"mode={mode!r}: expected 'backtest' or 'live'")
    for key, value in {
        "intent_path": intent_path,
        "params_path": params_path,
        "algorithm_location": algorithm_location,
        "data_folder": data_folder,
        "results_folder": results_folder,
        "object_store_root": object_store_root,
    }.items():
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key}={value!r}: a non-empty path is required")
    if isinstance(algorithm_location, str) and not algorithm_location.endswith(".py"):
        problems.append(f"algorithm_location={algorithm_location!r}: expected a Python file (.py)")
    try:
        check_run_key(algorithm_id, "algorithm_id")
    except ValueError as exc:
        problems.append(str(exc))
    merged_parameters: dict[str, Any] = {str(k): v for k, v in (parameters or {}).items()}
    for reserved in (INTENT_PATH_KEY, PARAMS_PATH_KEY):
        if reserved in merged_parameters:
            problems.append(f"parameters[{reserved!r}]: reserved, set by the pipeline")
    if problems:
        raise LeanConfigError(problems)
    merged_parameters[INTENT_PATH_KEY] = intent_path
    merged_parameters[PARAMS_PATH_KEY] = params_path
    stem = algorithm_location.rsplit("/", 1)[-1].removesuffix(".py")
    config: dict[str, Any] = {
        "environment": ENVIRONMENT_BY_MODE[mode],
        "algorithm-language": "Python",
        "algorithm-location": algorithm_location,
        "algorithm-type-name": stem,
        "algorithm-id": algorithm_id,
        "data-folder": data_folder,
        "results-destination-folder": results_folder,
        "object-store-root": object_store_root,
        "close-automatically": True,
        "debugging": False,
        "job-user-id": "0",
        "api-access-token": "",
        "job-organization-id": "",
        "map-file-provider": "QuantConnect.Data.Auxiliary.LocalDiskMapFileProvider",
        "factor-file-provider": "QuantConnect.Data.Auxiliary.LocalDiskFactorFileProvider",
        INTENT_PATH_KEY: intent_path,
        PARAMS_PATH_KEY: params_path,
        "parameters": dict(sorted(merged_parameters.items())),
        "environments": {
            "backtesting": dict(_BACKTESTING_ENVIRONMENT),
            "live-paper": dict(_LIVE_PAPER_ENVIRONMENT),
        },
    }
    if extra:
        clash = sorted(set(extra) & {INTENT_PATH_KEY, PARAMS_PATH_KEY, "parameters", "environment"})
        if clash:
            raise LeanConfigError([f"extra[{k!r}]: reserved, set by the pipeline" for k in clash])
        config.update(extra)
    return config
