"""The chain (``include.pipeline``): run dates, each step, and ``run_chain`` end to end on the
bundled sample data with the local runtime and a SQLite audit DB."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from include.contracts.intent import load_order_intent
from include.contracts.params import ExecutionParams, build_execution_params_payload, load_execution_params
from include.contracts.snapshot import load_snapshots
from include.errors import ArtifactPathError, SnapshotError
from include.launch.config import LeanJob
from include.lean_local import __version__ as local_version
from include.live_session import session_start_utc
from include.pipeline import (
    TASKS,
    ChainRequest,
    RunDateError,
    _should_skip_order_build,
    previous_run_folder,
    resolve_run,
    run_chain,
    session_of,
    should_skip_order_build,
    step_snapshot,
    step_write_intent,
    step_write_params,
)
from include.run_folder import ALGORITHM_PATH, DEFAULT_DATA_FOLDER, RunFolder, RunRef
from include.trading_calendar import sessions_between
from tests.conftest import REPO_ROOT
from tests.lean_data_factory import write_closes


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lean", True),
        ("LEAN", True),
        ("  Lean\n", True),
        ("python", False),
        ("", False),
        (None, False),
        ("lean2", False),
        ("non_lean", False),
    ],
)
def test_should_skip_order_build(source: str | None, expected: bool) -> None:
    assert should_skip_order_build(source) is expected
    assert _should_skip_order_build(source) is expected  # the seed plan's name


# ---------------------------------------------------------------------------- which run, which dates


def test_resolve_run_scheduled_manual_and_range() -> None:
    assert resolve_run(
        dag_id="d", kind="daily", run_type="scheduled", interval_session=dt.date(2024, 3, 5), params={}
    ) == (RunRef("d", "20240305"), [dt.date(2024, 3, 5)])
    assert resolve_run(
        dag_id="d",
        kind="daily",
        run_type="backfill",
        interval_session=dt.date(2024, 3, 6),
        params={"as_of": "2020-01-02"},
    ) == (RunRef("d", "20240306"), [dt.date(2024, 3, 6)])
    assert resolve_run(
        dag_id="d",
        kind="daily",
        run_type="manual",
        interval_session=dt.date(2024, 3, 6),
        params={"as_of": "2024-03-05"},
    ) == (RunRef("d", "20240305"), [dt.date(2024, 3, 5)])
    assert resolve_run(
        dag_id="d", kind="daily", run_type="manual", interval_session=None, params={"as_of": dt.date(2024, 3, 5)}
    ) == (RunRef("d", "20240305"), [dt.date(2024, 3, 5)])
    ref, dates = resolve_run(
        dag_id="lean_backtest_range",
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": "2025-12-22", "end_date": "2025-12-31"},
    )
    assert ref == RunRef("lean_backtest_range", "20251222_20251231")
    assert dt.date(2025, 12, 25) not in dates and len(dates) == 7


@pytest.mark.parametrize(
    ("kind", "run_type", "params", "message"),
    [
        ("daily", "manual", {}, "as_of is required"),
        ("daily", "manual", {"as_of": ""}, "as_of is required"),
        ("daily", "manual", {"as_of": "2024-13-01"}, "expected a date"),
        ("daily", "manual", {"as_of": "2025-12-25"}, "not an NYSE trading session"),
        ("range", "manual", {"start_date": "2024-03-05", "end_date": "2024-03-01"}, "end is before start"),
        ("range", "manual", {"start_date": "2024-03-09", "end_date": "2024-03-10"}, "no NYSE session"),
        ("range", "manual", {"end_date": "2024-03-10"}, "start_date=None: expected a date"),
    ],
)
def test_resolve_run_errors(kind: str, run_type: str, params: dict[str, str], message: str) -> None:
    with pytest.raises(RunDateError, match=message):
        resolve_run(dag_id="d", kind=kind, run_type=run_type, interval_session=None, params=params)  # type: ignore[arg-type]


@pytest.mark.parametrize(("end", "refused"), [("2024-03-07", True), ("2024-03-06", True), ("2024-03-05", False)])
def test_a_range_must_end_before_today_in_new_york(end: str, refused: bool) -> None:
    """Lean cuts a backtest's end to yesterday (QCAlgorithm.SetEndDate): a range reaching today or
    later would silently not trade its last days, so it is refused with the reason."""
    params = {"start_date": "2024-03-01", "end_date": end}
    today = dt.date(2024, 3, 6)
    if refused:
        with pytest.raises(RunDateError, match=r"end_date=.*at the latest \(Lean cuts"):
            resolve_run(dag_id="d", kind="range", run_type="manual", interval_session=None, params=params, today=today)
    else:
        ref, dates = resolve_run(
            dag_id="d", kind="range", run_type="manual", interval_session=None, params=params, today=today
        )
        assert dates[-1] == dt.date(2024, 3, 5) and ref.run_key == "20240301_20240305"


@pytest.mark.parametrize(("mode", "refused"), [("backtest", True), ("live", False)])
def test_a_daily_backtest_of_today_is_refused_but_a_live_run_trades_today(mode: str, refused: bool) -> None:
    """A manual lean_backtest_daily with as_of today would end before as_of in Lean and place no order."""
    params = {"as_of": "2024-03-06"}
    today = dt.date(2024, 3, 6)

    def resolve() -> tuple[object, list[dt.date]]:
        return resolve_run(
            dag_id="d",
            kind="daily",
            run_type="manual",
            interval_session=None,
            params=params,
            today=today,
            mode=mode,  # type: ignore[arg-type]
        )

    if refused:
        with pytest.raises(RunDateError, match=r"as_of=2024-03-06: a backtest can end on 2024-03-05 at the latest"):
            resolve()
    else:
        assert resolve()[1] == [today]


def test_session_of_is_the_new_york_date() -> None:
    assert session_of(None) is None
    # 21:30 UTC on a winter day is 16:30 in New York; 03:00 UTC is still the previous day there.
    assert session_of(dt.datetime(2024, 3, 5, 21, 30, tzinfo=dt.UTC)) == dt.date(2024, 3, 5)
    assert session_of(dt.datetime(2024, 3, 6, 3, 0, tzinfo=dt.UTC)) == dt.date(2024, 3, 5)


# ---------------------------------------------------------------------------- the steps before Lean


@pytest.fixture
def small_data(tmp_path: Path) -> tuple[Path, list[dt.date]]:
    sessions = sessions_between(dt.date(2021, 1, 4), dt.date(2021, 2, 26))
    data = tmp_path / "data"
    write_closes(data, {"AAA": {d: 10 + i for i, d in enumerate(sessions)}, "BBB": {d: 50.0 for d in sessions}})
    return data, sessions


def test_snapshot_intent_params_steps(small_data: tuple[Path, list[dt.date]], tmp_path: Path) -> None:
    data, sessions = small_data
    root = tmp_path / "artifacts"
    days = sessions[-3:]
    ref = RunRef("lean_backtest_range", "k1")
    folder = step_snapshot(
        ref, days, provider="trend_rotation", options={"top_n": 1, "lookback_days": 5}, data_folder=data, root=root
    )
    assert folder == RunFolder.locate(ref, root=root) and folder.path.is_dir()
    assert [s.as_of for s in load_snapshots(folder.snapshots_path)] == days
    intent = step_write_intent(folder)
    assert intent == folder.intent_path
    raw = json.loads(intent.read_text())
    assert [r["date"] for r in raw["rebalances"]] == [d.isoformat() for d in days]
    assert raw["run_key"] == "k1"
    params = step_write_params(folder, {"lot_size": 5, "fee_bps": None})
    assert params == folder.params_path
    assert json.loads(params.read_text())["lot_size"] == 5
    assert json.loads(params.read_text())["fee_bps"] == build_execution_params_payload(None)["fee_bps"]
    assert not folder.initial_state_path.exists()
    # A continuous account copies the previous run's final state into its own folder.
    prev = RunFolder.create(RunRef("lean_backtest_daily", "20210225"), root=root)
    prev.results_dir.mkdir()
    prev.final_state_path.write_text('{"cash": 5.0, "holdings": {}}')
    found = previous_run_folder(RunRef("lean_backtest_daily", "20210226"), dt.date(2021, 2, 26), root=root)
    assert found == prev
    assert previous_run_folder(RunRef("lean_backtest_daily", "20210225"), dt.date(2021, 2, 25), root=root) is None
    step_write_params(folder, {}, previous=prev)
    assert folder.initial_state_path.read_text() == '{"cash": 5.0, "holdings": {}}'
    # A re-run without a previous run drops the copied state: the run starts from fresh cash again.
    step_write_params(folder, {})
    assert not folder.initial_state_path.exists()
    # The DAG tasks open the folder from its XCom path, confined under the artifact root.
    with pytest.raises(ArtifactPathError):
        RunFolder.open(str(tmp_path), root=root)


def test_step_snapshot_leaves_no_folder_when_the_provider_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_WEIGHTS_DIRS", str(tmp_path))  # the file provider reads only there
    root = tmp_path / "artifacts"
    days = [dt.date(2021, 2, 1), dt.date(2021, 2, 2)]
    with pytest.raises(SnapshotError, match="needs option 'path'"):
        step_snapshot(RunRef("d", "k"), days, provider="file", options={}, data_folder=tmp_path, root=root)
    weights = tmp_path / "w.csv"
    weights.write_text("date,symbol,weight\n2021-02-01,SPY,1\n")  # nothing for the second day
    with pytest.raises(SnapshotError, match="no weights for 2021-02-02"):
        step_snapshot(
            RunRef("d", "k"), days, provider="file", options={"path": str(weights)}, data_folder=tmp_path, root=root
        )
    assert not RunFolder.locate(RunRef("d", "k"), root=root).path.exists()
    assert not (root / "d").exists()


def _with_final_state(root: Path, dag_id: str, key: str, cash: float) -> RunFolder:
    folder = RunFolder.create(RunRef(dag_id, key), root=root)
    folder.results_dir.mkdir()
    folder.final_state_path.write_text(json.dumps({"cash": cash, "holdings": {}}))
    return folder


def test_previous_run_folder_backtest_is_the_previous_session_only(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    dag = "lean_backtest_daily"
    friday = _with_final_state(root, dag, "20240301", 1.0)
    monday = RunRef(dag, "20240304")
    assert previous_run_folder(monday, dt.date(2024, 3, 4), root=root) == friday  # over the weekend
    # After a holiday: Good Friday 2024-03-29 is closed; Monday's previous session is Thursday.
    thursday = _with_final_state(root, dag, "20240328", 2.0)
    assert previous_run_folder(RunRef(dag, "20240401"), dt.date(2024, 4, 1), root=root) == thursday
    # A missing previous session (the first day of a backfill) means a fresh account, not an older run.
    assert previous_run_folder(RunRef(dag, "20240305"), dt.date(2024, 3, 5), root=root) is None
    # A previous folder without its final state (a failed run) is not continued either.
    RunFolder.create(RunRef(dag, "20240305"), root=root)
    assert previous_run_folder(RunRef(dag, "20240306"), dt.date(2024, 3, 6), root=root) is None
    assert previous_run_folder(RunRef(dag, "19900102"), dt.date(1990, 1, 2), root=root) is None  # the calendar's start


def test_previous_run_folder_live_carries_over_skipped_days(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    dag = "lean_live_rebalance"
    assert previous_run_folder(RunRef(dag, "20240306"), dt.date(2024, 3, 6), mode="live", root=root) is None
    first = _with_final_state(root, dag, "20240301", 1.0)
    RunFolder.create(RunRef(dag, "20240304"), root=root)  # a run that failed: no final state
    RunFolder.create(RunRef(dag, "20240301_20240305"), root=root)  # not a daily run key
    _with_final_state(root, dag, "20240308", 3.0)  # later than the run: never its start
    _with_final_state(root, "another_dag", "20240305", 4.0)
    found = previous_run_folder(RunRef(dag, "20240306"), dt.date(2024, 3, 6), mode="live", root=root)
    assert found == first  # days skipped since (03-04 failed, 03-05 never ran): the account carries over
    assert previous_run_folder(RunRef(dag, "20240301"), dt.date(2024, 3, 1), mode="live", root=root) is None
    # The backtest rule on the same folders would not continue across the gap.
    assert previous_run_folder(RunRef(dag, "20240306"), dt.date(2024, 3, 6), mode="backtest", root=root) is None


# ---------------------------------------------------------------------------- run_chain, end to end

START, END = dt.date(2021, 2, 1), dt.date(2021, 2, 12)
OPTIONS = {"top_n": 2, "lookback_days": 10}


def _request(root: Path, **overrides: Any) -> ChainRequest:
    ref, dates = resolve_run(
        dag_id="lean_backtest_range",
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": START.isoformat(), "end_date": END.isoformat()},
    )
    fields: dict[str, Any] = {
        "ref": ref,
        "dates": tuple(dates),
        "options": OPTIONS,
        "data_folder": DEFAULT_DATA_FOLDER,
        "root": root,
    }
    fields.update(overrides)
    return ChainRequest(**fields)


@pytest.mark.slow
def test_run_chain_end_to_end(chain_env: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    result = run_chain(_request(chain_env), progress=lambda step, detail: calls.append((step, detail)))
    folder, outputs = result.folder, result.outputs
    assert folder == RunFolder.locate(RunRef("lean_backtest_range", "20210201_20210212"), root=chain_env)
    assert list(outputs) == list(TASKS)

    dates = sessions_between(START, END)
    assert outputs["snapshot"] == folder.snapshots_path
    assert [s.as_of for s in load_snapshots(folder.snapshots_path)] == dates
    assert outputs["write_intent"] == folder.intent_path
    intent = load_order_intent(folder.intent_path)
    assert [r.date for r in intent.rebalances] == dates and intent.run_key == folder.run_key
    assert outputs["write_params"] == folder.params_path
    assert json.loads(folder.params_path.read_text()) == build_execution_params_payload(None)
    assert load_execution_params(folder.params_path) == ExecutionParams()
    engine = {"runtime": "local", "engine": f"lean_local {local_version}"}
    assert outputs["run_lean"] == engine == folder.engine_identity()
    config = folder.read_config()
    assert config.mode == "backtest" and config.parameters["starting-cash"] == "100000.0"
    assert config.get("algorithm-location") == str(ALGORITHM_PATH)
    assert config.get("data-folder") == str(DEFAULT_DATA_FOLDER)
    ingested = outputs["ingest_events"]
    assert set(ingested) == {
        "audit_run_id", "dag_id", "run_key", "algorithm_id", "files", "events", "inserted", "already_present",
        "linked", "unlinked", "batches", "missing_file_ok", "attempt", "superseded_run_id", "lean_status",
        "live_done",
    }  # fmt: skip
    assert (ingested["dag_id"], ingested["run_key"], ingested["algorithm_id"]) == (
        "lean_backtest_range",
        "20210201_20210212",
        "20210201_20210212",
    )
    assert ingested["files"] == ["20210201_20210212-order-events.json"]
    assert ingested["events"] == ingested["inserted"] > 0 and ingested["already_present"] == 0
    manifest = json.loads(folder.manifest_path.read_text())
    assert (manifest["runtime"], manifest["engine_identity"]) == (engine["runtime"], engine["engine"])
    checked = outputs["consistency_check"]
    assert checked == {
        "verdict": checked["verdict"],
        "report_json": str(folder.report_json_path),
        "report_html": str(folder.report_html_path),
        "failures": 0,
        # A range run is nobody's parity twin (include.audit.parity): no parity.json, and why.
        "parity": None,
        "parity_note": "lean_backtest_range/20210201_20210212 is not a live or daily backtest run of one session",
    }
    assert checked["verdict"] in ("pass", "warn")
    assert folder.report_json_path.exists() and folder.report_html_path.exists()

    # The progress callback: each step's output once, in order, and the engine's lines during run_lean.
    steps = [(step, detail["output"]) for step, detail in calls if "output" in detail]
    assert steps == [(step, outputs[step]) for step in TASKS]
    # The local runtime prints nothing on success (its log goes to results/log.txt); any line it
    # prints is relayed as ("run_lean", {"line": ...}) while it runs.
    assert len(calls) == len(TASKS) + len([c for c in calls if "line" in c[1]])
    assert all(step == "run_lean" and set(detail) == {"line"} for step, detail in calls if "output" not in detail)
    position = {step: i for i, (step, detail) in enumerate(calls) if "output" in detail}
    lines = [i for i, (_, detail) in enumerate(calls) if "line" in detail]
    assert all(position["write_params"] < i < position["run_lean"] for i in lines)

    # A re-run rewrites the same folder and inserts nothing twice.
    again = run_chain(_request(chain_env), until="ingest_events").outputs["ingest_events"]
    assert again["inserted"] == 0 and again["already_present"] == ingested["inserted"]
    assert again["audit_run_id"] == ingested["audit_run_id"]


@pytest.mark.slow
def test_a_high_fee_with_slippage_passes_the_check(chain_env: Path) -> None:
    """Lean charges the fee on the security's price, not on the slipped fill price; the check must too.

    At 25 bps of fee and 1 bp of close slippage, judging the fee on the fill notional is 1 bp off on
    every fill, beyond the fee tolerance (it failed every order before the check used the same price).
    """
    execution = {"fee_bps": 25.0, "slippage_close_bps": 1.0, "slippage_open_bps": 2.0}
    result = run_chain(_request(chain_env, execution=execution))
    report = json.loads(result.folder.report_json_path.read_text())
    fees = [c for c in report["checks"] if c["check"] == "fees"]
    assert fees and all(c["verdict"] == "pass" for c in fees), fees
    assert report["verdict"] == "pass"
    events = json.loads(next(iter(result.folder.order_event_files())).read_text())
    fills = [e for e in events if e.get("fillQuantity")]
    assert fills and all(e["orderFeeAmount"] > 0 for e in fills)
    # The fee is 25 bps of |quantity| x the unslipped price: fill price / (1 +- 1 bp) at the close.
    for e in fills:
        unslipped = e["fillPrice"] / (1 + (1e-4 if e["fillQuantity"] > 0 else -1e-4))
        assert e["orderFeeAmount"] == pytest.approx(25e-4 * abs(e["fillQuantity"]) * unslipped, rel=1e-6)


@pytest.mark.parametrize("until", TASKS[:-1])
def test_run_chain_stops_after_until(chain_env: Path, until: str) -> None:
    calls: list[str] = []
    result = run_chain(_request(chain_env), until=until, progress=lambda step, detail: calls.append(step))
    done = list(TASKS[: TASKS.index(until) + 1])
    assert list(result.outputs) == done
    assert [c for c in dict.fromkeys(calls)] == done
    folder = result.folder
    written = {
        "snapshot": folder.snapshots_path,
        "write_intent": folder.intent_path,
        "write_params": folder.params_path,
        "run_lean": folder.engine_path,
        "ingest_events": folder.manifest_path,
        "consistency_check": folder.report_json_path,
    }
    assert {step: path.exists() for step, path in written.items()} == {step: step in done for step in TASKS}
    assert folder.config_path.exists() == ("run_lean" in done)


def test_run_chain_refuses_an_unknown_until(chain_env: Path) -> None:
    with pytest.raises(ValueError, match=r"until='lean': expected one of snapshot, write_intent"):
        run_chain(_request(chain_env), until="lean")
    assert not chain_env.exists() or not any(chain_env.iterdir())


def test_run_chain_hands_the_launch_the_job(chain_env: Path, tmp_path: Path) -> None:
    """A given ``launch`` runs Lean instead of the local runtime; it gets the job for the folder,
    and a failing launch stops the chain before the ingestion."""
    jobs: list[LeanJob] = []
    algorithm = tmp_path / "algorithms" / "custom.py"

    def launch(job: LeanJob) -> dict[str, str]:
        jobs.append(job)
        raise RuntimeError("the engine failed")

    request = _request(chain_env, starting_cash=5_000.0, launch_inputs={"algorithm_path": algorithm})
    with pytest.raises(RuntimeError, match="the engine failed"):
        run_chain(request, launch=launch)
    (job,) = jobs
    folder = RunFolder.locate(request.ref, root=chain_env)
    assert job == LeanJob(
        folder=folder,
        mode="backtest",
        parameters={"starting-cash": 5_000.0},
        algorithm_path=algorithm,
        data_folder=DEFAULT_DATA_FOLDER,
    )
    assert folder.params_path.exists() and not folder.manifest_path.exists()


def test_run_chain_relays_the_engine_output_and_stops_on_its_failure(chain_env: Path, tmp_path: Path) -> None:
    from include.errors import LeanRunError

    algorithm = tmp_path / "algorithms" / "broken.py"
    algorithm.parent.mkdir()
    algorithm.write_text("raise ImportError('cannot import name Nope from helpers')\n", encoding="utf-8")
    calls: list[tuple[str, dict[str, Any]]] = []
    request = _request(chain_env, launch_inputs={"algorithm_path": algorithm})
    with pytest.raises(LeanRunError, match="cannot import name Nope") as info:
        run_chain(request, progress=lambda step, detail: calls.append((step, detail)))
    assert info.value.runtime == "local" and info.value.exit_code == 1
    assert [step for step, detail in calls if "output" in detail] == ["snapshot", "write_intent", "write_params"]
    relayed = [detail["line"] for step, detail in calls if "line" in detail]
    assert any("cannot import name Nope" in line for line in relayed), relayed
    assert calls[3:] == [("run_lean", {"line": line}) for line in relayed]
    folder = RunFolder.locate(request.ref, root=chain_env)
    assert not folder.engine_path.exists() and not folder.manifest_path.exists()


@pytest.mark.slow
def test_run_chain_live_continues_the_account_over_a_skipped_day(chain_env: Path) -> None:
    """Three live sessions, one skipped between the first two: each run replays its session from 15:10 New
    York time on the local runtime, places market-on-close orders that fill at the session's close, ends by
    ``quit()`` with ``done-<D>.json``, is ingested exactly once and passes its check; each starts from the
    previous run's final account (Lean's paper ``live-cash-balance`` / ``live-holdings``)."""
    from sqlalchemy import func, select

    from include.audit.db import OrderEventRow, RebalanceRun, audit_engine
    from include.pipeline import step_ingest
    from include.trading_calendar import session_close_utc

    def stored_events(folder: RunFolder) -> int:
        engine = audit_engine()
        try:
            with engine.connect() as conn:
                query = (
                    select(func.count())
                    .select_from(OrderEventRow)
                    .join(RebalanceRun, RebalanceRun.id == OrderEventRow.run_id)
                    .where(RebalanceRun.dag_id == folder.dag_id, RebalanceRun.run_key == folder.run_key)
                )
                return int(conn.execute(query).scalar_one())
        finally:
            engine.dispose()

    days = (dt.date(2021, 3, 1), dt.date(2021, 3, 3), dt.date(2021, 3, 4))
    folders: list[RunFolder] = []
    for day in days:
        ref, dates = resolve_run(
            dag_id="lean_live_rebalance",
            kind="daily",
            run_type="manual",
            interval_session=None,
            params={"as_of": day.isoformat()},
            mode="live",
        )
        request = ChainRequest(
            ref=ref,
            dates=tuple(dates),
            mode="live",
            options=OPTIONS,
            continue_account=True,
            data_folder=DEFAULT_DATA_FOLDER,
            root=chain_env,
        )
        result = run_chain(request)
        folder = result.folder
        folders.append(folder)
        config = folder.read_config()
        assert config.mode == "live" and config.get("local-runtime-now") == session_start_utc(day).isoformat()
        assert "initial-state-path" not in config.parameters
        assert result.outputs["consistency_check"]["verdict"] == "pass"
        done = json.loads((folder.results_dir / f"done-{day}.json").read_text(encoding="utf-8"))
        assert done["reason"] == "terminal" and done["orders"]
        assert {row["status"] for row in done["orders"]} == {"Filled"}
        assert done["account"] == json.loads(folder.final_state_path.read_text(encoding="utf-8"))
        lean_result = json.loads((folder.results_dir / f"{folder.run_key}.json").read_text(encoding="utf-8"))
        assert {order["type"] for order in lean_result["orders"].values()} == {5}  # MarketOnClose
        assert not (folder.results_dir / f"{folder.run_key}-summary.json").exists()  # live Lean writes none
        events = [e for path in folder.order_event_files() for e in json.loads(path.read_text(encoding="utf-8"))]
        fills = [e for e in events if e["status"] == "filled"]
        assert len(fills) == len(done["orders"])
        assert {e["time"] for e in fills} == {session_close_utc(day).timestamp()}
        # exactly once in the audit DB, also when ingested again
        assert stored_events(folder) == len(events)
        step_ingest(folder)
        assert stored_events(folder) == len(events)
    first, second, third = folders
    assert not first.initial_state_path.exists()
    assert first.read_config().get("live-cash-balance") == [{"amount": 100_000.0, "currency": "USD"}]
    for previous, folder in ((first, second), (second, third)):
        assert folder.initial_state_path.read_text() == previous.final_state_path.read_text()
        carried = json.loads(folder.initial_state_path.read_text())
        config = folder.read_config()
        assert config.get("live-cash-balance") == [{"amount": carried["cash"], "currency": "USD"}]
        assert {h["Symbol"]["Value"]: h["Quantity"] for h in config.get("live-holdings") or []} == {
            ticker: holding["quantity"] for ticker, holding in carried["holdings"].items()
        }
    # one persistent object store for the deployment, with each session's record
    storage = chain_env / "lean_live_rebalance" / "_deployments" / "paper" / "storage" / "lean-airflow" / "live"
    assert sorted(p.name for p in storage.iterdir()) == [f"{day}.json" for day in days]


# ---------------------------------------------------------------------------- the chain, defined once

STEPS = {"step_snapshot", "step_write_intent", "step_write_params", "step_ingest", "step_check", "run_lean_local"}


def _chain_users() -> dict[str, ast.Module]:
    return {
        name: ast.parse((REPO_ROOT / name).read_text(encoding="utf-8"))
        for name in ("include/cli/cmd_backtest.py", "tests/faults/helpers.py")
    }


def test_the_cli_and_the_fault_tests_run_the_one_chain() -> None:
    """``include.cli backtest`` and the fault tests call ``run_chain``; neither defines a step
    sequence of its own (no function calling two steps, no list of step names, no TASKS of its own)."""
    for name, tree in _chain_users().items():
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        called = {n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", None) for n in calls}
        assert "run_chain" in called, name
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            inner = {
                n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", None)
                for n in ast.walk(function)
                if isinstance(n, ast.Call)
            }
            assert len(inner & STEPS) <= 1, f"{name}:{function.name} runs steps {sorted(inner & STEPS)} itself"
        for node in ast.walk(tree):
            if isinstance(node, ast.List | ast.Tuple | ast.Set):
                names = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in TASKS]
                assert len(names) <= 1, f"{name}:{node.lineno} lists the steps {names}"
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                assert not any(isinstance(t, ast.Name) and t.id == "TASKS" for t in targets), name
    backtest = _chain_users()["include/cli/cmd_backtest.py"]
    direct = {n.func.id for n in ast.walk(backtest) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not direct & STEPS, direct & STEPS  # the CLI runs no step itself


def test_the_step_check_above_would_catch_a_copied_chain() -> None:
    source = (
        "def backtest(folder):\n"
        "    step_write_intent(folder)\n"
        "    step_write_params(folder, None)\n"
        "ORDER = ['snapshot', 'write_intent', 'run_lean']\n"
    )
    tree = ast.parse(source)
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    assert {n.func.id for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)} & STEPS
    listed = next(n for n in ast.walk(tree) if isinstance(n, ast.List))
    assert len([e for e in listed.elts if isinstance(e, ast.Constant) and e.value in TASKS]) > 1
