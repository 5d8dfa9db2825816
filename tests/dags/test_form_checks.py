"""A run form the contracts refuse fails the first task at once: a named error, no retry, no run folder.

And a run of ``lean_backtest_daily`` held back by a failed earlier run (``depends_on_past``) fails at
once too, naming that run and what to do, instead of waiting without a state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pendulum
import pytest

pytestmark = pytest.mark.slow


def _snapshot_ti(run: Any) -> Any:
    return run.get_task_instance("snapshot")


def _assert_failed_at_once(run: Any, capfd: pytest.CaptureFixture[str], *named: str) -> None:
    """snapshot failed on its first try, with no retry scheduled, saying ``named``; nothing ran after it."""
    ti = _snapshot_ti(run)
    assert str(ti.state) == "failed", ti.state  # not up_for_retry: AirflowFailException
    assert ti.try_number == 1
    assert str(run.state) == "failed"
    states = {t.task_id: str(t.state) for t in run.get_task_instances()}
    assert {k: v for k, v in states.items() if k != "snapshot"} == dict.fromkeys(
        set(states) - {"snapshot"}, "upstream_failed"
    )
    out = capfd.readouterr()
    text = out.out + out.err
    assert "AirflowFailException" in text
    for words in named:
        assert words in text, (words, text[-3000:])


def _no_run_folder(root: Path) -> None:
    assert not root.exists() or not any(p.is_dir() for p in root.glob("*/*")), list(root.rglob("*"))


def test_range_end_before_start_fails_snapshot_at_once(
    dagbag: Any, chain_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run = dagbag.dags["lean_backtest_range"].test(run_conf={"start_date": "2021-03-31", "end_date": "2021-03-01"})
    _assert_failed_at_once(
        run, capfd, "invalid run dates", "start_date=2021-03-31 and end_date=2021-03-01: end is before start"
    )
    _no_run_folder(chain_env)


def test_range_backtest_ending_today_fails_at_once(
    dagbag: Any, chain_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from include.pipeline import new_york_today

    today = new_york_today()
    run = dagbag.dags["lean_backtest_range"].test(
        run_conf={"start_date": (today - dt.timedelta(days=30)).isoformat(), "end_date": today.isoformat()}
    )
    _assert_failed_at_once(run, capfd, f"end_date={today}: a backtest can end on")
    _no_run_folder(chain_env)


@pytest.mark.parametrize(
    ("as_of", "named"),
    [("2021-03-06", "as_of 2021-03-06 is not an NYSE trading session"), ("2021-04-02", "as_of 2021-04-02 is not")],
    ids=["saturday", "good-friday"],
)
def test_daily_as_of_not_a_session_fails_at_once(
    dagbag: Any, chain_env: Path, capfd: pytest.CaptureFixture[str], as_of: str, named: str
) -> None:
    run = dagbag.dags["lean_backtest_daily"].test(logical_date=None, run_conf={"as_of": as_of})
    _assert_failed_at_once(run, capfd, named)
    _no_run_folder(chain_env)


def test_execution_params_the_contract_refuses_fail_at_snapshot_not_write_params(
    dagbag: Any, chain_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # risk_overrides is a free JSON object in the form: only the contract can refuse it.
    conf = {"start_date": "2021-02-01", "end_date": "2021-02-26", "risk_overrides": {"max_weight": 1.5}}
    run = dagbag.dags["lean_backtest_range"].test(run_conf=conf)
    _assert_failed_at_once(run, capfd, "invalid execution params", "max_weight")
    _no_run_folder(chain_env)


def test_negative_fees_are_refused_by_the_form_itself(dagbag: Any, chain_env: Path) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match="fee_bps"):
        dagbag.dags["lean_backtest_range"].test(
            run_conf={"start_date": "2021-02-01", "end_date": "2021-02-26", "fee_bps": -1.0}
        )
    _no_run_folder(chain_env)


def test_a_failed_daily_backtest_run_blocks_the_next_one_by_name(
    dagbag: Any, chain_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dag = dagbag.dags["lean_backtest_daily"]
    # Logical dates no other test uses: Airflow's previous run is the latest earlier logical date.
    first_at = pendulum.datetime(2019, 6, 3, 10, 0, tz="UTC")
    first = dag.test(logical_date=first_at, run_conf={"as_of": "2021-03-06"})  # a Saturday: refused
    assert str(_snapshot_ti(first).state) == "failed"
    capfd.readouterr()
    second = dag.test(logical_date=first_at.add(minutes=1), run_conf={"as_of": "2021-03-03"})
    _assert_failed_at_once(
        second,
        capfd,
        f"blocked by the previous run {first.run_id}",
        "snapshot=failed",
        "write_intent=upstream_failed",
        "Clear its failed tasks",
        "Mark it as success",
    )
    _no_run_folder(chain_env)
    # The DAG's docs (the UI's Docs tab) say so too.
    assert "Runs go in order" in (dag.doc_md or "")
    assert not dag.get_task("snapshot").depends_on_past
    assert all(t.depends_on_past for t in dag.tasks if t.task_id != "snapshot")
