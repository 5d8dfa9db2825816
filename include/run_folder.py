"""The run folder: who a run is, where each of its files lives, and how its files are found.

Every DAG run owns ``<artifact root>/<dag_id>/<run key>/``::

    snapshots_run_<key>.jsonl          decision snapshots, one JSON line per rebalance date
    order_intent_run_<key>.json        the order intent
    execution_params_run_<key>.json    the execution params
    initial_state.json                 optional: the account a continued run starts from
    config.json                        Lean's launcher config (include.launch.config)
    engine.json                        which engine ran (runtime and identity), written by the launch
    results/                           Lean's results-destination-folder (order events, statistics, logs)
    storage/                           Lean's object store
    manifest.json                      the hashes of every input (include.audit.manifest)
    report.json, report.html           the consistency report (include.audit.consistency)

A live run's object store is not per run: one persistent store per live deployment (broker and
account), ``<artifact root>/<dag_id>/_deployments/<account>/storage/``, bound at ``/Storage`` for
Docker. ``_deployments`` cannot be a run key (a run key starts with a letter or digit).

The *run key* is the session date (``YYYYMMDD``) of a daily run or ``START_END`` of a range run,
never Airflow's ``run_id``, so a re-run rewrites the same folder. It is also Lean's
``algorithm-id``, so Lean's result files are named ``<run key>-...``. Every path is resolved and
confined under the artifact root.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.errors import ArtifactPathError, RunFolderError

if TYPE_CHECKING:
    from include.artifact_store import ArtifactStore
    from include.contracts.intent import OrderIntent
    from include.contracts.params import ExecutionParams
    from include.launch.config import LauncherConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACT_ROOT_ENV = "LEAN_AIRFLOW_ARTIFACT_ROOT"
DATA_FOLDER_ENV = "LEAN_AIRFLOW_DATA_FOLDER"
DEFAULT_DATA_FOLDER = REPO_ROOT / "include" / "sample_data" / "lean"
ALGORITHM_PATH = REPO_ROOT / "algorithms" / "lean_trend_rotation.py"

# Run keys become folder and file-name parts: no separators, no leading dot, no "..".
RUN_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
_RUN_KEY_RE = re.compile(RUN_KEY_PATTERN)
_DAG_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
_LIVE_EVENTS_RE = re.compile(r"(?P<id>.+)-(?P<day>\d{4}-\d{2}-\d{2})-order-events\.json")
EVENTS_SUFFIX = "-order-events.json"
DEPLOYMENTS_DIR = "_deployments"
_DEPLOYMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
NO_LOG_TAIL = "(no Lean log file was written)"


def check_run_key(value: object, what: str = "run key") -> str:
    """A run key that is safe as one path component (a non-negative int is accepted as its text)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not _RUN_KEY_RE.fullmatch(value) or ".." in value:
        raise ArtifactPathError(f"{what} {value!r} is not a safe path component (expected {RUN_KEY_PATTERN})")
    return value


def check_dag_id(value: object) -> str:
    if not isinstance(value, str) or not _DAG_ID_RE.fullmatch(value) or value in {".", ".."}:
        raise ArtifactPathError(f"dag_id {value!r} is not a safe folder name")
    return value


def snapshots_filename(run_key: str) -> str:
    return f"snapshots_run_{check_run_key(run_key)}.jsonl"


def intent_filename(run_key: str) -> str:
    return f"order_intent_run_{check_run_key(run_key)}.json"


def params_filename(run_key: object) -> str:
    """``execution_params_run_<run key>.json`` (the seed's integer run ids are accepted)."""
    return f"execution_params_run_{check_run_key(run_key)}.json"


def artifact_root(*, create: bool = True) -> Path:
    """``$LEAN_AIRFLOW_ARTIFACT_ROOT``, default ``<repo>/artifacts``; created if missing (unless ``create=False``)."""
    root = Path(os.environ.get(ARTIFACT_ROOT_ENV) or REPO_ROOT / "artifacts").expanduser().resolve()
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def data_folder() -> Path:
    """The Lean data folder: ``$LEAN_AIRFLOW_DATA_FOLDER``, default the bundled sample data."""
    return Path(os.environ.get(DATA_FOLDER_ENV) or DEFAULT_DATA_FOLDER).expanduser().resolve()


def confine(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """``path`` resolved (symlinks followed); ArtifactPathError unless it lies under ``root``."""
    base = Path(root).resolve() if root is not None else artifact_root()
    resolved = Path(path).resolve()
    if resolved != base and base not in resolved.parents:
        raise ArtifactPathError(f"path {os.fspath(path)!r} resolves to {resolved}, outside the artifact root {base}")
    return resolved


def confine_deployment_storage(path: str | os.PathLike[str], run_folder: str | os.PathLike[str]) -> Path:
    """A live deployment's object store, resolved, confined to ``<run folder>/../_deployments/``.

    The DAG folder is resolved, ``_deployments`` is appended literally: a ``_deployments`` symlinked
    elsewhere makes every store resolve outside it, and is refused.
    """
    base = Path(os.path.abspath(run_folder)).resolve().parent / DEPLOYMENTS_DIR
    resolved = Path(path).resolve()
    if base not in resolved.parents:
        raise ArtifactPathError(
            f"live object store {os.fspath(path)!r} resolves to {resolved}, outside the deployments folder {base} "
            "(symlinks are followed)"
        )
    return resolved


def local_path_of(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``path`` itself, or the local path of a ``file://`` URI; ArtifactPathError for another protocol
    (such a folder is staged first: ``include.artifact_store.staged_run``)."""
    text = os.fspath(path)
    if "://" not in text:
        return path
    protocol, _, rest = text.partition("://")
    if protocol.lower() not in ("file", "local") or not rest.startswith("/"):
        raise ArtifactPathError(
            f"{text!r} is not a local folder: a run folder on an object store is staged first "
            "(include.artifact_store.staged_run)"
        )
    from urllib.parse import unquote

    return unquote(rest)


@dataclass(frozen=True)
class RunRef:
    """Who a run is: its DAG and its run key."""

    dag_id: str
    run_key: str

    def __post_init__(self) -> None:
        check_dag_id(self.dag_id)
        object.__setattr__(self, "run_key", check_run_key(self.run_key))

    @classmethod
    def for_date(cls, dag_id: str, day: dt.date) -> RunRef:
        return cls(dag_id, day.strftime("%Y%m%d"))

    @classmethod
    def for_range(cls, dag_id: str, start: dt.date, end: dt.date) -> RunRef:
        if end < start:
            raise ArtifactPathError(f"date range end {end.isoformat()} is before its start {start.isoformat()}")
        return cls(dag_id, f"{start:%Y%m%d}_{end:%Y%m%d}")

    def __str__(self) -> str:
        return f"{self.dag_id}/{self.run_key}"


@dataclass(frozen=True)
class StartingState:
    """The account before a run: cash (None when unknown) and holdings by ticker."""

    cash: float | None
    holdings: dict[str, float] = field(default_factory=dict)
    average_prices: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFolder:
    """The files of one run. Build it with :meth:`create` or :meth:`open`, never by hand."""

    ref: RunRef
    path: Path
    # The artifact store this folder was staged from (include.artifact_store); None: a plain local folder.
    store: ArtifactStore | None = field(default=None, compare=False, repr=False)

    # -- finding or making the folder

    @classmethod
    def create(cls, ref: RunRef, *, root: str | os.PathLike[str] | None = None) -> RunFolder:
        """``<root>/<dag_id>/<run key>``, created and confined under the root (symlinks out are refused)."""
        folder = cls.locate(ref, root=root)
        folder.path.mkdir(parents=True, exist_ok=True)
        # Re-check after mkdir: a symlinked dag folder created meanwhile must not escape.
        confine(folder.path, folder.path.parent.parent)
        return folder

    @classmethod
    def locate(cls, ref: RunRef, *, root: str | os.PathLike[str] | None = None) -> RunFolder:
        """Where the run's folder is (or would be); nothing is created."""
        base = Path(root).resolve() if root is not None else artifact_root()
        return cls(ref=ref, path=confine(base / ref.dag_id / ref.run_key, base))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> RunFolder:
        """An existing run folder; confined under ``root`` when one is given (the DAG tasks give the
        artifact root; the CLI reads any folder it is pointed at). A ``file://`` URI is its local path;
        a run folder on another store is opened through ``include.artifact_store.staged_run``."""
        path = local_path_of(path)
        folder = confine(path, root) if root is not None else Path(path).resolve()
        if not folder.is_dir():
            raise RunFolderError([f"{folder}: not a directory"])
        return cls(ref=RunRef(folder.parent.name, folder.name), path=folder)

    # -- the layout

    @property
    def run_key(self) -> str:
        return self.ref.run_key

    @property
    def dag_id(self) -> str:
        return self.ref.dag_id

    @property
    def algorithm_id(self) -> str:
        """Lean's ``algorithm-id``: the run key, so result files are named after the run."""
        return self.ref.run_key

    @property
    def snapshots_path(self) -> Path:
        return self.path / snapshots_filename(self.run_key)

    @property
    def intent_path(self) -> Path:
        return self.path / intent_filename(self.run_key)

    @property
    def params_path(self) -> Path:
        return self.path / params_filename(self.run_key)

    @property
    def initial_state_path(self) -> Path:
        return self.path / "initial_state.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def engine_path(self) -> Path:
        return self.path / "engine.json"

    @property
    def results_dir(self) -> Path:
        return self.path / "results"

    @property
    def storage_dir(self) -> Path:
        return self.path / "storage"

    @property
    def deployments_dir(self) -> Path:
        """``<artifact root>/<dag_id>/_deployments``: the live deployments of this run's DAG."""
        return self.path.parent / DEPLOYMENTS_DIR

    def deployment_storage_dir(self, deployment: str) -> Path:
        """The persistent object store of a live deployment (``paper``, ``interactive-brokers-DU1``...)."""
        if not isinstance(deployment, str) or not _DEPLOYMENT_RE.fullmatch(deployment) or ".." in deployment:
            raise ArtifactPathError(f"live deployment {deployment!r} is not a safe folder name")
        return self.deployments_dir / deployment / "storage"

    def confine_deployment_storage(self, path: str | os.PathLike[str]) -> Path:
        """``path`` resolved (symlinks followed); ArtifactPathError unless it lies inside this DAG's
        ``_deployments`` folder. ``_deployments`` itself is not followed: a symlink there is refused."""
        return confine_deployment_storage(path, self.path)

    @property
    def final_state_path(self) -> Path:
        return self.results_dir / "final-state.json"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def report_json_path(self) -> Path:
        return self.path / "report.json"

    @property
    def report_html_path(self) -> Path:
        return self.path / "report.html"

    @property
    def parity_path(self) -> Path:
        return self.path / "parity.json"

    @property
    def input_files(self) -> tuple[Path, ...]:
        """The files Lean reads besides its data (bound read-only under ``/Files`` for Docker),
        each confined to the folder: a symlink out of it is refused, never mounted or read."""
        extra = (self.initial_state_path,) if self.initial_state_path.exists() else ()
        return tuple(self.inside(path) for path in (self.intent_path, self.params_path, *extra))

    def invalidate_conclusions(self) -> None:
        """Remove what a previous attempt concluded (manifest, report, parity), the report's
        verdict first; the inputs and Lean's results are replaced by the steps that write them."""
        for path in (self.report_json_path, self.report_html_path, self.manifest_path, self.parity_path):
            path.unlink(missing_ok=True)

    # -- reading: every file is confined to the folder (a symlink out of it is refused)

    def inside(self, path: Path) -> Path:
        """``path`` resolved, or ArtifactPathError when it (or a symlink on the way) leaves the folder."""
        return confine(path, self.path)

    def order_event_files(self) -> list[Path]:
        return order_event_files(self.inside(self.results_dir), self.algorithm_id)

    def read_config(self) -> LauncherConfig:
        """The run's launcher config (the one reader: include.launch.config)."""
        from include.errors import LeanConfigError
        from include.launch.config import read_launcher_config

        try:
            config = read_launcher_config(self.inside(self.config_path))
        except LeanConfigError as exc:
            raise RunFolderError(exc.problems) from None
        found = config.get("algorithm-id")
        if found != self.algorithm_id:
            raise RunFolderError([f"{self.config_path}: algorithm-id {found!r}, expected the run key {self.run_key!r}"])
        return config

    def load_intent(self) -> OrderIntent:
        from include.contracts.intent import load_order_intent

        return load_order_intent(self.inside(self.intent_path))

    def load_params(self) -> ExecutionParams:
        from include.contracts.params import load_execution_params

        return load_execution_params(self.inside(self.params_path))

    def local_path(self, engine_path: str | None) -> Path | None:
        """A path from the config as it exists here: itself, else the same file name in the run folder
        (a Docker run's config names container paths such as ``/Files/initial_state.json``)."""
        if not engine_path:
            return None
        candidate = Path(engine_path)
        if candidate.exists():
            return candidate
        local = self.path / candidate.name
        return local if local.exists() else None

    def data_folder(self, config: LauncherConfig) -> Path:
        """The data folder the run read (a container path falls back to this machine's data folder)."""
        configured = config.get("data-folder")
        if configured and Path(str(configured)).is_dir():
            return Path(str(configured))
        return data_folder()

    def algorithm_path(self, config: LauncherConfig) -> Path | None:
        location = str(config.get("algorithm-location") or "")
        found = self.local_path(location)
        if found is not None:
            return found
        return ALGORITHM_PATH if ALGORITHM_PATH.exists() and ALGORITHM_PATH.name == Path(location).name else None

    def starting_state(self, config: LauncherConfig) -> StartingState:
        parameters = config.parameters
        return read_starting_state(parameters, self.local_path(parameters.get("initial-state-path")))

    def engine_identity(self) -> dict[str, str]:
        """What ``engine.json`` says ran: ``{"runtime": ..., "engine": ...}`` ({} before any run)."""
        if not self.engine_path.is_file():
            return {}
        loaded = json.loads(self.inside(self.engine_path).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def record_engine_identity(self, identity: dict[str, str]) -> None:
        """Write ``engine.json`` once Lean has run (the ingestion puts it into the manifest)."""
        from include.atomic_io import atomic_write_json

        atomic_write_json(self.engine_path, identity)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of Lean's logs (the engine's ``log.txt``, else the algorithm log)."""
        for name in ("log.txt", f"{self.algorithm_id}-log.txt"):
            path = self.results_dir / name
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                return "\n".join(text[-lines:])
        return NO_LOG_TAIL


def order_event_files(results_dir: str | os.PathLike[str], algorithm_id: str) -> list[Path]:
    """Lean's order-event files of ``algorithm_id``: the backtest's ``<id>-order-events.json`` (if any),
    then a live run's per-UTC-day ``<id>-<yyyy-MM-dd>-order-events.json`` files by date."""
    folder = Path(results_dir)
    files: list[Path] = []
    backtest = folder / f"{algorithm_id}{EVENTS_SUFFIX}"
    if backtest.is_file():
        files.append(backtest)
    if folder.is_dir():
        daily = []
        for path in folder.iterdir():
            match = _LIVE_EVENTS_RE.fullmatch(path.name)
            if match and match.group("id") == algorithm_id and path.is_file():
                daily.append((match.group("day"), path))
        files.extend(path for _, path in sorted(daily))
    return files


def lean_algorithm_state(results_dir: str | os.PathLike[str], algorithm_id: str) -> dict[str, str] | None:
    """The ``state`` Lean wrote at the end of a run (``Status``, ``OrderCount``...), from
    ``<id>-summary.json`` or else ``<id>.json``; None when neither holds one (the run did not end).

    Lean writes no order-events file for a run without orders (``BaseResultsHandler.StoreOrderEvents``
    returns on an empty list), so this state is what tells "no orders" from "no results". Live,
    Lean keeps it in ``<id>.json`` (``LiveTradingResultHandler``).
    """
    from include.contracts.validation import check_file_size

    folder = Path(results_dir)
    for name in (f"{algorithm_id}-summary.json", f"{algorithm_id}.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            check_file_size(path, RunFolderError)
            state = json.loads(path.read_text(encoding="utf-8")).get("state")
        except (RunFolderError, OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(state, dict):
            return {str(key): str(value) for key, value in state.items()}
    return None


def detect_algorithm_id(results_dir: str | os.PathLike[str]) -> str | None:
    """The algorithm id from the names of the event files, when exactly one id appears."""
    folder = Path(results_dir)
    if not folder.is_dir():
        return None
    ids: set[str] = set()
    for path in folder.iterdir():
        match = _LIVE_EVENTS_RE.fullmatch(path.name)
        if match:
            ids.add(match.group("id"))
        elif path.name.endswith(EVENTS_SUFFIX):
            ids.add(path.name.removesuffix(EVENTS_SUFFIX))
    return ids.pop() if len(ids) == 1 else None


def read_starting_state(parameters: dict[str, Any], initial_state_path: Path | None) -> StartingState:
    """Cash and holdings before the run: ``initial-state-path`` JSON if any, else ``starting-cash``."""
    from include.contracts.validation import check_file_size

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
        items = (state.get("holdings") or {}).items()
        holdings = {str(sym).upper(): float(item["quantity"]) for sym, item in items}
        prices = {str(sym).upper(): float(item.get("average_price", 0.0)) for sym, item in items}
        state_cash = state.get("cash")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunFolderError([f"{initial_state_path.name}: not a valid initial state ({exc})"]) from None
    return StartingState(
        cash=float(state_cash) if state_cash is not None else cash, holdings=holdings, average_prices=prices
    )
