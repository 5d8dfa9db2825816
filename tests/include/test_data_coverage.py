"""The market-data coverage check (``include.data_coverage``, issue #17): which session each run sizes
on, which symbols need a bar there, and what the named error says when the data folder lacks one."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from include.contracts.intent import OrderIntent, build_order_intent, write_order_intent
from include.contracts.params import write_execution_params
from include.data_coverage import (
    bar_needs,
    check_data_coverage,
    coverage_gaps,
    require_data_coverage,
    sizing_session,
    starting_holdings,
)
from include.errors import ContractValidationError, MarketDataMissingError
from include.live_session import session_start_utc
from include.market_data import daily_bar_days, read_daily_bars
from include.pipeline import lean_job
from include.run_folder import RunFolder, RunRef
from tests.lean_data_factory import write_closes, write_daily_zip

MON, TUE, WED, THU, FRI = (dt.date(2021, 3, d) for d in (1, 2, 3, 4, 5))
SAT = dt.date(2021, 3, 6)


def _intent(rebalances: Mapping[dt.date, Mapping[str, float]]) -> OrderIntent:
    return build_order_intent(
        run_key="20210301",
        rebalances={
            day: [{"symbol": s, "weight": w} for s, w in weights.items()] for day, weights in rebalances.items()
        },
    )


def _data(tmp_path: Path, closes: Mapping[str, list[dt.date]]) -> Path:
    folder = tmp_path / "data"
    write_closes(folder, {ticker: dict.fromkeys(days, 10.0) for ticker, days in closes.items()})
    return folder


# ---------------------------------------------------------------- which session


def test_a_backtest_sizes_on_its_rebalance_session() -> None:
    session, accepted, why = sizing_session("backtest", WED)
    assert session == WED and accepted == (WED,)
    assert "2021-03-03" in why


def test_a_live_run_sizes_on_the_previous_session_or_on_the_day_itself() -> None:
    assert sizing_session("live", WED)[:2] == (TUE, (TUE, WED))
    assert sizing_session("live", MON)[:2] == (dt.date(2021, 2, 26), (dt.date(2021, 2, 26), MON))
    # A live run on a weekend trades the last session (the local runtime's "now"), sized on the one before.
    assert sizing_session("live", SAT)[:2] == (THU, (THU, FRI))
    # After a holiday: Good Friday 2021-04-02 is no session, so Monday 2021-04-05 sizes on Thursday.
    assert sizing_session("live", dt.date(2021, 4, 5))[0] == dt.date(2021, 4, 1)


# ---------------------------------------------------------------- which symbols


def test_needs_skip_weight_zero_symbols_that_are_not_held() -> None:
    intent = _intent({WED: {"ZZSA": 0.5, "ZZSB": 0.0}})
    assert [(n.symbol, n.session) for n in bar_needs(intent, mode="backtest")] == [("ZZSA", WED)]
    # Held, the weight-0 symbol is sold at its price: it needs its bar.
    held = bar_needs(intent, mode="backtest", holdings=["zzsb"])
    assert [(n.symbol, n.session) for n in held] == [("ZZSA", WED), ("ZZSB", WED)]


def test_backtest_needs_carry_the_previous_targets_into_the_next_rebalance() -> None:
    intent = _intent({MON: {"ZZSA": 0.5}, TUE: {"ZZSB": 0.5, "ZZSA": 0.0}, WED: {"ZZSB": 0.5}})
    needs = [(n.symbol, n.date) for n in bar_needs(intent, mode="backtest", holdings=["ZZSH"])]
    # ZZSH is held at the start (sold Monday); ZZSA, bought Monday, is sold Tuesday; not needed Wednesday.
    assert needs == [("ZZSA", MON), ("ZZSH", MON), ("ZZSA", TUE), ("ZZSB", TUE), ("ZZSB", WED)]


def test_live_needs_only_the_traded_date_and_the_held_symbols() -> None:
    intent = _intent({TUE: {"ZZSA": 0.5}, WED: {"ZZSB": 0.5, "ZZSC": 0.0}})
    needs = bar_needs(intent, mode="live", holdings=["ZZSD"])
    assert [(n.symbol, n.date, n.session, n.accepted) for n in needs] == [
        ("ZZSB", WED, TUE, (TUE, WED)),
        ("ZZSD", WED, TUE, (TUE, WED)),
    ]


# ---------------------------------------------------------------- the data folder


def test_covered_needs_leave_no_gap(tmp_path: Path) -> None:
    data = _data(tmp_path, {"ZZSA": [MON, TUE, WED], "ZZSB": [MON, TUE]})
    assert coverage_gaps(data, bar_needs(_intent({WED: {"ZZSA": 0.5}}), mode="backtest")) == []
    # Live on Wednesday: Tuesday's bar suffices (the run trades before Wednesday's close) ...
    assert coverage_gaps(data, bar_needs(_intent({WED: {"ZZSB": 0.5}}), mode="live")) == []
    # ... but a backtest of Wednesday fills at Wednesday's close, which ZZSB's data lacks.
    (gap,) = coverage_gaps(data, bar_needs(_intent({WED: {"ZZSB": 0.5}}), mode="backtest"))
    assert gap.need.symbol == "ZZSB" and gap.last == TUE and gap.next is None
    assert gap.describe() == (
        "ZZSB: no bar on 2021-03-03 (the close the backtest's rebalance of 2021-03-03 fills at); "
        "last date available 2021-03-02"
    )


def test_a_live_run_accepts_the_days_own_bar_without_the_previous_one(tmp_path: Path) -> None:
    data = _data(tmp_path, {"ZZSA": [MON, WED]})
    assert coverage_gaps(data, bar_needs(_intent({WED: {"ZZSA": 0.5}}), mode="live")) == []


def test_stale_data_names_the_symbol_the_session_and_the_last_date(tmp_path: Path) -> None:
    data = _data(tmp_path, {"ZZSA": [MON, TUE, WED], "ZZSB": [MON]})
    late = dt.date(2023, 12, 29)
    with pytest.raises(MarketDataMissingError) as caught:
        check_data_coverage(data, _intent({late: {"ZZSA": 0.5, "ZZSB": 0.5}}), mode="live")
    error = caught.value
    assert isinstance(error, ContractValidationError)
    assert error.symbols == ["ZZSA", "ZZSB"]
    assert error.problems == [
        "ZZSA: no bar on 2023-12-28 (the previous session's close, which a live run trading 2023-12-29 "
        "sizes on); last date available 2021-03-03",
        "ZZSB: no bar on 2023-12-28 (the previous session's close, which a live run trading 2023-12-29 "
        "sizes on); last date available 2021-03-01",
    ]
    assert str(error).startswith(f"missing or stale market data in {data}: nothing was traded, Lean was not started")


def test_no_data_file_an_empty_file_a_gap_and_a_late_start_are_named(tmp_path: Path) -> None:
    data = _data(tmp_path, {"ZZSA": [MON, WED], "ZZSC": [THU]})
    write_daily_zip(data, "ZZSE", [])
    intent = _intent({TUE: {"ZZSA": 0.3, "ZZSB": 0.3, "ZZSC": 0.2, "ZZSE": 0.2}})
    described = [gap.describe().split("; ", 1)[1] for gap in coverage_gaps(data, bar_needs(intent, mode="backtest"))]
    assert described == [
        "a gap in the data: last date available before it 2021-03-01, next 2021-03-03",
        "no data file (equity/usa/daily/zzsb.zip)",
        "no date available before it, its data starts on 2021-03-04",
        "its data file (equity/usa/daily/zzse.zip) has no bars",
    ]


def test_a_zero_close_is_not_a_bar(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_daily_zip(data, "ZZSA", [(MON, 10, 10, 10, 10, 1), (TUE, 10, 10, 10, 0, 1)])
    assert daily_bar_days(data, "ZZSA") == [20210301]
    assert daily_bar_days(data, "ZZSB") is None
    (gap,) = coverage_gaps(data, bar_needs(_intent({TUE: {"ZZSA": 1.0}}), mode="backtest"))
    assert gap.last == MON


def test_only_the_needed_files_are_read_and_a_snapshots_read_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import include.lean_local.data as lean_data

    data = _data(tmp_path, {t: [MON, TUE, WED] for t in ("ZZSA", "ZZSB", "ZZSC")})
    read: list[str] = []
    original = lean_data.read_daily_zip

    def counting(path: Path, **kwargs: object) -> object:
        read.append(path.name)
        return original(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lean_data, "read_daily_zip", counting)
    read_daily_bars(data, "ZZSA")  # what the trend-rotation snapshot reads
    assert read == ["zzsa.zip"]
    check_data_coverage(data, _intent({WED: {"ZZSA": 0.5, "ZZSB": 0.0}}), mode="backtest", holdings=["ZZSC"])
    assert read == ["zzsa.zip", "zzsc.zip"]  # ZZSA from the cache; ZZSB (weight 0, not held) never opened


# ---------------------------------------------------------------- the run folder


def _folder(tmp_path: Path, weights: Mapping[str, float], state: dict[str, object] | None = None) -> RunFolder:
    folder = RunFolder.create(RunRef("lean_live_rebalance", "20210303"), root=tmp_path / "artifacts")
    write_order_intent(
        output_dir=folder.path,
        run_key="20210303",
        rebalances={WED: [{"symbol": s, "weight": w} for s, w in weights.items()]},
    )
    write_execution_params(output_dir=folder.path, run_id="20210303", params={"lot_size": 1})
    if state is not None:
        folder.initial_state_path.write_text(json.dumps(state), encoding="utf-8")
    return folder


def test_the_starting_state_holdings_are_checked(tmp_path: Path) -> None:
    data = _data(tmp_path, {"ZZSA": [MON, TUE, WED]})
    state = {"cash": 1.0, "holdings": {"zzsh": {"quantity": 5, "average_price": 10}, "ZZSG": {"quantity": 0}}}
    folder = _folder(tmp_path, {"ZZSA": 1.0}, state)
    assert starting_holdings(folder) == {"ZZSH": 5.0}
    with pytest.raises(MarketDataMissingError, match=r"ZZSH: no bar on 2021-03-02 .*no data file") as caught:
        require_data_coverage(folder, mode="live", data_folder=data)
    assert caught.value.symbols == ["ZZSH"]  # ZZSG's zero quantity is no holding


def test_lean_job_refuses_before_anything_is_launched(tmp_path: Path) -> None:
    data = _data(tmp_path, {"ZZSA": [MON]})
    folder = _folder(tmp_path, {"ZZSA": 1.0})
    with pytest.raises(MarketDataMissingError, match="last date available 2021-03-01"):
        lean_job(folder, mode="live", parameters={}, data_folder=data)
    assert not folder.config_path.exists() and not folder.results_dir.exists()
    covered = tmp_path / "covered"
    write_closes(covered, {"ZZSA": {MON: 10.0, TUE: 10.0}})
    job = lean_job(folder, mode="live", parameters={}, data_folder=covered)
    assert job.local_now == session_start_utc(dt.date(2021, 3, 3)).isoformat()
