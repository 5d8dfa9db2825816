"""Issue #17's report cases in a real headless Chromium against ``airflow standalone``'s api-server:
a continued daily run's statistics, a range across the bundled ZZSC split, and a live run past the
end of the data. Each run is made by the one chain (``include.pipeline.run_chain``) on the sample data.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.errors import MarketDataMissingError
from include.market_data import read_daily_bars
from include.pipeline import run_chain
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder, read_starting_state
from tests.airflow_stack import running_stack
from tests.conftest import REPO_ROOT, manual_chain_request

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OPTIONS = {"top_n": 2, "lookback_days": 10}
SPLIT_RANGE = ("2020-06-01", "2020-06-30")  # ZZSC splits 2:1 on 2020-06-15 (include/sample_data)
PAST_THE_DATA = "2023-06-01"  # the bundled data ends on 2021-12-31
VERDICTS = "els => els.map(e => e.dataset.verdict)"


def _chain(root: Path, dag_id: str, params: dict[str, str], **fields: Any) -> RunFolder:
    return run_chain(manual_chain_request(dag_id, params, options=OPTIONS, root=root, **fields)).folder


def _percent(text: str) -> float:
    match = re.fullmatch(r"(-?[\d,.]+)%", text.strip())
    assert match, text
    return float(match.group(1).replace(",", ""))


def _money(text: str) -> float:
    return float(text.strip().lstrip("$").replace(",", ""))


@pytest.fixture
def issue_runs(chain_env: Path) -> dict[str, Any]:
    root = chain_env
    # Two daily backtests, the second continuing the first's account.
    _chain(root, "lean_backtest_daily", {"as_of": "2021-03-01"})
    day2 = _chain(root, "lean_backtest_daily", {"as_of": "2021-03-02"}, continue_account=True)
    state = read_starting_state({}, day2.initial_state_path)
    assert state.holdings and state.cash is not None, "the continued run must start with holdings, or it proves nothing"
    # The value of the restored account at the warm-up's end (the close before 2021-03-02).
    held = sum(
        quantity * read_daily_bars(DEFAULT_DATA_FOLDER, symbol).loc[pd.Timestamp(2021, 3, 1), "close"]
        for symbol, quantity in state.holdings.items()
    )
    split = _chain(root, "lean_backtest_range", {"start_date": SPLIT_RANGE[0], "end_date": SPLIT_RANGE[1]})
    with pytest.raises(MarketDataMissingError):
        _chain(root, "lean_live_rebalance", {"as_of": PAST_THE_DATA}, mode="live", policy="fail")
    return {"root": root, "day2": day2, "start_value": state.cash + held, "split": split}


def test_issue_17_runs_in_chromium(issue_runs: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is required: apt-get install chromium (.ci/test does it)"
    env = {"LEAN_AIRFLOW_ARTIFACT_ROOT": str(issue_runs["root"])}
    with running_stack(tmp_path / "airflow", dags_folder=REPO_ROOT / "dags", extra_env=env, scheduler=False) as stack:
        token = stack.token()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "_token", "value": token, "url": stack.url}])
                page = context.new_page()

                def tile(name: str) -> str:
                    return page.locator(f'#key-statistics [data-statistic="{name}"] .v').inner_text()

                # 1. A continued daily run: Lean's Start Equity is cash plus the restored holdings'
                # value (not the cash alone, which made a 4886% net profit), and the return is a day's.
                page.goto(f"{stack.url}/lean-airflow/runs/lean_backtest_daily/20210302")
                assert page.locator("#verdict-line [data-verdict]").get_attribute("data-verdict") == "pass"
                assert _money(tile("Start Equity")) == pytest.approx(issue_runs["start_value"], abs=0.01)
                assert abs(_percent(tile("Net Profit"))) < 5
                assert abs(_percent(tile("Compounding Annual Return"))) < 1e4

                # 2. The June 2020 range across the ZZSC split passes with no finding, and ZZSC
                # traded on both sides of the split.
                key = f"{SPLIT_RANGE[0].replace('-', '')}_{SPLIT_RANGE[1].replace('-', '')}"
                page.goto(f"{stack.url}/lean-airflow/runs/lean_backtest_range/{key}?rows=all&symbol=ZZSC")
                assert page.locator("#verdict-line [data-verdict]").get_attribute("data-verdict") == "pass"
                assert page.locator("#findings").inner_text().startswith("No findings")
                dates = set(page.locator("#audit tbody tr td:nth-child(1)").all_inner_texts())
                assert {"2020-06-12", "2020-06-15"} <= dates
                row_verdicts = page.locator("#audit [data-verdict]").evaluate_all(
                    "els => els.map(e => e.dataset.verdict)"
                )
                assert row_verdicts and set(row_verdicts) == {"pass"}
                report = json.loads(issue_runs["split"].report_json_path.read_text(encoding="utf-8"))
                assert report["verdict"] == "pass" and all(c["verdict"] == "pass" for c in report["checks"])

                # 3. A live run past the end of the data failed before Lean: its page shows no
                # verdict but INCOMPLETE in red, and the runs list says so too.
                page.goto(f"{stack.url}/lean-airflow/runs/lean_live_rebalance/{PAST_THE_DATA.replace('-', '')}")
                badges = page.locator("[data-verdict]").evaluate_all(VERDICTS)
                assert "pass" not in badges and "incomplete" in badges
                banner = page.locator("#freshness")
                assert banner.get_attribute("data-state") == "incomplete"
                assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(251, 224, 224)"
                page.goto(f"{stack.url}/lean-airflow/")
                listed = page.locator("#runs tbody").inner_text()
                assert re.search(r"lean_live_rebalance\s+20230601\s+incomplete", listed), listed
                context.close()
            finally:
                browser.close()
