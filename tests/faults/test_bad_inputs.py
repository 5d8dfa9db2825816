"""Bad inputs at every boundary: each gets a named error that says what was wrong and where
(field, file, symbol or byte offset), and leaves nothing behind: no file (temp files included)
in the artifact root, no temp file anywhere, and no row in the audit DB.

Conventions the cases rely on:

* Lowercase tickers are normalised to upper case (Lean's tickers are case-insensitive), so the
  lowercase cases are lowercase duplicates of an upper-case symbol.
* The intent *builder* skips a row with a blank symbol (and reports it); a blank symbol in an
  intent or snapshot *file* is an error.
* Weights are bounded by gross exposure (sum of |weight|) <= 1. The cash buffer does not add to
  that sum: the algorithm scales every target by (1 - cash_buffer_ratio), so weights that sum
  to 1 with a 5 % buffer invest 95 %, and ``cash_buffer_ratio`` itself must lie in [0, 1).
* Files of 1 GiB are sparse (``truncate``), never written; contract and config files are
  refused by size before they are read, events files are streamed and fail at the first bad byte.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.atomic_io import atomic_write_text
from include.audit.db import Base
from include.audit.ingest import ingest_order_events
from include.contracts.intent import load_order_intent, write_order_intent
from include.contracts.params import load_execution_params, write_execution_params
from include.contracts.snapshot import DecisionSnapshot, load_snapshot, load_snapshots
from include.errors import (
    ArtifactPathError,
    ExecutionParamsError,
    LeanConfigError,
    OrderEventsFileError,
    OrderIntentError,
    RunFolderError,
    SnapshotError,
)
from include.launch.config import build_launcher_config, write_launcher_config
from include.lean_local.config import LocalConfigError, load_config
from include.lean_local.runner import load_algorithm_class
from include.pipeline import lean_job, step_check, step_ingest, step_write_intent, step_write_params
from include.run_folder import (
    ALGORITHM_PATH,
    DEFAULT_DATA_FOLDER,
    RunFolder,
    RunRef,
    confine,
    read_starting_state,
)
from tests.conftest import REPO_ROOT
from tests.faults.helpers import STARTING_CASH, lean_event, prepare_run

DAY = dt.date(2021, 3, 1)
ALGO = "1234567890"
ONE_GIB = 1 << 30
# ru_maxrss is in KiB on Linux. A 1 GiB file read whole would raise the peak by about 1 GiB.
MAX_PEAK_GROWTH_KIB = 256 << 10


@dataclass(frozen=True)
class Ctx:
    root: Path  # the artifact root (watched)
    inputs: Path  # where hand-made input files go (outside the root)
    engine: Engine | None


@dataclass(frozen=True)
class Staged:
    """A case whose inputs live inside the artifact root: ``prepare`` builds them before the
    root is snapshotted, then ``act`` (given what ``prepare`` returned) must fail and add nothing."""

    prepare: Callable[[Ctx], Any]
    act: Callable[[Ctx, Any], object]


Case = Callable[[Ctx], object] | Staged


# ------------------------------------------------------------------ case builders


def _params(**bad: Any) -> Callable[[Ctx], object]:
    return lambda c: write_execution_params(output_dir=c.root / "run", run_id="k", params=bad)


def _intent(rows: list[dict[str, Any]], run_key: str = "k") -> Callable[[Ctx], object]:
    return lambda c: write_order_intent(output_dir=c.root / "run", run_key=run_key, rebalances={DAY: rows})


def _file(name: str, text: str, loader: Callable[[Path], object]) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / name
        path.write_text(text, encoding="utf-8")
        return loader(path)

    return case


def _bytes_file(name: str, data: bytes, loader: Callable[[Path], object]) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / name
        path.write_bytes(data)
        return loader(path)

    return case


def _snapshot_doc(items: list[dict[str, Any]]) -> str:
    return json.dumps({"schema_version": 1, "as_of": DAY.isoformat(), "source": "test", "items": items})


def _snapshot_file(items: list[dict[str, Any]]) -> Callable[[Ctx], object]:
    return _file("snapshot.json", _snapshot_doc(items), load_snapshot)


def _intent_doc(items: list[dict[str, Any]]) -> str:
    """An intent file as the writer would produce it, but with the given (bad) items."""
    orders = [
        {"rebalance_date": DAY.isoformat(), "symbol": i["symbol"], "side": "BUY", "weight": i["weight"]} for i in items
    ]
    doc = {
        "schema_version": 2,
        "run_key": "k",
        "source": "test",
        "rebalances": [{"date": DAY.isoformat(), "items": items}],
        "intent_orders": orders,
    }
    return json.dumps(doc)  # NaN and Infinity come out as JS tokens, as a careless writer would emit them


def _intent_file(items: list[dict[str, Any]]) -> Callable[[Ctx], object]:
    return _file("intent.json", _intent_doc(items), load_order_intent)


def _events(text: str | None, *, sparse: int = 0) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        results = c.inputs / "results"
        results.mkdir(exist_ok=True)
        path = results / f"{ALGO}-order-events.json"
        if sparse:
            with path.open("wb") as handle:
                handle.truncate(sparse)  # a 1 GiB file of NUL bytes, without writing 1 GiB
        elif text is not None:
            path.write_text(text, encoding="utf-8")
        assert c.engine is not None
        return ingest_order_events(engine=c.engine, results_dir=results, algorithm_id=ALGO, run_key="k", dag_id="d")

    return case


def _event(**overrides: Any) -> dict[str, Any]:
    return lean_event(ALGO, **overrides)


def _huge(loader: Callable[[Path], object], name: str) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / name
        with path.open("wb") as handle:
            handle.truncate(ONE_GIB)
        return loader(path)

    return case


def _huge_run_folder_config(c: Ctx) -> object:
    folder = c.inputs / "d" / "k"
    folder.mkdir(parents=True)
    (folder / "order_intent_run_k.json").write_text("{}", encoding="utf-8")
    with (folder / "config.json").open("wb") as handle:
        handle.truncate(ONE_GIB)
    return RunFolder.open(folder).read_config()


def _config(doc: dict[str, Any] | str | bytes) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / "config.json"
        if isinstance(doc, bytes):
            path.write_bytes(doc)
        else:
            path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
        return load_algorithm_class(load_config(path))

    return case


def _good_config(c: Ctx, **changes: Any) -> dict[str, Any]:
    doc = {
        "environment": "backtesting",
        "algorithm-location": str(ALGORITHM_PATH),
        "algorithm-id": "k",
        "data-folder": str(DEFAULT_DATA_FOLDER),
        "results-destination-folder": str(c.inputs / "r"),
        "object-store-root": str(c.inputs / "s"),
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def _config_with(**changes: Any) -> Callable[[Ctx], object]:
    return lambda c: _config(_good_config(c, **changes))(c)


NOT_AN_ALGORITHM = "from AlgorithmImports import *\n\nclass Strategy:\n    pass\n"


def _no_qcalgorithm(c: Ctx) -> object:
    algorithm = c.inputs / "not_an_algorithm.py"
    algorithm.write_text(NOT_AN_ALGORITHM, encoding="utf-8")
    return _config(_good_config(c, **{"algorithm-location": str(algorithm)}))(c)


def _launcher(**changes: Any) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        kwargs: dict[str, Any] = {
            "intent_path": "/Files/order_intent_run_k.json",
            "params_path": "/Files/execution_params_run_k.json",
            "algorithm_location": "/LeanCLI/lean_trend_rotation.py",
            "algorithm_id": "k",
            "data_folder": "/Lean/Data",
            "results_folder": "/Results",
            "object_store_root": "/Storage",
        }
        kwargs.update(changes)
        return build_launcher_config(**kwargs)

    return case


def _create(dag_id: str, run_key: str) -> Callable[[Ctx], object]:
    """The run folder of ``dag_id``/``run_key`` made under the root (``RunRef`` checks both names)."""
    return lambda c: RunFolder.create(RunRef(dag_id, run_key), root=c.root)


def _symlinked_run_dir(c: Ctx) -> object:
    (c.root / "d").mkdir()
    (c.root / "d" / "k").symlink_to(c.inputs, target_is_directory=True)
    try:
        return RunFolder.create(RunRef("d", "k"), root=c.root)
    finally:
        (c.root / "d" / "k").unlink()
        (c.root / "d").rmdir()


def _symlinked_dag_dir(c: Ctx) -> object:
    (c.root / "d").symlink_to(c.inputs, target_is_directory=True)
    try:
        return RunFolder.create(RunRef("d", "k"), root=c.root)
    finally:
        (c.root / "d").unlink()


def _symlinked_file(c: Ctx) -> object:
    outside = c.inputs / "secret.json"
    outside.write_text("{}", encoding="utf-8")
    link = c.root / "intent.json"
    link.symlink_to(outside)
    try:
        return confine(link, c.root)
    finally:
        link.unlink()


# -- staged cases: a run folder inside the artifact root, then a step that must fail cleanly


def _folder(c: Ctx) -> RunFolder:
    return RunFolder.create(RunRef("d", "k"), root=c.root)


def _snapshots_outside(c: Ctx, folder: Path | None = None) -> Path:
    """A valid snapshots file outside the root (in ``folder``, default the inputs folder)."""
    folder = folder or c.inputs
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "snapshots_run_k.jsonl"
    snap = DecisionSnapshot.model_validate(json.loads(_snapshot_doc([{"symbol": "SPY", "weight": 0.5}])))
    path.write_text(snap.model_dump_json() + "\n", encoding="utf-8")
    return path


def _write_intent_outside(c: Ctx) -> object:
    """The write_intent task handed a run folder (with its snapshots) that lies outside the root."""
    outside = _snapshots_outside(c, c.inputs / "d" / "k").parent
    return step_write_intent(RunFolder.open(outside, root=c.root))


def _prepare_symlinked_run_folder(c: Ctx) -> Path:
    (c.root / "d").mkdir()
    (c.root / "d" / "k").symlink_to(c.inputs, target_is_directory=True)
    _snapshots_outside(c)
    return c.root / "d" / "k"


def _prepare_symlinked_snapshots(c: Ctx) -> RunFolder:
    folder = _folder(c)
    folder.snapshots_path.symlink_to(_snapshots_outside(c))
    return folder


def _prepare_previous_run_outside(c: Ctx) -> tuple[RunFolder, Path]:
    """A run folder in the root, and a "previous run" with a final state outside it."""
    previous = c.inputs / "d" / "20210226"
    (previous / "results").mkdir(parents=True)
    (previous / "results" / "final-state.json").write_text('{"cash": 1.0, "holdings": {}}', encoding="utf-8")
    return _folder(c), previous


def _ready_run(c: Ctx) -> RunFolder:
    """snapshot -> intent -> params, the launcher config and the engine identity, inside the root
    (no engine run)."""
    run = prepare_run(root=c.root)
    job = lean_job(run, mode="backtest", parameters={"starting-cash": STARTING_CASH}, data_folder=DEFAULT_DATA_FOLDER)
    write_launcher_config(job, "local")
    run.record_engine_identity({"runtime": "local", "engine": "lean_local"})
    return run


def _run_with_events(text: str) -> Callable[[Ctx], RunFolder]:
    def prepare(c: Ctx) -> RunFolder:
        run = _ready_run(c)
        (run.results_dir / f"{run.run_key}-order-events.json").write_text(text, encoding="utf-8")
        return run

    return prepare


def _ingest(run: RunFolder) -> object:
    return step_ingest(run)


def _results_symlinked_out(c: Ctx) -> RunFolder:
    """A ready run whose results/ is a symlink to a folder outside the root holding a valid-looking
    events file of this run."""
    run = _ready_run(c)
    key = run.run_key
    (c.inputs / f"{key}-order-events.json").write_text(
        json.dumps([_event(id=f"{key}-1-1", algorithmId=key)]), encoding="utf-8"
    )
    run.results_dir.rmdir()
    run.results_dir.symlink_to(c.inputs, target_is_directory=True)
    return run


def _folder_of_another_run(c: Ctx) -> RunFolder:
    """A ready run's files copied into the folder of another run key (its config names the first run)."""
    import shutil

    run = _ready_run(c)
    other = run.path.parent / "20210301"
    shutil.copytree(run.path, other)
    return RunFolder.open(other, root=c.root)


def _huge_run_config(c: Ctx) -> RunFolder:
    run = _ready_run(c)
    with run.config_path.open("wb") as handle:
        handle.truncate(ONE_GIB)
    return run


W = {"symbol": "SPY", "weight": 0.5}
NAN, INF = float("nan"), float("inf")
CASES: list[tuple[str, Case, type[Exception], str]] = [
    # -- execution params: NaN, inf, negative, out of range, non-integer lots
    ("params min_qty NaN", _params(min_qty=NAN), ExecutionParamsError, r"min_qty=nan"),
    ("params min_qty -inf", _params(min_qty=-INF), ExecutionParamsError, r"min_qty=-inf"),
    ("params min_qty 0", _params(min_qty=0), ExecutionParamsError, r"min_qty=0: .*greater than or equal to 1"),
    ("params min_qty negative", _params(min_qty=-1), ExecutionParamsError, r"min_qty=-1"),
    ("params min_qty 1.5", _params(min_qty=1.5), ExecutionParamsError, r"min_qty=1\.5"),
    ("params lot_size inf", _params(lot_size=INF), ExecutionParamsError, r"lot_size=inf"),
    ("params lot_size negative", _params(lot_size=-5), ExecutionParamsError, r"lot_size=-5"),
    ("params lot_size 1.5", _params(lot_size=1.5), ExecutionParamsError, r"lot_size=1\.5"),
    ("params lot_size string", _params(lot_size="2"), ExecutionParamsError, r"lot_size='2'"),
    ("params lot_size bool", _params(lot_size=True), ExecutionParamsError, r"lot_size=True"),
    ("params fee_bps -inf", _params(fee_bps=-INF), ExecutionParamsError, r"fee_bps=-inf"),
    ("params fee_bps NaN", _params(fee_bps=NAN), ExecutionParamsError, r"fee_bps=nan"),
    ("params fee_bps negative", _params(fee_bps=-1.0), ExecutionParamsError, r"fee_bps=-1\.0"),
    ("params fee_bps string", _params(fee_bps="1"), ExecutionParamsError, r"fee_bps='1'"),
    ("params slippage_open_bps inf", _params(slippage_open_bps=INF), ExecutionParamsError, r"slippage_open_bps=inf"),
    ("params slippage_open_bps NaN", _params(slippage_open_bps=NAN), ExecutionParamsError, r"slippage_open_bps=nan"),
    ("params slippage_close_bps negative", _params(slippage_close_bps=-2.0), ExecutionParamsError, r"slippage_close"),
    ("params cash_buffer_ratio 1", _params(cash_buffer_ratio=1.0), ExecutionParamsError, r"cash_buffer_ratio=1\.0"),
    ("params cash_buffer_ratio 1.5", _params(cash_buffer_ratio=1.5), ExecutionParamsError, r"cash_buffer_ratio=1\.5"),
    ("params cash_buffer_ratio NaN", _params(cash_buffer_ratio=NAN), ExecutionParamsError, r"cash_buffer_ratio=nan"),
    ("params cash_buffer_ratio negative", _params(cash_buffer_ratio=-0.1), ExecutionParamsError, r"cash_buffer"),
    ("params unknown key", _params(lotsize=2), ExecutionParamsError, r"lotsize"),
    ("params risk max_weight 2", _params(risk_overrides={"max_weight": 2.0}), ExecutionParamsError, r"max_weight"),
    (
        "params file with a NaN",
        _file("params.json", '{"fee_bps": NaN}', load_execution_params),
        ExecutionParamsError,
        r"params\.json: fee_bps=nan",
    ),
    (
        "params file of the wrong type",
        _file("params.json", "[1, 2]", load_execution_params),
        ExecutionParamsError,
        r"params\.json: <root>=\[1, 2\]: expected a JSON object",
    ),
    (
        "params path traversal run_id",
        lambda c: write_execution_params(output_dir=c.root, run_id="../x", params={}),
        ArtifactPathError,
        r"run key '\.\./x' is not a safe path component",
    ),
    # -- symbols and weights, built into an intent
    ("intent NaN weight", _intent([{"symbol": "SPY", "weight": NAN}]), OrderIntentError, r"items\[0\]\.weight=nan"),
    ("intent inf weight", _intent([{"symbol": "SPY", "weight": INF}]), OrderIntentError, r"items\[0\]\.weight=inf"),
    ("intent -inf weight", _intent([W, {"symbol": "QQQ", "weight": -INF}]), OrderIntentError, r"items\[1\]\.weight"),
    ("intent duplicate symbol", _intent([W, {"symbol": "SPY", "weight": 0.1}]), OrderIntentError, r"items\[1\].*SPY"),
    ("intent lowercase duplicate", _intent([W, {"symbol": "spy", "weight": 0.1}]), OrderIntentError, r"duplicate"),
    ("intent unicode symbol", _intent([{"symbol": "ÄPFEL", "weight": 0.1}]), OrderIntentError, r"'ÄPFEL' is not a"),
    ("intent traversal symbol", _intent([{"symbol": "../../etc", "weight": 0.1}]), OrderIntentError, r"'\.\./\.\./E"),
    ("intent gross weight 1.2", _intent([W, {"symbol": "QQQ", "weight": 0.7}]), OrderIntentError, r"gross weight 1\.2"),
    (
        "intent gross weight just over 1",
        _intent([W, {"symbol": "QQQ", "weight": 0.5000001}]),
        OrderIntentError,
        r"rebalances\[2021-03-01\].*gross weight 1\.0000",
    ),
    (
        "intent short weights gross over 1",
        _intent([{"symbol": "SPY", "weight": -0.6}, {"symbol": "QQQ", "weight": 0.6}]),
        OrderIntentError,
        r"gross weight 1\.2",
    ),
    (
        "intent traversal run_key",
        _intent([W], run_key="../../x"),
        ArtifactPathError,
        r"run key '\.\./\.\./x' is not a safe path component",
    ),
    # -- symbols and weights in intent files
    (
        "intent file NaN weight",
        _intent_file([{"symbol": "SPY", "weight": NAN}]),
        OrderIntentError,
        r"intent\.json: rebalances\.0\.items\.0\.weight=nan",
    ),
    (
        "intent file blank symbol",
        _intent_file([{"symbol": " ", "weight": 0.1}]),
        OrderIntentError,
        r"intent\.json: rebalances\.0\.items\.0\.symbol",
    ),
    (
        "intent file unicode symbol",
        _intent_file([{"symbol": "ŞPY", "weight": 0.1}]),
        OrderIntentError,
        r"intent\.json: .*'ŞPY' is not a ticker",
    ),
    (
        "intent file truncated",
        _file("intent.json", '{"schema_version": 2, "run', load_order_intent),
        OrderIntentError,
        r"intent\.json: cannot read JSON \(Unterminated string .*\(char 22\)",
    ),
    # -- symbols and weights in snapshot files
    (
        "snapshot blank symbol",
        _snapshot_file([{"symbol": " ", "weight": 0.1}]),
        SnapshotError,
        r"snapshot\.json: items\.0\.symbol",
    ),
    (
        "snapshot unicode symbol",
        _snapshot_file([{"symbol": "Ωmega", "weight": 0.1}]),
        SnapshotError,
        r"items\.0\.symbol='Ωmega'.*not a ticker",
    ),
    (
        "snapshot traversal symbol",
        _snapshot_file([{"symbol": "../../etc", "weight": 0.1}]),
        SnapshotError,
        r"items\.0\.symbol='\.\./\.\./etc'",
    ),
    ("snapshot duplicate symbol", _snapshot_file([W, W]), SnapshotError, r"snapshot\.json: .*duplicate symbol 'SPY'"),
    (
        "snapshot lowercase duplicate",
        _snapshot_file([W, {"symbol": "spy", "weight": 0.1}]),
        SnapshotError,
        r"duplicate symbol 'SPY'",
    ),
    ("snapshot NaN weight", _snapshot_file([{"symbol": "SPY", "weight": NAN}]), SnapshotError, r"items\.0\.weight=nan"),
    ("snapshot inf weight", _snapshot_file([{"symbol": "SPY", "weight": INF}]), SnapshotError, r"items\.0\.weight=inf"),
    (
        "snapshot -inf weight",
        _snapshot_file([W, {"symbol": "QQQ", "weight": -INF}]),
        SnapshotError,
        r"items\.1\.weight=-inf",
    ),
    (
        "snapshot gross weight > 1",
        _snapshot_file([{"symbol": "A", "weight": 0.8}, {"symbol": "B", "weight": 0.5}]),
        SnapshotError,
        r"snapshot 2021-03-01: gross weight 1\.3",
    ),
    ("snapshot wrong type", _file("snapshot.json", "[1, 2]", load_snapshot), SnapshotError, r"snapshot\.json: <root>"),
    ("snapshot empty file", _file("snapshot.json", "", load_snapshot), SnapshotError, r"snapshot\.json: cannot read"),
    (
        "snapshots jsonl garbled line",
        _file("snapshots.jsonl", _snapshot_doc([W]) + "\n{garbled\n", load_snapshots),
        SnapshotError,
        r"snapshots\.jsonl:2: ",
    ),
    (
        "snapshots jsonl not UTF-8",
        _bytes_file("s.jsonl", _snapshot_doc([W]).encode() + b"\n\xff\xfe{}\n", load_snapshots),
        SnapshotError,
        rf"s\.jsonl:2: not UTF-8 text \(byte offset {len(_snapshot_doc([W])) + 1}\)",
    ),
    # -- paths: traversal, absolute, nested, symlinks out of the root
    ("run key traversal", _create("d", "../escape"), ArtifactPathError, r"'\.\./escape'"),
    ("run key absolute", _create("d", "/etc"), ArtifactPathError, r"run key '/etc'"),
    ("run key nested", _create("d", "a/b"), ArtifactPathError, r"run key 'a/b'"),
    ("run key empty", _create("d", ""), ArtifactPathError, r"run key ''"),
    ("run key dot-dot", _create("d", ".."), ArtifactPathError, r"run key '\.\.'"),
    ("run key trailing newline", _create("d", "k\n"), ArtifactPathError, r"run key 'k\\n'"),
    ("dag id traversal", _create("..", "k"), ArtifactPathError, r"dag_id '\.\.'"),
    ("dag id nested", _create("a/b", "k"), ArtifactPathError, r"dag_id 'a/b'"),
    ("dag id trailing newline", _create("d\n", "k"), ArtifactPathError, r"dag_id 'd\\n'"),
    ("path outside the root", lambda c: confine(c.root / ".." / "elsewhere", c.root), ArtifactPathError, r"outside"),
    ("symlinked run folder out of the root", _symlinked_run_dir, ArtifactPathError, r"d/k.*outside the artifact root"),
    ("symlinked dag folder out of the root", _symlinked_dag_dir, ArtifactPathError, r"d/k.*outside the artifact root"),
    ("symlinked file out of the root", _symlinked_file, ArtifactPathError, r"intent\.json.*outside"),
    # The tasks open their run folder with RunFolder.open(path, root=artifact_root()): confined.
    (
        "step_write_intent run folder outside the root",
        _write_intent_outside,
        ArtifactPathError,
        r"inputs/d/k'.*outside the artifact root",
    ),
    (
        "step_write_params run folder traversal",
        lambda c: step_write_params(RunFolder.open(c.root / "d" / "k" / ".." / ".." / ".." / "x", root=c.root), {}),
        ArtifactPathError,
        r"\.\./\.\./\.\./x'.*outside",
    ),
    (
        "step_check run folder outside the root",
        lambda c: step_check(RunFolder.open(c.inputs, root=c.root)),
        ArtifactPathError,
        r"inputs.*outside",
    ),
    (
        "step_write_intent run folder symlinked out of the root",
        Staged(
            _prepare_symlinked_run_folder,
            lambda c, path: step_write_intent(RunFolder.open(path, root=c.root)),
        ),
        ArtifactPathError,
        r"d/k'.*outside the artifact root",
    ),
    (
        "step_write_intent snapshots file symlinked out of the root",
        Staged(_prepare_symlinked_snapshots, lambda c, folder: step_write_intent(folder)),
        ArtifactPathError,
        r"snapshots_run_k\.jsonl'.*outside",
    ),
    (
        "step_write_params previous run outside the root",
        Staged(
            _prepare_previous_run_outside,
            lambda c, staged: step_write_params(staged[0], {}, previous=RunFolder.open(staged[1], root=c.root)),
        ),
        ArtifactPathError,
        r"inputs/d/20210226'.*outside",
    ),
    # -- huge files are refused by size before parsing
    ("1 GiB intent file", _huge(load_order_intent, "intent.json"), OrderIntentError, r"intent\.json: .*1073741824 by"),
    ("1 GiB params file", _huge(load_execution_params, "params.json"), ExecutionParamsError, r"params\.json: .*107374"),
    ("1 GiB snapshot file", _huge(load_snapshot, "snapshot.json"), SnapshotError, r"snapshot\.json: .*-byte limit"),
    ("1 GiB snapshots jsonl", _huge(load_snapshots, "snaps.jsonl"), SnapshotError, r"snaps\.jsonl: .*-byte limit"),
    (
        "1 GiB launcher config",
        _huge(load_config, "config.json"),
        LocalConfigError,
        r"config\.json: file is 1073741824 bytes",
    ),
    ("1 GiB run folder config", _huge_run_folder_config, RunFolderError, r"config\.json: .*-byte limit"),
    (
        "1 GiB initial state",
        _huge(lambda path: read_starting_state({}, path), "initial_state.json"),
        RunFolderError,
        r"initial_state\.json: file is 1073741824 bytes",
    ),
    # -- launcher config (include.launch.config) and the local runtime's reading of it
    ("launcher config empty intent path", _launcher(intent_path=""), LeanConfigError, r"intent_path='': a non-empty"),
    ("launcher config blank data folder", _launcher(data_folder=" "), LeanConfigError, r"data_folder=' '"),
    ("launcher config algorithm not .py", _launcher(algorithm_location="/LeanCLI/a.cs"), LeanConfigError, r"\.py"),
    ("launcher config traversal id", _launcher(algorithm_id="../x"), LeanConfigError, r"algorithm_id '\.\./x'"),
    (
        "launcher config reserved parameter",
        _launcher(parameters={"execution-intent-path": "/etc/passwd"}),
        LeanConfigError,
        r"parameters\['execution-intent-path'\]: reserved",
    ),
    (
        "config missing algorithm-location",
        _config_with(**{"algorithm-location": None}),
        LocalConfigError,
        r"missing required config key 'algorithm-location' in .*config\.json",
    ),
    ("config missing data-folder", _config_with(**{"data-folder": None}), LocalConfigError, r"'data-folder' in"),
    (
        "config data-folder not found",
        _config_with(**{"data-folder": "/nonexistent/data"}),
        LocalConfigError,
        r"'data-folder': folder not found: /nonexistent/data",
    ),
    (
        "config algorithm not a .py file",
        _config_with(**{"algorithm-location": "/nonexistent/algo.cs"}),
        LocalConfigError,
        r"'algorithm-location' must name a \.py file",
    ),
    (
        "config bad local-runtime-now",
        _config_with(**{"local-runtime-now": "yesterday"}),
        LocalConfigError,
        r"'local-runtime-now' must be an ISO-8601 instant, got 'yesterday'",
    ),
    (
        "config file missing",
        lambda c: load_config(c.inputs / "nope.json"),
        LocalConfigError,
        r"nope\.json: cannot read \(No such file or directory\)",
    ),
    ("config not JSON", _config("{not json"), LocalConfigError, r"config\.json: not valid JSON"),
    ("config not UTF-8", _config(b'{"a": "\xff"}'), LocalConfigError, r"config\.json: not UTF-8 .*byte offset 7"),
    ("config of the wrong type", _config("[]"), LocalConfigError, r"config\.json: top level must be a JSON object"),
    (
        "algorithm file missing",
        _config_with(**{"algorithm-location": "/nonexistent/algo.py"}),
        LocalConfigError,
        r"algorithm file not found: /nonexistent/algo\.py",
    ),
    (
        "algorithm without a QCAlgorithm",
        _no_qcalgorithm,
        LocalConfigError,
        r"no QCAlgorithm subclass defined in .*not_an_algorithm\.py",
    ),
]

NAN_EVENTS = json.dumps([_event(fillPrice=NAN)])
EVENT_CASES: list[tuple[str, Case, type[Exception], str]] = [
    (
        "events truncated",
        _events(json.dumps([_event(), _event(orderId=2, id=f"{ALGO}-2-1")])[:-25]),
        OrderEventsFileError,
        r"at byte offset \d+: truncated JSON after 1 complete events",
    ),
    (
        "events garbled",
        _events(json.dumps([_event()]).replace('"buy"', "buy")),
        OrderEventsFileError,
        r"at byte offset \d+: garbled JSON",
    ),
    ("events empty file", _events(""), OrderEventsFileError, r"the file is empty"),
    ("events object not array", _events(json.dumps(_event())), OrderEventsFileError, r"expected a JSON array"),
    ("events array of numbers", _events("[1, 2, 3]"), OrderEventsFileError, r"event #0 .* expected a JSON object"),
    (
        "events unknown status",
        _events(json.dumps([_event(status="exploded")])),
        OrderEventsFileError,
        r"status='exploded': unknown value",
    ),
    (
        "events unknown direction",
        _events(json.dumps([_event(direction="sideways")])),
        OrderEventsFileError,
        r"direction='sideways': unknown value",
    ),
    ("events wrong field type", _events(json.dumps([_event(quantity="ten")])), OrderEventsFileError, r"quantity='ten'"),
    (
        "events NaN fill price",  # Lean never writes NaN: the token is not JSON, the offset points at it
        _events(NAN_EVENTS),
        OrderEventsFileError,
        rf"at byte offset {NAN_EVENTS.index('NaN')}: garbled JSON after 0 complete events",
    ),
    (
        "events id does not match",
        _events(json.dumps([_event(id="other-1-1")])),
        OrderEventsFileError,
        r"id='other-1-1' does not match",
    ),
    (
        "events of another algorithm",
        _events(json.dumps([_event(algorithmId="999", id="999-1-1")])),
        OrderEventsFileError,
        r"event #0 has algorithmId '999'",
    ),
    ("events 1 GiB file", _events(None, sparse=ONE_GIB), OrderEventsFileError, r"expected a JSON array"),
]

# step_ingest on a real run folder (the ingest_events task): the DB is involved, the folder is in the root.
PIPELINE_DB_CASES: list[tuple[str, Case, type[Exception], str]] = [
    (
        "step_ingest garbled events file",
        Staged(_run_with_events('[{"id": garbage'), lambda c, run: _ingest(run)),
        OrderEventsFileError,
        r"order-events\.json at byte offset 8: garbled JSON",
    ),
    (
        "step_ingest truncated events file",
        Staged(_run_with_events(json.dumps([_event()])[:40]), lambda c, run: _ingest(run)),
        OrderEventsFileError,
        r"order-events\.json at byte offset \d+: truncated",
    ),
    (
        "step_ingest results folder symlinked out of the run folder",
        Staged(_results_symlinked_out, lambda c, run: _ingest(run)),
        ArtifactPathError,
        r"results'.*inputs.*outside",
    ),
    (
        "step_ingest run folder of another run",
        Staged(_folder_of_another_run, lambda c, run: _ingest(run)),
        RunFolderError,
        r"lean_backtest_range/20210301/config\.json: algorithm-id '20210201_20210226', expected the run key '20210301'",
    ),
    (
        "step_ingest 1 GiB launcher config",
        Staged(_huge_run_config, lambda c, run: _ingest(run)),
        RunFolderError,
        r"config\.json: file is 1073741824 bytes",
    ),
]


# ------------------------------------------------------------------ the harness


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _temp_files(folder: Path) -> list[str]:
    """Leftovers of an interrupted atomic write (``.<name>.<random>.tmp``) anywhere under ``folder``."""
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp"))


def _rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in Base.metadata.sorted_tables
        }


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _run_case(tmp_path: Path, engine: Engine | None, case: Case, error: type[Exception], what: str) -> BaseException:
    root, inputs = tmp_path / "artifacts", tmp_path / "inputs"
    root.mkdir()
    inputs.mkdir()
    (root / "run").mkdir()
    ctx = Ctx(root, inputs, engine)
    if isinstance(case, Staged):
        state = case.prepare(ctx)
        staged = case

        def act() -> object:
            return staged.act(ctx, state)
    else:
        plain = case

        def act() -> object:
            return plain(ctx)

    before = _tree(root)
    peak = _peak_rss_kib()
    with pytest.raises(error, match=what) as raised:
        act()
    assert type(raised.value) is error, f"expected exactly {error.__name__}, got {type(raised.value).__name__}"
    assert str(raised.value).strip()
    assert _tree(root) == before, "the failed step left files behind in the artifact root"
    assert _temp_files(tmp_path) == [], "the failed step left a temp file behind"
    assert _peak_rss_kib() - peak < MAX_PEAK_GROWTH_KIB, "the bad input was read into memory"
    return raised.value


def test_there_are_at_least_forty_cases() -> None:
    ids = [c[0] for c in CASES + EVENT_CASES + PIPELINE_DB_CASES]
    assert len(ids) == len(set(ids)), "case ids must be distinct"
    assert len(ids) >= 40


@pytest.mark.parametrize(("case", "error", "what"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_named_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case, error: type[Exception], what: str
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    _run_case(tmp_path, None, case, error, what)


@pytest.mark.parametrize(("case", "error", "what"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES])
def test_bad_events_file_gets_a_named_error_and_leaves_the_db_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_engine: Engine, case: Case, error: type[Exception], what: str
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    exc = _run_case(tmp_path, db_engine, case, error, what)
    assert f"{ALGO}-order-events.json" in str(exc)  # where: the file
    assert set(_rows(db_engine).values()) == {0}, _rows(db_engine)


@pytest.mark.parametrize(
    ("case", "error", "what"), [c[1:] for c in PIPELINE_DB_CASES], ids=[c[0] for c in PIPELINE_DB_CASES]
)
def test_bad_run_folder_fails_ingestion_with_no_row_and_no_manifest(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    db_engine: Engine,
    case: Case,
    error: type[Exception],
    what: str,
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    _run_case(tmp_path, db_engine, case, error, what)  # no manifest.json: the tree is unchanged
    assert set(_rows(db_engine).values()) == {0}, _rows(db_engine)


def test_a_bad_events_file_is_read_in_bounded_memory(tmp_path: Path, db_engine: Engine) -> None:
    """The 1 GiB case is refused at its first byte; a 1 GiB file with a valid-looking prefix is streamed."""
    results = tmp_path / "results"
    results.mkdir()
    path = results / f"{ALGO}-order-events.json"
    with path.open("wb") as handle:
        handle.write(b"[" + json.dumps(_event()).encode() + b",")
        handle.truncate(ONE_GIB)  # NUL bytes after one good event
    peak = _peak_rss_kib()
    with pytest.raises(OrderEventsFileError, match=r"after 1 complete events"):
        ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=ALGO, run_key="k", dag_id="d")
    assert _peak_rss_kib() - peak < MAX_PEAK_GROWTH_KIB
    assert set(_rows(db_engine).values()) == {0}
    assert os.path.getsize(path) == ONE_GIB


def test_the_snapshot_contract_itself_rejects_blank_symbols() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"items\.0\.symbol"):
        DecisionSnapshot.model_validate(
            {"schema_version": 1, "as_of": "2021-03-01", "source": "t", "items": [{"symbol": "", "weight": 0.1}]}
        )


def test_a_writer_replaces_a_symlink_in_the_run_folder_and_never_writes_through_it(tmp_path: Path) -> None:
    """A file in a run folder that is a symlink out of the root is replaced, its target untouched."""
    outside = tmp_path / "outside.json"
    outside.write_text("precious", encoding="utf-8")
    folder = tmp_path / "artifacts" / "d" / "k"
    folder.mkdir(parents=True)
    (folder / "order_intent_run_k.json").symlink_to(outside)
    path = Path(write_order_intent(output_dir=folder, run_key="k", rebalances={DAY: [W]}))
    assert not path.is_symlink() and load_order_intent(path).run_key == "k"
    assert outside.read_text(encoding="utf-8") == "precious"
    atomic_write_text(folder / "order_intent_run_k.json", "x")
    assert outside.read_text(encoding="utf-8") == "precious"


@pytest.mark.parametrize("algorithm", ["missing", "no QCAlgorithm"])
def test_the_local_runtime_cli_exits_2_naming_the_algorithm_file(tmp_path: Path, algorithm: str) -> None:
    """``python -m include.lean_local --config`` (what LeanRunOperator runs): exit code 2, a named error."""
    path = tmp_path / ("absent.py" if algorithm == "missing" else "not_an_algorithm.py")
    if algorithm != "missing":
        path.write_text(NOT_AN_ALGORITHM, encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_good_config(Ctx(tmp_path, tmp_path, None), **{"algorithm-location": str(path)})))
    results = tmp_path / "r"  # the config's results-destination-folder
    done = subprocess.run(
        [sys.executable, "-m", "include.lean_local", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 2, done.stderr
    expected = "algorithm file not found" if algorithm == "missing" else "no QCAlgorithm subclass defined in"
    assert f"error: LocalConfigError: config key 'algorithm-location': {expected}" in done.stderr or (
        f"error: LocalConfigError: {expected} {path}" in done.stderr
    ), done.stderr
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr
    # A config that names no algorithm fails before the engine starts: no results at all. An
    # algorithm that does not load leaves only Lean's log.txt (the operator shows its tail).
    assert sorted(p.name for p in results.rglob("*")) == ([] if algorithm == "missing" else ["log.txt"])
