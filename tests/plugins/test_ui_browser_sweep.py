"""A sweep's comparison page in a real headless Chromium, behind Airflow's authentication: a sweep of
``lean_backtest_sweep`` run by ``dag.test()`` on the sample data (eight points, the last one the params
contract refuses), then its page served by the api-server of a real Airflow stack: the table, the ranking and the
plot render, the failed point is marked, a point links to its run's report page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from include.sweep import SWEEP_DAG_ID, expand_sweep
from tests.airflow_stack import running_stack
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
POINTS, FINISHED = 8, 7
CONF = {
    "start_date": "2021-02-01",
    "end_date": "2021-02-26",
    # Eight points: seven finish, the last is refused by the params contract (a buffer of at least 1).
    "grid": {"cash_buffer_ratio": [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.5]},
    "top_n": 2,
    "lookback_days": 10,
    "rank_by": "Net Profit",
}


@pytest.fixture
def sweep(dagbag: Any, chain_env: Path) -> dict[str, Any]:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("lean", slots=2, description="Lean runs", include_deferred=False)
    dag = dagbag.dags[SWEEP_DAG_ID]
    run = dag.test(run_conf=CONF)
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert all(states[("point.consistency_check", i)] == "success" for i in range(FINISHED)), states
    assert states[("point.snapshot", FINISHED)] == "failed", states
    plan = expand_sweep({**{key: dag.params[key] for key in dag.params}, **CONF})
    return {"root": chain_env, "plan": plan}


def test_the_sweep_comparison_renders_in_chromium(sweep: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is required: apt-get install chromium (.ci/test does it)"
    plan = sweep["plan"]
    keys = [point.run_key for point in plan.points]
    env = {"LEAN_AIRFLOW_ARTIFACT_ROOT": str(sweep["root"])}
    with running_stack(tmp_path / "airflow", dags_folder=REPO_ROOT / "dags", extra_env=env, scheduler=False) as stack:
        token = stack.token()
        url = f"{stack.url}/lean-airflow/sweeps/{plan.sweep_hash}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                # Without Airflow's login: refused, and nothing of the sweep is shown.
                anonymous = browser.new_context()
                page = anonymous.new_page()
                response = page.goto(url)
                assert response is not None and response.status == 401
                assert "comparison" not in page.content()
                anonymous.close()

                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_cookies([{"name": "_token", "value": token, "url": stack.url}])
                page = context.new_page()
                response = page.goto(url)
                assert response is not None and response.status == 200
                assert plan.sweep_hash in page.locator("h1").inner_text()

                # The table: one row per point, in point order; the refused point is marked, not dropped.
                table = page.locator("#comparison")
                assert table.is_visible()
                rows = table.locator("tbody tr")
                assert rows.count() == POINTS == len(keys)
                assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(POINTS)] == keys
                statuses = table.locator("[data-status]").evaluate_all("els => els.map(e => e.dataset.status)")
                assert statuses == ["ok"] * FINISHED + ["failed"]
                assert rows.nth(FINISHED).get_attribute("class") == "failed"
                background = rows.nth(FINISHED).evaluate("e => getComputedStyle(e.cells[0]).backgroundColor")
                assert background == "rgb(251, 224, 224)"
                headers = table.locator("thead th").all_inner_texts()
                assert {"cash_buffer_ratio", "status", "rank", "Net Profit", "Sharpe Ratio", "Total Fees"} <= set(
                    headers
                )
                failed_points = page.locator("#failed-points").inner_text()
                assert keys[FINISHED] in failed_points and "cash_buffer_ratio=1.5" in failed_points

                # The ranking: the finished points, by Net Profit, highest first (ties share a rank).
                ranking = page.locator("#ranking tbody tr")
                assert ranking.count() == FINISHED
                cells = [ranking.nth(i).locator("td").all_inner_texts() for i in range(FINISHED)]
                assert cells[0][0] == "1" and {c[1] for c in cells} == set(keys[:FINISHED])
                profits = [float(c[3].rstrip("%")) for c in cells]
                assert profits == sorted(profits, reverse=True), cells

                # The plot: an inline SVG laid out on the page, one bar per point, the failed one grey.
                plot = page.locator("svg#sweep-plot")
                box = plot.bounding_box()
                assert box is not None and box["width"] > 600 and box["height"] > 200
                bars = plot.locator("rect.bar")
                assert bars.count() == POINTS
                assert bars.nth(FINISHED).get_attribute("class") == "bar failed"
                assert all((bars.nth(i).bounding_box() or {}).get("height", 0) > 0 for i in range(POINTS))

                # A point links to its run's report page, which renders its verdict.
                best = ranking.nth(0).locator("a").get_attribute("href") or ""
                assert best in {f"/lean-airflow/runs/{SWEEP_DAG_ID}/{key}" for key in keys[:FINISHED]}, best
                response = page.goto(f"{stack.url}{best}")
                assert response is not None and response.status == 200, page.content()[-2000:]
                assert page.locator("#verdict-line [data-verdict]").get_attribute("data-verdict") in ("pass", "warn")

                # An unknown sweep: the plugin's 404 page.
                response = page.goto(f"{stack.url}/lean-airflow/sweeps/00000000")
                assert response is not None and response.status == 404
                context.close()
            finally:
                browser.close()
