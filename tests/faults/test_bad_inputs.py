"""Bad inputs at every boundary: each gets a named error that says what and where, and leaves
nothing behind, neither a file (temp files included) in the artifact root nor a row in the audit DB.

Lowercase tickers are normalised to upper case (Lean's tickers are case-insensitive), so the
lowercase case here is a lowercase duplicate of an upper-case symbol.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.artifacts import ALGORITHM_PATH, DEFAULT_DATA_FOLDER, confine, run_dir
from include.audit.db import Base
from include.audit.ingest import ingest_order_events
from include.contracts.snapshot import DecisionSnapshot
from include.errors import (
    ArtifactPathError,
    ExecutionParamsError,
    OrderEventsFileError,
    OrderIntentError,
    SnapshotError,
)
from include.execution_params import load_execution_params, write_execution_params
from include.intent import load_order_intent, write_order_intent
from include.lean_local.config import LocalConfigError, load_config
from include.lean_local.runner import load_algorithm_class
from include.snapshot import load_snapshot

DAY = dt.date(2021, 3, 1)
ALGO = "1234567890"
ONE_GIB = 1 << 30


@dataclass(frozen=True)
class Ctx:
    root: Path  # the artifact root (watched)
    inputs: Path  # where hand-made input files go (outside the root)
    engine: Engine | None


def _params(**bad: Any) -> Callable[[Ctx], object]:
    return lambda c: write_execution_params(output_dir=c.root / "run", run_id="k", params=bad)


def _intent(rows: list[dict[str, Any]], run_id: str = "k") -> Callable[[Ctx], object]:
    return lambda c: write_order_intent(output_dir=c.root / "run", run_id=run_id, rebalances={DAY: rows})


def _snapshot_file(items: list[dict[str, Any]]) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / "snapshot.json"
        doc = {"schema_version": 1, "as_of": DAY.isoformat(), "source": "test", "items": items}
        path.write_text(json.dumps(doc), encoding="utf-8")
        return load_snapshot(path)

    return case


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
    event = {
        "id": f"{ALGO}-1-1",
        "algorithmId": ALGO,
        "orderId": 1,
        "orderEventId": 1,
        "symbol": "SPY R735QTJ8XC9X",
        "symbolValue": "SPY",
        "symbolPermtick": "SPY",
        "time": 1614618000.0,
        "status": "submitted",
        "fillPrice": 0.0,
        "fillPriceCurrency": "USD",
        "fillQuantity": 0.0,
        "direction": "buy",
        "isAssignment": False,
        "quantity": 10.0,
    }
    event.update(overrides)
    return event


def _huge(loader: Callable[[Path], object], name: str) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / name
        with path.open("wb") as handle:
            handle.truncate(ONE_GIB)
        return loader(path)

    return case


def _config(doc: dict[str, Any] | str) -> Callable[[Ctx], object]:
    def case(c: Ctx) -> object:
        path = c.inputs / "config.json"
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


def _no_qcalgorithm(c: Ctx) -> object:
    algorithm = c.inputs / "not_an_algorithm.py"
    algorithm.write_text("from AlgorithmImports import *\n\nclass Strategy:\n    pass\n", encoding="utf-8")
    return _config(_good_config(c, **{"algorithm-location": str(algorithm)}))(c)


def _symlinked_run_dir(c: Ctx) -> object:
    (c.root / "d").mkdir()
    (c.root / "d" / "k").symlink_to(c.inputs, target_is_directory=True)
    try:
        return run_dir("d", "k", root=c.root)
    finally:
        (c.root / "d" / "k").unlink()
        (c.root / "d").rmdir()


def _symlinked_file(c: Ctx) -> object:
    outside = c.inputs / "secret.json"
    outside.write_text("{}", encoding="utf-8")
    link = c.root / "intent.json"
    link.symlink_to(outside)
    try:
        return confine(link, c.root)
    finally:
        link.unlink()


W = {"symbol": "SPY", "weight": 0.5}
CASES: list[tuple[str, Callable[[Ctx], object], type[Exception], str]] = [
    # -- execution params: NaN, inf, negative, out of range, non-integer lots
    ("params min_qty NaN", _params(min_qty=float("nan")), ExecutionParamsError, r"min_qty=nan"),
    ("params lot_size inf", _params(lot_size=float("inf")), ExecutionParamsError, r"lot_size=inf"),
    ("params fee_bps -inf", _params(fee_bps=float("-inf")), ExecutionParamsError, r"fee_bps=-inf"),
    ("params fee_bps NaN", _params(fee_bps=float("nan")), ExecutionParamsError, r"fee_bps=nan"),
    ("params slippage_open_bps inf", _params(slippage_open_bps=float("inf")), ExecutionParamsError, r"slippage_open"),
    ("params min_qty 0", _params(min_qty=0), ExecutionParamsError, r"min_qty=0"),
    ("params lot_size negative", _params(lot_size=-5), ExecutionParamsError, r"lot_size=-5"),
    ("params cash_buffer_ratio 1", _params(cash_buffer_ratio=1.0), ExecutionParamsError, r"cash_buffer_ratio=1.0"),
    ("params cash_buffer_ratio negative", _params(cash_buffer_ratio=-0.1), ExecutionParamsError, r"cash_buffer"),
    ("params fee_bps negative", _params(fee_bps=-1.0), ExecutionParamsError, r"fee_bps=-1.0"),
    ("params slippage_close_bps negative", _params(slippage_close_bps=-2.0), ExecutionParamsError, r"slippage_cl"),
    ("params lot_size 1.5", _params(lot_size=1.5), ExecutionParamsError, r"lot_size=1.5"),
    ("params lot_size string", _params(lot_size="2"), ExecutionParamsError, r"lot_size='2'"),
    ("params lot_size bool", _params(lot_size=True), ExecutionParamsError, r"lot_size=True"),
    ("params unknown key", _params(lotsize=2), ExecutionParamsError, r"lotsize"),
    ("params risk max_weight 2", _params(risk_overrides={"max_weight": 2.0}), ExecutionParamsError, r"max_weight"),
    (
        "params path traversal run_id",
        lambda c: write_execution_params(output_dir=c.root, run_id="../x", params={}),
        ArtifactPathError,
        r"\.\./x",
    ),
    # -- symbols and weights (intent and snapshot)
    ("intent NaN weight", _intent([{"symbol": "SPY", "weight": float("nan")}]), OrderIntentError, r"items\[0\].weight"),
    ("intent inf weight", _intent([{"symbol": "SPY", "weight": float("inf")}]), OrderIntentError, r"must be finite"),
    ("intent duplicate symbol", _intent([W, {"symbol": "SPY", "weight": 0.1}]), OrderIntentError, r"duplicate"),
    ("intent lowercase duplicate", _intent([W, {"symbol": "spy", "weight": 0.1}]), OrderIntentError, r"duplicate"),
    ("intent unicode symbol", _intent([{"symbol": "ÄPFEL", "weight": 0.1}]), OrderIntentError, r"not a ticker"),
    ("intent traversal symbol", _intent([{"symbol": "../../etc", "weight": 0.1}]), OrderIntentError, r"not a ticker"),
    ("intent gross weight > 1", _intent([W, {"symbol": "QQQ", "weight": 0.7}]), OrderIntentError, r"gross weight"),
    ("intent traversal run_id", _intent([W], run_id="../../x"), ArtifactPathError, r"run_id"),
    ("snapshot blank symbol", _snapshot_file([{"symbol": " ", "weight": 0.1}]), SnapshotError, r"items\.0\.symbol"),
    ("snapshot unicode symbol", _snapshot_file([{"symbol": "Ωmega", "weight": 0.1}]), SnapshotError, r"not a ticker"),
    ("snapshot duplicate symbol", _snapshot_file([W, W]), SnapshotError, r"SPY"),
    (
        "snapshot gross weight > 1",
        _snapshot_file([{"symbol": "A", "weight": 0.8}, {"symbol": "B", "weight": 0.5}]),
        SnapshotError,
        r"gross weight 1\.3",
    ),
    (
        "snapshot wrong type",
        lambda c: _write_and(c, "snapshot.json", "[1, 2]", load_snapshot),
        SnapshotError,
        r"snapshot\.json",
    ),
    # -- paths: traversal, absolute, nested, symlinks out of the root
    ("run key traversal", lambda c: run_dir("d", "../escape", root=c.root), ArtifactPathError, r"\.\./escape"),
    ("run key absolute", lambda c: run_dir("d", "/etc", root=c.root), ArtifactPathError, r"/etc"),
    ("run key nested", lambda c: run_dir("d", "a/b", root=c.root), ArtifactPathError, r"a/b"),
    ("dag id traversal", lambda c: run_dir("..", "k", root=c.root), ArtifactPathError, r"dag_id"),
    ("path outside the root", lambda c: confine(c.root / ".." / "elsewhere", c.root), ArtifactPathError, r"outside"),
    ("symlinked run folder out of the root", _symlinked_run_dir, ArtifactPathError, r"outside the artifact root"),
    ("symlinked file out of the root", _symlinked_file, ArtifactPathError, r"intent\.json"),
    # -- huge files are refused by size before parsing
    ("1 GiB intent file", _huge(load_order_intent, "intent.json"), OrderIntentError, r"1073741824 bytes"),
    ("1 GiB params file", _huge(load_execution_params, "params.json"), ExecutionParamsError, r"1073741824 bytes"),
    ("1 GiB snapshot file", _huge(load_snapshot, "snapshot.json"), SnapshotError, r"over the .*-byte limit"),
    # -- launcher config and algorithm
    (
        "config missing algorithm-location",
        _config_with(**{"algorithm-location": None}),
        LocalConfigError,
        r"missing required config key 'algorithm-location'",
    ),
    ("config missing data-folder", _config_with(**{"data-folder": None}), LocalConfigError, r"'data-folder'"),
    ("config not JSON", _config("{not json"), LocalConfigError, r"not valid JSON"),
    ("config of the wrong type", _config("[]"), LocalConfigError, r"top level must be a JSON object"),
    (
        "algorithm file missing",
        _config_with(**{"algorithm-location": "/nonexistent/algo.py"}),
        LocalConfigError,
        r"algorithm file not found: /nonexistent/algo\.py",
    ),
    ("algorithm without a QCAlgorithm", _no_qcalgorithm, LocalConfigError, r"no QCAlgorithm subclass defined in"),
]

EVENT_CASES: list[tuple[str, Callable[[Ctx], object], type[Exception], str]] = [
    (
        "events truncated",
        _events(json.dumps([_event(), _event(orderId=2, id=f"{ALGO}-2-1")])[:-25]),
        OrderEventsFileError,
        r"truncated JSON after 1 complete events",
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
        r"status.*'exploded'",
    ),
    (
        "events unknown direction",
        _events(json.dumps([_event(direction="sideways")])),
        OrderEventsFileError,
        r"direction.*'sideways'",
    ),
    ("events wrong field type", _events(json.dumps([_event(quantity="ten")])), OrderEventsFileError, r"quantity"),
    ("events 1 GiB file", _events(None, sparse=ONE_GIB), OrderEventsFileError, r"expected a JSON array"),
]


def _write_and(c: Ctx, name: str, text: str, loader: Callable[[Path], object]) -> object:
    path = c.inputs / name
    path.write_text(text, encoding="utf-8")
    return loader(path)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in Base.metadata.sorted_tables
        }


def _run_case(
    tmp_path: Path, engine: Engine | None, case: Callable[[Ctx], object], error: type[Exception], what: str
) -> BaseException:
    root, inputs = tmp_path / "artifacts", tmp_path / "inputs"
    root.mkdir()
    inputs.mkdir()
    (root / "run").mkdir()
    before = _tree(root)
    with pytest.raises(error, match=what) as raised:
        case(Ctx(root, inputs, engine))
    assert type(raised.value) is not Exception and str(raised.value).strip()
    assert _tree(root) == before, "the failed step left files behind"
    return raised.value


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) + len(EVENT_CASES) >= 40


@pytest.mark.parametrize(("case", "error", "what"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_named_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Callable[[Ctx], object], error: type[Exception], what: str
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    _run_case(tmp_path, None, case, error, what)


@pytest.mark.parametrize(("case", "error", "what"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES])
def test_bad_events_file_gets_a_named_error_and_leaves_the_db_empty(
    tmp_path: Path, db_engine: Engine, case: Callable[[Ctx], object], error: type[Exception], what: str
) -> None:
    exc = _run_case(tmp_path, db_engine, case, error, what)
    assert f"{ALGO}-order-events.json" in str(exc)  # where: the file
    assert set(_rows(db_engine).values()) == {0}, _rows(db_engine)


def test_a_bad_events_file_is_read_in_bounded_memory(tmp_path: Path, db_engine: Engine) -> None:
    """The 1 GiB case is refused at its first byte; a 1 GiB *valid-looking* prefix is streamed."""
    results = tmp_path / "results"
    results.mkdir()
    path = results / f"{ALGO}-order-events.json"
    with path.open("wb") as handle:
        handle.write(b"[" + json.dumps(_event()).encode() + b",")
        handle.truncate(ONE_GIB)  # NUL bytes after one good event
    with pytest.raises(OrderEventsFileError, match=r"after 1 complete events"):
        ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=ALGO, run_key="k", dag_id="d")
    assert set(_rows(db_engine).values()) == {0}
    assert os.path.getsize(path) == ONE_GIB


def test_the_snapshot_contract_itself_rejects_blank_symbols() -> None:
    with pytest.raises(Exception, match="symbol"):
        DecisionSnapshot.model_validate(
            {"schema_version": 1, "as_of": "2021-03-01", "source": "t", "items": [{"symbol": "", "weight": 0.1}]}
        )
