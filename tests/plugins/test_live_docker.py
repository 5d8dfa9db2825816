"""A live rebalance through the fake Docker API, with no Docker engine: the real entry script in each
container and a stand-in Lean (``fake_lean.py``) that runs the local runtime on the container's config.

The stand-in reads the config with Lean's layering (the selected live environment's block first),
refuses what Lean refuses, runs until ``quit()``, SIGINT or a stop command, and writes Lean live's files
(per-UTC-day order-events files rewritten in full, non-atomically; a LiveResult; no summary).

* the session D = 2021-03-03 (a past session of the sample data: the chain's ``lean_job`` starts the
  local runtime's clock at D 15:10 New York, ``include.live_session.replay_clock``) on the paper broker
  fed by a real data provider (polygon, as the image has no local-data-folder feed): exit 0 by
  ``quit()``, every MarketOnClose order Filled at D's raw close +- slippage_close_bps, ``done-<D>.json``,
  each event once in the audit DB (twice ingested), a passing check;
* a live config without a data queue handler: refused before any container exists (the lifecycle's
  own check: ``test_docker_lifecycle.py::test_a_live_job_lean_would_refuse_sends_nothing_to_the_daemon``
  and ``test_operators.py::test_a_live_environment_without_a_data_queue_handler_creates_no_container``);
  one that reaches the stand-in anyway ends it with exit 1, as Lean's stub LiveDataQueue does;
* on the machine's clock it never ends by itself: SIGINT (the lifecycle's stop) or a stop command file
  written with ``docker exec`` ends it with exit 0;
* a market order after the close fills at the next session's open: its events lie in two UTC days'
  files, and the ingestion stores the order once with both events;
* killed (SIGKILL) between the submission and the fill, and started again on the same run folder and
  deployment store: one submission and one fill per symbol, the account not doubled;
* the Airflow task retried while its container runs: the retry adopts it, one container in all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.launch.brokers import BrokerConnection, parse_broker_connection
from include.launch.config import LeanJob
from include.lean_local.data import DataProvider
from include.lean_local.live import BAR_WAIT_ENV
from include.pipeline import ChainRequest, lean_job, run_chain, step_check, step_ingest
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder
from tests.conftest import REPO_ROOT, manual_chain_request
from tests.faults.helpers import STARTING_CASH, table_counts
from tests.plugins.fake_docker_api import EntryScriptRun, FakeContainer, FakeDockerAPI
from tests.plugins.fake_lean import OBSERVED, WORKDIR

IMAGE = "quantconnect/lean@sha256:" + "1e" * 32
SQLITE = pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
DAG_ID = "lean_live_rebalance"
D = dt.date(2021, 3, 3)
RUN_KEY = "20210303"
OPTIONS: dict[str, Any] = {"top_n": 2, "lookback_days": 10}
SLIPPAGE_CLOSE_BPS = 3.0
EXECUTION: dict[str, Any] = {
    "lot_size": 1,
    "min_qty": 1,
    "fee_bps": 1.0,
    "slippage_open_bps": 0.0,
    "slippage_close_bps": SLIPPAGE_CLOSE_BPS,
    "cash_buffer_ratio": 0.02,
}
QC_LICENCE = {"job_user_id": "77", "api_access_token": "qc-token", "job_organization_id": "org-1"}
# The paper broker fed by polygon: what a paper deployment of the image needs (the connection's fields).
POLYGON_FIELDS: dict[str, Any] = {"extra": {"data_provider": "polygon", "polygon_api_key": "pk-1", **QC_LICENCE}}
TIMEOUT_S = 240.0


def _polygon() -> BrokerConnection:
    return parse_broker_connection("lean_paper", POLYGON_FIELDS)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _docker_run(fake: FakeDockerAPI, job: LeanJob, lines: list[str] | None = None) -> Any:
    """The Docker lifecycle of ``job`` on the paper broker fed by polygon, against the fake daemon."""
    import docker

    from include.launch.docker import container_spec
    from include.launch.lifecycle import DockerLeanRun

    connection = _polygon()
    job = dataclasses.replace(job, broker=connection.selection)
    spec = container_spec(job, image=IMAGE, secrets=connection.secrets)
    sink = lines if lines is not None else []
    return DockerLeanRun(docker.APIClient(base_url=fake.url), job, spec, timeout_s=TIMEOUT_S, on_line=sink.append)


def _launch(fake: FakeDockerAPI, lines: list[str] | None = None) -> Callable[[LeanJob], dict[str, str]]:
    def launch(job: LeanJob) -> dict[str, str]:
        return dict(_docker_run(fake, job, lines).run())

    return launch


def _request(**fields: Any) -> ChainRequest:
    fields.setdefault("options", OPTIONS)
    fields.setdefault("execution", EXECUTION)
    return manual_chain_request(DAG_ID, {"as_of": D.isoformat()}, mode="live", **fields)  # type: ignore[no-any-return]


def _raw_close(ticker: str, day: dt.date, data: Path = DEFAULT_DATA_FOLDER) -> float:
    bars = DataProvider(data).load_daily(ticker, adjusted=False)
    assert bars is not None
    return float(bars.close[bars.days.index(int(day.strftime("%Y%m%d")))])


def _events(folder: RunFolder) -> dict[str, list[dict[str, Any]]]:
    """Every per-UTC-day events file of the run, by name."""
    return {p.name: _json(p) for p in sorted(folder.results_dir.glob(f"{folder.algorithm_id}-*-order-events.json"))}


def _stored_events(db_url: str, run_key: str) -> list[tuple[int, int, str]]:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT e.order_id, e.order_event_id, e.status FROM order_events e "
                    "JOIN rebalance_runs r ON r.id = e.run_id WHERE r.run_key = :k "
                    "ORDER BY e.order_id, e.order_event_id"
                ),
                {"k": run_key},
            )
            return [(int(a), int(b), str(c)) for a, b, c in rows]
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- a whole live session


@SQLITE
def test_a_live_rebalance_through_docker_fills_moc_at_the_close_quits_and_is_ingested_once(
    lean_env: dict[str, str],
) -> None:
    lines: list[str] = []
    with FakeDockerAPI(EntryScriptRun()) as fake:
        result = run_chain(_request(), launch=_launch(fake, lines))
        assert len(fake.state.created) == 1 and fake.state.max_running == 1
        assert fake.state.containers == {} and len(fake.state.removed) == 1  # exit 0: removed
        assert fake.state.signals() == []  # it ended by itself: quit(), no signal
    folder = result.folder
    assert result.outputs["consistency_check"]["verdict"] == "pass", result.outputs["consistency_check"]
    config = folder.read_config()
    assert config.environment == "live-paper"
    assert config.get("data-queue-handler") == ["QuantConnect.Lean.DataSource.Polygon.PolygonDataProvider"]
    assert config.get("local-runtime-now") == "2021-03-03T20:10:00+00:00"  # D 15:10 New York
    assert "polygon-api-key" not in json.dumps(config.raw)  # a secret: only in the container's private copy
    log = (folder.results_dir / "log.txt").read_text(encoding="utf-8")
    assert "LEAN ALGORITHMIC TRADING ENGINE v" in log.splitlines()[0]
    assert "Exiting with code 0" in log
    algo_log = (folder.results_dir / f"{RUN_KEY}-log.txt").read_text(encoding="utf-8")
    assert f"Quit(): rebalance {D} done (terminal)" in algo_log
    assert not (folder.results_dir / f"{RUN_KEY}-summary.json").exists()
    assert _json(folder.results_dir / f"{RUN_KEY}.json")["state"]["Status"] == "Completed"

    done = _json(folder.results_dir / f"done-{D}.json")
    assert done["reason"] == "terminal" and done["orders"]
    assert {row["status"] for row in done["orders"]} == {"Filled"}
    assert done["account"] == _json(folder.final_state_path)
    # One UTC day (the submission at 20:10 UTC, the fills at the close, 21:00 UTC); MOC at D's raw close.
    (name, events), *others = _events(folder).items()
    assert name == f"{RUN_KEY}-{D}-order-events.json" and others == []
    close = dt.datetime(2021, 3, 3, 21, 0, tzinfo=dt.UTC).timestamp()
    fills = [e for e in events if e["status"] == "filled"]
    assert len(fills) == len(done["orders"]) == len([e for e in events if e["status"] == "submitted"])
    for fill in fills:
        raw = _raw_close(fill["symbolValue"], D)
        side = 1 if fill["direction"] == "buy" else -1
        assert fill["time"] == close
        assert fill["fillPrice"] == pytest.approx(raw * (1 + side * SLIPPAGE_CLOSE_BPS / 10_000), rel=1e-9)
    # The deployment's persistent store has the day's record.
    store = folder.path.parent / "_deployments" / "paper" / "storage"
    assert _json(store / "lean-airflow" / "live" / f"{D}.json")["status"] == "done"

    stored = _stored_events(lean_env["db_url"], RUN_KEY)
    assert len(stored) == len(events) == len(set(stored))
    counts = table_counts(lean_env["db_url"])
    again = step_ingest(folder)
    assert again["inserted"] == 0 and table_counts(lean_env["db_url"]) == counts
    assert _stored_events(lean_env["db_url"], RUN_KEY) == stored
    assert step_check(folder)["verdict"] == "pass"


# ---------------------------------------------------------------------------- what Lean refuses


def _prepared_job(*, algorithm_path: Path | None = None, data_folder: Path = DEFAULT_DATA_FOLDER) -> LeanJob:
    """The live job of D as the chain's first three tasks and ``lean_job`` leave it (paper fed by polygon)."""
    folder = run_chain(_request(data_folder=data_folder), until="write_params").folder
    inputs: dict[str, Any] = {"data_folder": data_folder}
    if algorithm_path is not None:
        inputs["algorithm_path"] = algorithm_path
    job = lean_job(folder, mode="live", parameters={"starting-cash": 100_000}, **inputs)
    return dataclasses.replace(job, broker=_polygon().selection)


def _start_container(fake: FakeDockerAPI, job: LeanJob) -> FakeContainer:
    """Create and start the job's container through the daemon's API, with no check of the config
    (what the lifecycle would refuse reaches the stand-in Lean)."""
    import docker

    from include.launch.docker import container_spec

    spec = container_spec(job, image=IMAGE, secrets=_polygon().secrets)
    client = docker.APIClient(base_url=fake.url)
    created = client.create_container(
        spec.image,
        name=spec.name,
        labels=dict(spec.labels),
        environment={**spec.environment, **spec.private_environment},
        entrypoint=list(spec.entrypoint),
        host_config=client.create_host_config(**spec.host_config()),
        stop_signal=spec.stop_signal,
    )
    client.start(created["Id"])
    return fake.state.containers[created["Id"]]


def _poll(condition: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Wait until ``condition()`` holds (a file the container writes, say), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.1)


def _output(container: FakeContainer) -> str:
    return b"".join(container.output).decode("utf-8", errors="replace")


@SQLITE
def test_a_live_config_without_a_data_queue_handler_that_reaches_lean_ends_it_with_exit_1(
    lean_env: dict[str, str],
) -> None:
    """The lifecycle refuses such a config before any request to the daemon (see this module's docstring);
    written by hand and started anyway, the stand-in fails as Lean's stub LiveDataQueue does."""
    from include.launch.config import write_launcher_config

    job = _prepared_job()
    path = write_launcher_config(job, "docker")
    config = _json(path)
    del config["environments"]["live-paper"]["data-queue-handler"]
    assert "data-queue-handler" not in config
    path.write_text(json.dumps(config), encoding="utf-8")
    with FakeDockerAPI(EntryScriptRun()) as fake:
        container = _start_container(fake, job)
        fake.wait_until(lambda _state: not container.running, timeout=TIMEOUT_S)
    assert container.exit_code == 1
    output = _output(container)
    assert "LiveDataQueue has not implemented live data" in output and "'data-queue-handler'" in output
    assert not list(job.folder.results_dir.glob("*order-events*"))
    assert not (job.folder.results_dir / f"done-{D}.json").exists()


# ---------------------------------------------------------------------------- it runs until it is stopped

# Lean live on the machine's clock: nothing ends it but quit(), SIGINT or a stop command. It says when it
# runs (its SIGINT handler is in place once the algorithm's first scheduled event has fired).
FOREVER = """
import os

from AlgorithmImports import *


class Forever(QCAlgorithm):
    def initialize(self):
        self.add_equity("SPY", Resolution.DAILY)
        self.schedule.on(self.date_rules.today, self.time_rules.now, self.running)

    def running(self):
        folder = os.path.dirname(self.get_parameter("final-state-path"))
        with open(os.path.join(folder, "running"), "w") as handle:
            handle.write(str(self.time))

    def on_end_of_algorithm(self):
        self.log("end of algorithm")
"""
STOP_COMMAND = {"$type": "QuantConnect.Commands.AlgorithmStatusCommand, QuantConnect.Common", "Status": "Stopped"}


@SQLITE
@pytest.mark.parametrize("stop", ["sigint", "stop command"])
def test_on_the_machines_clock_it_runs_until_sigint_or_a_stop_command(
    lean_env: dict[str, str], tmp_path: Path, stop: str
) -> None:
    from include.errors import LeanStoppedError

    algorithm = tmp_path / "algo" / "forever.py"
    algorithm.parent.mkdir()
    algorithm.write_text(FOREVER, encoding="utf-8")
    job = _prepared_job(algorithm_path=algorithm)
    job = dataclasses.replace(job, local_now=(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat())
    running = job.folder.results_dir / "running"
    outcome: dict[str, Any] = {}
    with FakeDockerAPI(EntryScriptRun()) as fake:
        lean_run = _docker_run(fake, job)

        def task() -> None:
            try:
                outcome["identity"] = lean_run.run()
            except Exception as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=task, daemon=True)
        thread.start()
        _poll(lambda: running.exists() or any(c.status == "exited" for c in fake.state.containers.values()))
        (container,) = fake.state.containers.values()
        assert running.exists(), _output(container)
        time.sleep(2)
        assert container.running, "Lean live never ends by itself"
        if stop == "sigint":
            lean_run.stop("the test stops it")  # SIGINT, then `docker stop` with the grace
        else:
            command = json.dumps(dict(STOP_COMMAND, Id="7"))
            fake.exec_run(container, ["bash", "-c", f"echo '{command}' > command-7.json"])
        thread.join(TIMEOUT_S)
        assert not thread.is_alive()
    assert not container.running and container.exit_code == 0
    log = (job.folder.results_dir / "log.txt").read_text(encoding="utf-8")
    assert "end of algorithm" in (job.folder.results_dir / f"{RUN_KEY}-log.txt").read_text(encoding="utf-8")
    assert _json(job.folder.results_dir / f"{RUN_KEY}.json")["state"]["Status"] == "Completed"
    if stop == "sigint":
        assert container.signals[0] == "SIGINT" and "SIGKILL" not in container.signals
        assert _observed(container)["signals"] == ["SIGINT"]
        assert "SIGINT: stopping the algorithm" in log
        # A stopped run counts as failed (its results are partial); the container is kept for inspection.
        assert isinstance(outcome.get("error"), LeanStoppedError)
    else:
        assert container.signals == [] and "identity" in outcome, outcome
        assert "stop command: stopping the algorithm" in log
        workdir = container.home / WORKDIR
        assert _json(workdir / "result-command-7.json")["Success"] is True
        assert not (workdir / "command-7.json").exists()


def _observed(container: FakeContainer) -> dict[str, Any]:
    return dict(_json(container.home / OBSERVED))


# ---------------------------------------------------------------------------- two UTC days

# A market order sent after the close: Lean makes it MarketOnOpen, filled at the next session's open, which is
# the next UTC day. Then it writes its session's done marker and quits, as the live algorithm does.
AFTER_CLOSE = """
import json
import os
import shutil
import subprocess
import sys
import os

from AlgorithmImports import *


class AfterClose(QCAlgorithm):
    def initialize(self):
        self.settings.seed_initial_prices = True
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.day = self.time.date()
        self.schedule.on(self.date_rules.today, self.time_rules.now, self.submit)

    def submit(self):
        self.ticket = self.market_order(self.sym, 10, tag=f"rebalance {self.day}")

    def on_order_event(self, event):
        if event.status != OrderStatus.FILLED:
            return
        folder = os.path.dirname(self.get_parameter("final-state-path"))
        holding = self.portfolio[self.sym]
        account = {"cash": float(self.portfolio.cash), "holdings": {"ZZSA": {
            "quantity": float(holding.quantity), "average_price": float(holding.average_price)}}}
        with open(self.get_parameter("final-state-path"), "w") as handle:
            json.dump(account, handle)
        done = {"version": 1, "date": self.day.isoformat(), "algorithmId": str(self.algorithm_id),
                "reason": "terminal", "account": account, "orders": [{"id": self.ticket.order_id, "symbol": "ZZSA",
                "quantity": 10.0, "status": "Filled", "tag": f"rebalance {self.day}"}]}
        with open(os.path.join(folder, f"done-{self.day}.json"), "w") as handle:
            json.dump(done, handle)
        self.quit("filled")
"""


@SQLITE
def test_an_order_submitted_on_one_utc_day_and_filled_on_the_next_is_ingested_once(
    lean_env: dict[str, str], tmp_path: Path
) -> None:
    # Named as the project's algorithm: the ingestion's manifest finds a Docker run's algorithm by its file name
    # under /LeanCLI (the project's algorithms folder); a test algorithm elsewhere has no such home.
    algorithm = tmp_path / "algo" / "lean_trend_rotation.py"
    algorithm.parent.mkdir()
    algorithm.write_text(AFTER_CLOSE, encoding="utf-8")
    job = _prepared_job(algorithm_path=algorithm)
    job = dataclasses.replace(job, local_now="2021-03-03T21:30:00+00:00")  # D 16:30 New York, after the close
    with FakeDockerAPI(EntryScriptRun()) as fake:
        _docker_run(fake, job).run()
        assert len(fake.state.created) == 1 and fake.state.containers == {}
    folder = job.folder
    files = _events(folder)
    assert list(files) == [f"{RUN_KEY}-2021-03-03-order-events.json", f"{RUN_KEY}-2021-03-04-order-events.json"]
    first, second = files.values()
    assert [(e["orderId"], e["status"]) for e in first] == [(1, "submitted")]
    assert [(e["orderId"], e["status"]) for e in second] == [(1, "filled")]
    # At D+1's open price, reported when D+1's daily bar arrives (its close): the next UTC day.
    bars = DataProvider(DEFAULT_DATA_FOLDER).load_daily("ZZSA", adjusted=False)
    assert bars is not None
    assert second[0]["fillPrice"] == pytest.approx(bars.open[bars.days.index(20210304)])
    assert second[0]["time"] == dt.datetime(2021, 3, 4, 21, 0, tzinfo=dt.UTC).timestamp()
    assert _json(folder.results_dir / f"{RUN_KEY}.json")["orders"]["1"]["type"] == 4  # MarketOnOpen

    summary = step_ingest(folder)
    assert summary["files"] == list(files)
    assert _stored_events(lean_env["db_url"], RUN_KEY) == [(1, 1, "submitted"), (1, 2, "filled")]
    again = step_ingest(folder)
    assert again["inserted"] == 0
    assert _stored_events(lean_env["db_url"], RUN_KEY) == [(1, 1, "submitted"), (1, 2, "filled")]


# ---------------------------------------------------------------------------- killed between submit and fill


def _without_session(source: Path, target: Path, day: dt.date) -> dict[Path, bytes]:
    """A copy of the Lean data folder ``source`` whose daily bars of ``day`` are removed (as a data queue
    that has not delivered them yet); the original zips by path, to put the bars back."""
    shutil.copytree(source, target)
    originals: dict[Path, bytes] = {}
    stamp = f"{day:%Y%m%d} "
    for path in sorted((target / "equity" / "usa" / "daily").glob("*.zip")):
        originals[path] = path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            (name,) = archive.namelist()
            lines = archive.read(name).decode().splitlines()
        kept = [line for line in lines if not line.startswith(stamp)]
        assert len(kept) == len(lines) - 1, f"{path.name} has no bar of {day}"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, "\n".join(kept) + "\n")
    return originals


def _read_events(path: Path) -> list[dict[str, Any]]:
    """An events file Lean may be rewriting (not atomically): [] until it is whole."""
    try:
        return list(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError):
        return []


@SQLITE
def test_killed_between_submit_and_fill_and_started_again_it_submits_once(
    lean_env: dict[str, str], tmp_path: Path
) -> None:
    import docker

    from include.errors import LeanRunError

    data = tmp_path / "data"
    originals = _without_session(DEFAULT_DATA_FOLDER, data, D)
    job = _prepared_job(data_folder=data)
    folder = job.folder
    events_path = folder.results_dir / f"{RUN_KEY}-{D}-order-events.json"
    store = folder.path.parent / "_deployments" / "paper" / "storage"
    outcome: dict[str, Any] = {}
    # At the close the runtime waits for D's bars (the data queue): long enough to be killed meanwhile.
    with FakeDockerAPI(EntryScriptRun(environment={BAR_WAIT_ENV: str(TIMEOUT_S)})) as fake:
        first_run = _docker_run(fake, job)

        def task() -> None:
            try:
                first_run.run()
            except Exception as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=task, daemon=True)
        thread.start()
        record = store / "lean-airflow" / "live" / f"{D}.json"  # written once every order is submitted
        _poll(lambda: record.exists() and bool(_read_events(events_path)))
        (first,) = fake.state.running()
        assert _json(record)["status"] == "submitted"
        submitted = _read_events(events_path)
        assert {e["status"] for e in submitted} == {"submitted"} and len(submitted) == len(_json(record)["orders"])
        account_before = _json(folder.final_state_path)
        inode = events_path.stat().st_ino
        docker.APIClient(base_url=fake.url).kill(first.id, signal="SIGKILL")  # the machine dies
        thread.join(TIMEOUT_S)
        assert not thread.is_alive() and isinstance(outcome.get("error"), LeanRunError)
        assert first.exit_code == 137 and not (folder.results_dir / f"done-{D}.json").exists()

        for path, content in originals.items():  # the bars arrive
            path.write_bytes(content)
        _docker_run(fake, job).run()  # started again: same run folder, same deployment store
        assert len(fake.state.created) == 2 and fake.state.max_running == 1
    events = _events(folder)
    assert list(events) == [events_path.name]
    final = events[events_path.name]
    assert events_path.stat().st_ino == inode  # rewritten in place, as Lean's File.WriteAllText
    symbols = sorted(e["symbolValue"] for e in submitted)
    assert sorted(e["symbolValue"] for e in final if e["status"] == "submitted") == symbols
    assert sorted(e["symbolValue"] for e in final if e["status"] == "filled") == symbols
    assert [e["quantity"] for e in final if e["status"] == "submitted"] == [e["quantity"] for e in submitted]

    done = _json(folder.results_dir / f"done-{D}.json")
    assert {row["status"] for row in done["orders"]} == {"Filled"} and len(done["orders"]) == len(symbols)
    account = _json(folder.final_state_path)
    assert account_before == {"cash": 100_000.0, "holdings": {}}  # nothing had filled when it was killed
    # Not doubled: each symbol holds one fill's quantity, paid once.
    fills = {e["symbolValue"]: e for e in final if e["status"] == "filled"}
    assert {t: h["quantity"] for t, h in account["holdings"].items()} == {
        t: e["fillQuantity"] for t, e in fills.items()
    }
    spent = sum(e["fillQuantity"] * e["fillPrice"] + e.get("orderFeeAmount", 0.0) for e in fills.values())
    assert account["cash"] == pytest.approx(100_000.0 - spent, abs=0.01)
    algo_log = (folder.results_dir / f"{RUN_KEY}-log.txt").read_text(encoding="utf-8")
    assert "an earlier process submitted orders the brokerage no longer has: sizing again" in algo_log
    assert _json(record)["status"] == "done"

    step_ingest(folder)
    assert len(_stored_events(lean_env["db_url"], RUN_KEY)) == 2 * len(symbols)
    assert step_check(folder)["verdict"] == "pass"


# ---------------------------------------------------------------------------- a retry while Lean runs


@SQLITE
def test_a_retry_of_the_task_while_its_live_container_runs_adopts_it(
    lean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt's worker dies (SIGKILL) while Lean waits at the close for D's bars; the retry, the
    same LeanRunOperator, finds the running container of its run and waits for it: one Lean, one container."""
    from lean_airflow.operators import LeanRunOperator

    from tests.airflow_fixtures import RecordingTI

    monkeypatch.setenv("AIRFLOW_CONN_LEAN_PAPER", json.dumps({"conn_type": "generic", **POLYGON_FIELDS}))
    data = tmp_path / "data"
    originals = _without_session(DEFAULT_DATA_FOLDER, data, D)
    folder = run_chain(_request(data_folder=data), until="write_params").folder
    record = folder.path.parent / "_deployments" / "paper" / "storage" / "lean-airflow" / "live" / f"{D}.json"
    spec: dict[str, Any] = {
        "run_dir": str(folder.path),
        "image": IMAGE,
        "mode": "live",
        "broker_conn_id": "lean_paper",
        "data_path": str(data),
    }
    with FakeDockerAPI(EntryScriptRun(environment={BAR_WAIT_ENV: str(TIMEOUT_S)})) as fake:
        spec["docker_url"] = fake.url
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.plugins.worker_steps", "run_lean", json.dumps(spec)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")])},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _poll(lambda: record.exists() or worker.poll() is not None)  # Lean submitted and waits for the bars
            assert worker.poll() is None, "the first attempt ended early"
        finally:
            worker.kill()
            worker.wait(TIMEOUT_S)
        (running,) = fake.state.running()
        for path, content in originals.items():  # D's bars arrive while nobody watches
            path.write_bytes(content)
        lines: list[str] = []
        retry = LeanRunOperator(
            task_id="run_lean",
            mode="live",
            runtime="docker",
            run_dir=str(folder.path),
            data_path=str(data),
            image=IMAGE,
            docker_url=fake.url,
            broker_conn_id="lean_paper",
            parameters={"starting-cash": STARTING_CASH},  # the first attempt's: the same config
        )
        monkeypatch.setattr(retry.log, "info", lambda message, *args: lines.append(message % args if args else message))
        retry.execute({"ti": RecordingTI()})
        assert len(fake.state.created) == 1, "the retry started a second Lean"
        assert fake.state.max_running == 1 and running.signals == [] and running.exit_code == 0
        assert fake.state.containers == {}  # removed once it succeeded
    assert any("Adopting the running container" in line for line in lines), lines
    done = _json(folder.results_dir / f"done-{D}.json")
    assert {row["status"] for row in done["orders"]} == {"Filled"}
    events = next(iter(_events(folder).values()))
    assert len([e for e in events if e["status"] == "submitted"]) == len(done["orders"])
    step_ingest(folder)
    assert step_check(folder)["verdict"] == "pass"
