"""Splits and dividends between two runs of a carried account (``include.corporate_actions``), applied as
Lean's ``SecurityPortfolioManager.ApplySplit``/``ApplyDividend`` apply them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from include.corporate_actions import (
    CorporateAction,
    apply_corporate_actions,
    corporate_actions,
    read_carry_record,
)
from include.pipeline import ChainRequest, run_chain
from include.run_folder import DEFAULT_DATA_FOLDER, RunRef
from include.trading_calendar import sessions_between
from tests.lean_data_factory import write_closes

DAY = dt.date(2021, 3, 3)


def _state(quantity: float, average: float = 60.0, cash: float = 1_000.0) -> dict[str, Any]:
    return {"cash": cash, "holdings": {"ZZX": {"quantity": quantity, "average_price": average}}}


def _split(factor: float, reference: float = 90.0) -> CorporateAction:
    return CorporateAction("ZZX", "split", DAY, reference, split_factor=factor)


def test_the_sample_split_is_found_between_the_sessions_around_it() -> None:
    """ZZSC's 2:1 split takes effect on 2020-06-15 (factor row 2020-06-12, reference 111.0239); nothing
    else in the sample data has a corporate action."""
    found = corporate_actions(
        DEFAULT_DATA_FOLDER, ["zzsc", "ZZSA"], after=dt.date(2020, 6, 12), through=dt.date(2020, 6, 15)
    )
    assert found == [CorporateAction("ZZSC", "split", dt.date(2020, 6, 15), 111.0239, split_factor=0.5)]
    assert (
        corporate_actions(DEFAULT_DATA_FOLDER, ["ZZSC"], after=dt.date(2020, 6, 15), through=dt.date(2020, 6, 19)) == []
    )
    # A run that skipped days still catches up: from the week before.
    assert (
        len(corporate_actions(DEFAULT_DATA_FOLDER, ["ZZSC"], after=dt.date(2020, 6, 5), through=dt.date(2020, 6, 16)))
        == 1
    )


def test_a_split_truncates_to_whole_shares_and_pays_the_fraction_in_cash() -> None:
    """3:2 on 101 shares: 151 shares, average x 2/3, half a share paid at the reference price in
    post-split terms (Lean's ApplySplit without a bar since the split)."""
    factor = 2 / 3
    after, (record,) = apply_corporate_actions(_state(101), [_split(factor)])
    assert after["holdings"]["ZZX"] == {"quantity": 151.0, "average_price": pytest.approx(40.0)}
    assert after["cash"] == pytest.approx(1_000.0 + 0.5 * 90.0 * factor)
    assert (record["quantity_before"], record["quantity_after"], record["kind"]) == (101, 151.0, "split")
    # A short truncates toward zero too (C#'s (int) cast) and pays its fraction.
    short, _ = apply_corporate_actions(_state(-101), [_split(factor)])
    assert short["holdings"]["ZZX"]["quantity"] == -151.0
    assert short["cash"] == pytest.approx(1_000.0 - 0.5 * 90.0 * factor)


def test_a_ten_for_one_split_keeps_every_share() -> None:
    """3 / 0.1 is 29.999999999999996 in floats: the quotient is taken in decimals, as Lean's is."""
    after, _ = apply_corporate_actions(_state(3), [_split(0.1)])
    assert after["holdings"]["ZZX"]["quantity"] == 30.0 and after["cash"] == 1_000.0


def test_a_reverse_split_below_one_share_pays_it_all_in_cash() -> None:
    after, (record,) = apply_corporate_actions(_state(5), [_split(10.0, reference=2.0)])
    assert after["holdings"] == {} and after["cash"] == pytest.approx(1_000.0 + 0.5 * 2.0 * 10.0)
    assert record["quantity_after"] == 0.0


def test_a_dividend_is_paid_before_a_split_of_the_same_day_and_others_are_untouched() -> None:
    """Lean handles a slice's dividends before its splits (AlgorithmManager); a symbol not held gets nothing."""
    dividend = CorporateAction("ZZX", "dividend", DAY, 90.0, distribution=0.25)
    other = CorporateAction("ZZY", "split", DAY, 50.0, split_factor=0.5)
    after, applied = apply_corporate_actions(_state(100), [_split(0.5), other, dividend])
    assert [a["kind"] for a in applied] == ["dividend", "split"]
    assert after["cash"] == pytest.approx(1_000.0 + 100 * 0.25)
    assert after["holdings"]["ZZX"]["quantity"] == 200.0 and "ZZY" not in after["holdings"]


def test_a_malformed_carry_record_is_named(tmp_path: Path) -> None:
    from include.errors import RunFolderError

    path = tmp_path / "initial_state.json"
    path.write_text(json.dumps({"cash": 1.0, "holdings": {}, "carried_over": {"from_run_key": "x"}}))
    with pytest.raises(RunFolderError, match=r"initial_state\.json: not a valid carried_over record"):
        read_carry_record(path)
    path.write_text(json.dumps({"cash": 1.0, "holdings": {}}))
    assert read_carry_record(path) is None and read_carry_record(tmp_path / "absent.json") is None


def test_a_live_account_carried_over_an_ex_date_gets_the_dividend_in_cash(
    chain_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ZZDV pays 1.00 USD/share, ex 2021-03-03 (factor row 2021-03-02: price factor 0.99, reference close
    100). Live on 03-02 buys it; the account carried to the 03-04 run is credited shares x 1.00, as the
    broker pays it (Lean live leaves dividend cash to the brokerage sync), and the check lists it.
    Fails on the code that copied the final state unchanged."""
    data = tmp_path / "data"
    sessions = sessions_between(dt.date(2021, 1, 4), dt.date(2021, 3, 10))
    write_closes(data, {"ZZDV": dict.fromkeys(sessions, 100.0)})
    usa = data / "equity" / "usa"
    (usa / "factor_files").mkdir(parents=True)
    (usa / "factor_files" / "zzdv.csv").write_text("20210104,0.99,1,0\n20210302,0.99,1,100\n20501231,1,1,0\n")
    (usa / "map_files").mkdir(parents=True)
    (usa / "map_files" / "zzdv.csv").write_text("20210104,zzdv,Q\n20501231,zzdv,Q\n")
    monkeypatch.setenv("LEAN_AIRFLOW_WEIGHTS_DIRS", str(tmp_path))  # the file provider reads only there
    weights = tmp_path / "weights.csv"
    weights.write_text("date,symbol,weight\n2021-03-02,ZZDV,0.5\n2021-03-04,ZZDV,0.5\n", encoding="utf-8")

    def live(day: dt.date) -> Any:
        return run_chain(
            ChainRequest(
                ref=RunRef.for_date("lean_live_rebalance", day),
                dates=(day,),
                mode="live",
                provider="file",
                options={"path": str(weights)},
                continue_account=True,
                data_folder=data,
            )
        ).folder

    first = live(dt.date(2021, 3, 2))
    ended = json.loads(first.final_state_path.read_text(encoding="utf-8"))
    shares = ended["holdings"]["ZZDV"]["quantity"]
    assert shares > 0
    second = live(dt.date(2021, 3, 4))
    started = json.loads(second.initial_state_path.read_text(encoding="utf-8"))
    assert started["cash"] == pytest.approx(ended["cash"] + shares * 1.00)
    assert started["holdings"] == ended["holdings"]
    (paid,) = started["carried_over"]["corporate_actions"]
    assert (paid["kind"], paid["date"], paid["distribution"], paid["cash"]) == (
        "dividend",
        "2021-03-03",
        1.0,
        pytest.approx(shares),
    )
    report = json.loads(second.report_json_path.read_text(encoding="utf-8"))
    assert report["verdict"] == "pass"
    (listed,) = [c for c in report["checks"] if c["check"] == "corporate_actions"]
    assert (listed["verdict"], listed["symbol"], listed["date"]) == ("pass", "ZZDV", "2021-03-03")
