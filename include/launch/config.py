"""Lean's launcher ``config.json``: the one writer and the one reader.

The writer makes the same dict for the Docker image and the local runtime; only the paths
differ (paths as the engine sees them: container paths for Docker, host paths for local). The
reader follows Lean's ``Config`` rules (``Configuration/Config.cs``): ``//`` and ``/* */``
comments are allowed, and ``Get(key)`` looks in ``environments.<environment>`` first (nested
names with ``.``), then at the top level. Every module that needs a value of a run's config
(the local runtime, the audit, the report) reads it through :func:`read_launcher_config`.

Stdlib only: the local runtime imports this module at every start.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from include.atomic_io import atomic_write_json
from include.errors import ArtifactPathError, LeanConfigError, RunFolderNotWritableError
from include.launch.brokers import DEFAULT_SELECTION, BrokerSelection
from include.run_folder import (
    ALGORITHM_PATH,
    DEPLOYMENTS_DIR,
    RUN_KEY_PATTERN,
    RunFolder,
    check_run_key,
    confine,
    confine_deployment_storage,
    data_folder,
    read_starting_state,
)

Mode = Literal["backtest", "live"]
Runtime = Literal["docker", "local"]
MODES: tuple[Mode, ...] = ("backtest", "live")
RUNTIMES: tuple[Runtime, ...] = ("docker", "local")

INTENT_PATH_KEY = "execution-intent-path"
PARAMS_PATH_KEY = "execution-params-path"
# What a run's engine writes and reads of its own: each must stay inside the run folder, symlinks
# followed (issue #18). ``data-folder`` (the shared Lean data) and ``algorithm-location`` (the
# project's algorithms) lie outside it by design and are not confined.
RESULTS_KEY = "results-destination-folder"
STORAGE_KEY = "object-store-root"
CONFINED_KEYS: tuple[str, ...] = (RESULTS_KEY, STORAGE_KEY, INTENT_PATH_KEY, PARAMS_PATH_KEY)
CONFINED_PARAMETERS: tuple[str, ...] = (INTENT_PATH_KEY, PARAMS_PATH_KEY, "final-state-path", "initial-state-path")
# The local runtime's clock (an ISO-8601 instant with a UTC offset); Lean has no such key and ignores it.
LOCAL_NOW_KEY = "local-runtime-now"
# The paper brokerage's starting account (Lean Brokerages/Paper/PaperBrokerageFactory.cs L36-40, read by
# Brokerages/Brokerage.cs GetCashBalance/GetAccountHoldings L355-409; lean-cli deploy.py L290-300).
LIVE_CASH_BALANCE_KEY = "live-cash-balance"
LIVE_HOLDINGS_KEY = "live-holdings"
ACCOUNT_CURRENCY = "USD"
# Lean's defaults when a key is absent (relative to the config's folder).
PATH_DEFAULTS: dict[str, str] = {RESULTS_KEY: ".", STORAGE_KEY: "./storage"}
# A launcher config is a few KiB; a bigger file is a mistake. Refused before it is read, so a
# huge file neither fills memory nor keeps the comment stripper busy.
MAX_CONFIG_BYTES = 16 << 20

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
BACKTESTING_ENVIRONMENT = "backtesting"


# ---------------------------------------------------------------------------- writing


def build_launcher_config(
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
    broker: BrokerSelection = DEFAULT_SELECTION,
) -> dict[str, Any]:
    """The launcher config dict. The two execution paths appear top level and under
    ``parameters`` (the algorithm reads them with ``get_parameter``). ``environments`` holds
    ``backtesting`` and the broker's live block; ``environment`` selects one by ``mode``."""
    problems: list[str] = []
    if mode not in MODES:
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
    clash = sorted(set(extra or {}) & {INTENT_PATH_KEY, PARAMS_PATH_KEY, "parameters", "environment"})
    problems.extend(f"extra[{k!r}]: reserved, set by the pipeline" for k in clash)
    if problems:
        raise LeanConfigError(problems)
    merged_parameters[INTENT_PATH_KEY] = intent_path
    merged_parameters[PARAMS_PATH_KEY] = params_path
    stem = algorithm_location.rsplit("/", 1)[-1].removesuffix(".py")
    config: dict[str, Any] = {
        "environment": broker.environment if mode == "live" else BACKTESTING_ENVIRONMENT,
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
            BACKTESTING_ENVIRONMENT: dict(_BACKTESTING_ENVIRONMENT),
            broker.environment: broker.environment_block(),
        },
    }
    config.update(extra or {})
    return config


def check_local_now(value: object) -> str:
    """``local_now``: an ISO-8601 instant with a UTC offset; ``LeanConfigError`` otherwise."""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise LeanConfigError([f"local_now={value!r}: expected an ISO-8601 instant with a UTC offset"]) from None
    if moment.tzinfo is None:
        raise LeanConfigError([f"local_now={value!r}: expected a UTC offset (e.g. 2024-03-05T15:10:00-05:00)"])
    return str(value)


@dataclass(frozen=True)
class LeanJob:
    """One Lean run to launch: the run folder it reads and writes, its mode and its inputs."""

    folder: RunFolder
    mode: Mode
    parameters: Mapping[str, Any] = field(default_factory=dict)
    algorithm_path: Path = ALGORITHM_PATH
    data_folder: Path = field(default_factory=data_folder)
    # Live mode on the local runtime: its clock (``local-runtime-now``). The real Lean reads the machine's.
    local_now: str | None = None
    # Live mode: the broker, its data provider and account (``include.launch.brokers``); no secret.
    broker: BrokerSelection = DEFAULT_SELECTION

    def __post_init__(self) -> None:
        if self.local_now is not None:
            check_local_now(self.local_now)

    @property
    def object_store_dir(self) -> Path:
        """Lean's object store on this machine: per run for a backtest (``<run>/storage``), one per live
        deployment (``<artifact root>/<dag_id>/_deployments/<account>/storage``), kept between runs."""
        if self.mode == "live":
            return self.folder.deployment_storage_dir(self.broker.deployment)
        return self.folder.storage_dir


# lean-cli's container layout (lean/components/docker/lean_runner.py).
CONTAINER_ALGORITHM_DIR = "/LeanCLI"
CONTAINER_DATA_DIR = "/Lean/Data"
CONTAINER_RESULTS_DIR = "/Results"
CONTAINER_STORAGE_DIR = "/Storage"
CONTAINER_CONFIG_PATH = "/Lean/Launcher/bin/Debug/config.json"
CONTAINER_FILES_DIR = "/Files"


def live_account_config(job: LeanJob) -> dict[str, Any]:
    """``live-cash-balance`` and ``live-holdings`` of a live run on the paper broker; {} for a real broker
    (its own cash and holdings are the truth: Lean ``Engine/Setup/BrokerageSetupHandler.cs`` L282-289).

    From this session's own account when an earlier attempt left one (``results/final-state.json``), else
    the run folder's initial state (the previous live run's final state, carried over), else
    ``live-cash-balance`` from the ``starting-cash`` parameter. A holding's ``Symbol.ID`` is Lean's
    SecurityIdentifier of the ticker, dated by its map file's first date as Lean's (and the local
    runtime's) map file provider does; the shape is lean-cli's (``lean/commands/live/deploy.py`` L290-300).
    """
    if job.mode != "live" or not job.broker.paper:
        return {}
    folder = job.folder
    # An earlier attempt of this very session persisted the account on every order event (its fills
    # included): a retry starts from it, so what already filled is not bought again. Otherwise the
    # previous session's account, carried over.
    if folder.final_state_path.exists():
        initial: Path | None = folder.inside(folder.final_state_path)
    elif folder.initial_state_path.exists():
        initial = folder.inside(folder.initial_state_path)
    else:
        initial = None
    state = read_starting_state(dict(job.parameters), initial)
    config: dict[str, Any] = {}
    if state.cash is not None:
        config[LIVE_CASH_BALANCE_KEY] = [{"amount": state.cash, "currency": ACCOUNT_CURRENCY}]
    held = sorted(ticker for ticker, quantity in state.holdings.items() if quantity != 0)
    if held:
        from include.lean_local.data import DataProvider  # only here: the symbol ids need the map files

        provider = DataProvider(job.data_folder)
        config[LIVE_HOLDINGS_KEY] = [
            {
                "Symbol": {"Value": ticker, "ID": str(provider.symbol_for(ticker).id)},
                "Quantity": state.holdings[ticker],
                "AveragePrice": state.average_prices.get(ticker, 0.0),
            }
            for ticker in held
        ]
    return config


def launcher_config_for(job: LeanJob, runtime: Runtime) -> dict[str, Any]:
    """The job's launcher config, with paths as the engine sees them (container or host).

    A backtest may start from ``initial-state-path`` (a parameter). A live run does not: the paper broker
    starts from ``live-cash-balance``/``live-holdings``, a real broker from its own account.
    """
    folder = job.folder
    live = job.mode == "live"
    parameters = dict(job.parameters)
    initial = folder.initial_state_path if folder.initial_state_path.exists() and not live else None
    if runtime == "docker":
        parameters["final-state-path"] = f"{CONTAINER_RESULTS_DIR}/{folder.final_state_path.name}"
        if initial is not None:
            parameters["initial-state-path"] = f"{CONTAINER_FILES_DIR}/{initial.name}"
        paths = {
            "intent_path": f"{CONTAINER_FILES_DIR}/{folder.intent_path.name}",
            "params_path": f"{CONTAINER_FILES_DIR}/{folder.params_path.name}",
            "algorithm_location": f"{CONTAINER_ALGORITHM_DIR}/{job.algorithm_path.name}",
            "data_folder": CONTAINER_DATA_DIR,
            "results_folder": CONTAINER_RESULTS_DIR,
            "object_store_root": CONTAINER_STORAGE_DIR,
        }
    elif runtime == "local":
        parameters["final-state-path"] = str(folder.final_state_path)
        if initial is not None:
            parameters["initial-state-path"] = str(initial)
        paths = {
            "intent_path": str(folder.intent_path),
            "params_path": str(folder.params_path),
            "algorithm_location": str(job.algorithm_path),
            "data_folder": str(job.data_folder),
            "results_folder": str(folder.results_dir),
            "object_store_root": str(job.object_store_dir),
        }
    else:
        raise LeanConfigError([f"runtime={runtime!r}: expected 'docker' or 'local'"])
    extra: dict[str, Any] = {}
    if live:
        extra.update(live_account_config(job))
        if job.local_now:
            extra[LOCAL_NOW_KEY] = job.local_now
    return build_launcher_config(
        mode=job.mode,
        algorithm_id=folder.algorithm_id,
        parameters=parameters,
        extra=extra or None,
        broker=job.broker,
        **paths,
    )


def write_launcher_config(job: LeanJob, runtime: Runtime) -> Path:
    """Write ``config.json`` atomically (it never holds secrets) and prepare the output folders.

    The job is checked first (:func:`include.launch.lean_rules.check_job_before_start`: the broker on
    this runtime, Lean's keys and live rules), so a config Lean would refuse is never written.

    A backtest re-run starts from empty ``results/`` and ``storage/``, so nothing of an earlier
    attempt survives and the re-run is deterministic. A live run keeps its results (its per-day event
    files must survive a retry) and its deployment's object store (executed dates, broker state), which
    outlives the run.
    """
    from include.launch.lean_rules import check_job_before_start

    folder = job.folder
    folder.input_files  # noqa: B018 - refuses an input symlinked out of the folder before anything is written
    config = check_job_before_start(job, runtime)
    results = confine(folder.results_dir, folder.path)
    if job.mode == "live":
        storage = folder.confine_deployment_storage(job.object_store_dir)
    else:
        storage = confine(folder.storage_dir, folder.path)
    for output in (results, storage):
        if job.mode == "backtest" and output.exists():
            remove_output_tree(output, folder.path)
        output.mkdir(parents=True, exist_ok=True)
    # Re-checked once it exists: a symlink planted meanwhile must not take the store out of its place.
    if job.mode == "live":
        folder.confine_deployment_storage(storage)
    folder.engine_path.unlink(missing_ok=True)
    atomic_write_json(folder.config_path, config)
    return folder.config_path


def remove_output_tree(path: Path, run_folder: Path) -> None:
    """``shutil.rmtree`` that names what it could not delete, and the fix.

    A Lean container runs as root; before its entry script handed files back, it left root-owned
    folders that the Airflow user cannot empty. A bare PermissionError would not say why or what to do.
    """

    def refuse(_function: object, failed: str, exc_info: tuple[type[BaseException], BaseException, object]) -> None:
        error = exc_info[1]
        if not isinstance(error, PermissionError):
            raise error
        # Deleting an entry needs write permission on its folder: that folder's owner is the culprit.
        blocking = Path(failed).parent if Path(failed) != path else path
        try:
            stat = blocking.stat()
            owner = f"{stat.st_uid}:{stat.st_gid}"
        except OSError:
            owner = "unknown"
        raise RunFolderNotWritableError(failed, owner, f"{os.getuid()}:{os.getgid()}", str(run_folder)) from error

    shutil.rmtree(path, onerror=refuse)


# ---------------------------------------------------------------------------- reading


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


def as_bool(value: Any) -> bool:
    """A config value as Lean's ``Config.GetBool`` reads it (JSON booleans or their text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def parameter_text(value: Any) -> str:
    """A ``parameters`` value as Lean hands it to the algorithm: ``Dictionary<string, string>``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@dataclass(frozen=True)
class LauncherConfig:
    """A launcher config as read from disk, with Lean's environment layering."""

    path: Path
    raw: Mapping[str, Any]

    @property
    def environment(self) -> str:
        return str(self.raw.get("environment") or "backtesting")

    def get(self, key: str, default: Any = None) -> Any:
        """Lean's ``Config.GetToken``: ``environments.<env>.<key>`` first, then the top level."""
        envs = self.raw.get("environments")
        if self.environment and isinstance(envs, Mapping):
            node: Any = envs
            for part in self.environment.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            if isinstance(node, Mapping) and key in node:
                return node[key]
        value = self.raw.get(key)
        return default if value is None else value

    @property
    def live_mode(self) -> bool:
        """``live-mode`` (layered); an environment named ``live*`` is live too, as Lean's shipped ones are."""
        value = self.get("live-mode")
        return (value is not None and as_bool(value)) or self.environment.lower().startswith("live")

    @property
    def mode(self) -> Mode:
        return "live" if self.live_mode else "backtest"

    @property
    def algorithm_id(self) -> str:
        """``algorithm-id`` (else the type name, else the file's stem): it names the result files, so it
        must be one safe path component (no ``/``, no ``..``, no leading dot)."""
        location = str(self.get("algorithm-location") or "")
        type_name = str(self.get("algorithm-type-name") or Path(location).stem)
        value = str(self.get("algorithm-id") or type_name)
        try:
            return check_run_key(value, "algorithm-id")
        except ArtifactPathError:
            raise LeanConfigError(
                [
                    f"{self.path}: key 'algorithm-id'={value!r}: not a safe file-name part (it names the result "
                    f"files, which must stay in the results folder; expected {RUN_KEY_PATTERN})"
                ]
            ) from None

    @property
    def parameters(self) -> dict[str, str]:
        raw = self.get("parameters") or {}
        if not isinstance(raw, Mapping):
            raise LeanConfigError([f"{self.path}: key 'parameters' must be a JSON object of name -> value"])
        return {str(k): parameter_text(v) for k, v in raw.items()}

    def path_value(self, key: str, default: str | None = None) -> Path | None:
        """A path-valued key; relative paths are relative to the config file's folder, as for Lean."""
        value = self.get(key, default)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        candidate = Path(str(value)).expanduser()
        return candidate if candidate.is_absolute() else self.path.resolve().parent / candidate

    @property
    def run_folder(self) -> Path:
        """The folder every confined path must stay in: the config's own folder (the launcher writes
        ``config.json`` into the run folder), or, for a config that names an absolute results folder
        outside its own folder (a copy made elsewhere, as Lean's container entry script makes), the
        folder holding that results folder. Not resolved: :meth:`confined_path` resolves both sides."""
        home = Path(os.path.abspath(self.path)).parent
        raw = self.get(RESULTS_KEY, PATH_DEFAULTS[RESULTS_KEY])
        if not isinstance(raw, str) or not raw.strip() or ".." in Path(raw).parts:
            return home  # refused by confined_path
        results = Path(raw).expanduser()
        if not results.is_absolute():
            return home
        results = Path(os.path.normpath(results))
        return home if results == home or home in results.parents else results.parent

    def confined_path(self, key: str, *, parameter: bool = False) -> Path | None:
        """A path-valued key (top level, or of ``parameters``), resolved with symlinks followed;
        ``LeanConfigError`` naming the key, the value and why when it leaves :attr:`run_folder`."""
        where = f"parameters[{key!r}]" if parameter else repr(key)
        if parameter:
            raw = self.get("parameters") or {}
            value = raw.get(key) if isinstance(raw, Mapping) else None
        else:
            value = self.get(key, PATH_DEFAULTS.get(key))
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise LeanConfigError([f"{self.path}: key {where}={value!r}: expected a path (a JSON string)"])
        if ".." in Path(value).parts:
            raise LeanConfigError(
                [f"{self.path}: key {where}={value!r}: '..' is not allowed (the path must stay in the run folder)"]
            )
        candidate = Path(value).expanduser()
        if not candidate.is_absolute():
            candidate = Path(os.path.abspath(self.path)).parent / candidate
        run = self.run_folder
        try:
            return confine(candidate, run)
        except (ArtifactPathError, OSError):
            pass
        deployments = ""
        if key == STORAGE_KEY and not parameter and self.live_mode:
            # A live run's object store is its deployment's, next to the run folders of its DAG.
            try:
                return confine_deployment_storage(candidate, run)
            except (ArtifactPathError, OSError):
                deployments = f" nor its DAG's {DEPLOYMENTS_DIR} folder (a live deployment's object store)"
        resolved = candidate.resolve(strict=False)
        raise LeanConfigError(
            [
                f"{self.path}: key {where}={value!r}: resolves to {resolved}, outside the run folder "
                f"{run.resolve(strict=False)}{deployments} (symlinks are followed; only data-folder and "
                "algorithm-location may lie outside it)"
            ]
        ) from None

    def check_run_paths(self) -> dict[str, Path]:
        """Every confined path of the config (and ``algorithm-id``), checked; the resolved paths by key
        (``parameters[...]`` keys are prefixed ``parameters.``). ``LeanConfigError`` lists every problem."""
        problems: list[str] = []
        found: dict[str, Path] = {}
        checks = [(key, False) for key in CONFINED_KEYS] + [(key, True) for key in CONFINED_PARAMETERS]
        for key, parameter in checks:
            try:
                path = self.confined_path(key, parameter=parameter)
            except LeanConfigError as exc:
                problems.extend(exc.problems)
                continue
            if path is not None:
                found[f"parameters.{key}" if parameter else key] = path
        try:
            self.algorithm_id  # noqa: B018 - checked: it names the result files
        except LeanConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise LeanConfigError(problems)
        return found


def read_launcher_config(path: str | os.PathLike[str]) -> LauncherConfig:
    """Read a launcher config; ``LeanConfigError`` naming the file for anything unreadable."""
    cfg_path = Path(path)
    try:
        size = cfg_path.stat().st_size
    except OSError as exc:
        raise LeanConfigError([f"{cfg_path}: cannot read ({exc.strerror})"]) from None
    if not cfg_path.is_file():
        raise LeanConfigError([f"{cfg_path}: not a regular file"])
    if size > MAX_CONFIG_BYTES:
        raise LeanConfigError([f"{cfg_path}: file is {size} bytes, over the {MAX_CONFIG_BYTES}-byte limit"])
    try:
        raw = json.loads(strip_json_comments(cfg_path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise LeanConfigError([f"{cfg_path}: cannot read ({exc.strerror})"]) from None
    except UnicodeDecodeError as exc:
        raise LeanConfigError([f"{cfg_path}: not UTF-8 text (byte offset {exc.start})"]) from None
    except json.JSONDecodeError as exc:
        raise LeanConfigError([f"{cfg_path}: not valid JSON ({exc})"]) from None
    if not isinstance(raw, dict):
        raise LeanConfigError([f"{cfg_path}: top level must be a JSON object"])
    return LauncherConfig(path=cfg_path, raw=raw)
