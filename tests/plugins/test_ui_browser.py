"""The report pages in a real headless Chromium (Debian's package, driven by Playwright)
against ``airflow standalone``'s api-server, on a run produced by a real ``dag.test()``."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.airflow_stack import running_stack
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "test-screenshots"
RUN_KEY = "20210201_20210226"


@pytest.fixture
def finished_run(dagbag, lean_env: dict[str, str]) -> Path:  # type: ignore[no-untyped-def]
    run = dagbag.dags["lean_backtest_range"].test(
        run_conf={"start_date": "2021-02-01", "end_date": "2021-02-26", "top_n": 2, "lookback_days": 10}
    )
    assert str(run.state) == "success"
    return Path(lean_env["root"])


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_report_page_in_chromium(finished_run: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is required: apt-get install chromium (.ci/test does it)"
    env = {"LEAN_AIRFLOW_ARTIFACT_ROOT": str(finished_run)}
    with running_stack(tmp_path / "airflow", dags_folder=REPO_ROOT / "dags", extra_env=env, scheduler=False) as stack:
        page_url = f"{stack.url}/lean-airflow/runs/lean_backtest_range/{RUN_KEY}"
        # Unauthenticated: refused, with no run data in the answer.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(page_url, timeout=10)
        assert refused.value.code == 401
        assert "lean_backtest_range" not in refused.value.read().decode()

        token = stack.token()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                anonymous = browser.new_context()
                page = anonymous.new_page()
                response = page.goto(page_url)
                assert response is not None and response.status == 401
                assert "Log in" in page.content()
                # back to this very page after signing in (the mount prefix once, not twice)
                path = urllib.parse.urlsplit(page_url).path
                assert path.startswith("/lean-airflow/") and not path.startswith("/lean-airflow/lean-airflow")
                assert page.get_attribute("a", "href") == f"/auth/login?next={path}"
                # The reflected-XSS payload of issue #17: nothing of it reaches the page, no script runs.
                dialogs: list[str] = []
                page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
                payload = '/lean-airflow/runs/x/"><img src=x onerror=alert(document.domain)>'
                response = page.goto(stack.url + payload)
                assert response is not None and response.status == 401
                assert "default-src 'none'" in (response.headers.get("content-security-policy") or "")
                page.wait_for_timeout(500)
                assert dialogs == [] and page.locator("img").count() == 0
                assert page.get_attribute("a", "href") == "/auth/login?next=/lean-airflow/"
                anonymous.close()

                context = browser.new_context(viewport={"width": 1280, "height": 1600})
                context.add_cookies([{"name": "_token", "value": token, "url": stack.url}])
                page = context.new_page()
                response = page.goto(page_url)
                assert response is not None and response.status == 200
                assert page.locator("h1").inner_text().startswith("Lean run lean_backtest_range")
                # The first screen (issue #17): the verdict, the findings and Lean's key statistics.
                for selector in ("#verdict-line [data-verdict]", "#findings", "#key-statistics"):
                    box = page.locator(selector).bounding_box()
                    assert box is not None and box["y"] + box["height"] <= 900, (selector, box)
                assert page.locator("#key-statistics [data-statistic]").count() >= 7
                # The audit lists the rows that traded or failed, each with its verdict.
                assert page.locator("#audit tbody tr").count() > 0
                badges = page.locator("#audit [data-verdict]")
                verdicts = badges.evaluate_all("els => els.map(e => e.dataset.verdict)")
                assert set(verdicts) <= {"pass", "warn", "fail"} and verdicts
                assert page.locator("#weights-chart rect.bar-target").count() > 0
                assert page.locator("#equity-chart polyline.equity").count() == 1
                box = page.locator("#equity-chart").bounding_box()
                assert box is not None and box["width"] > 100
                assert page.locator("#drawdown-chart polygon").count() == 1
                assert page.locator("#monthly-returns tbody tr").count() >= 1
                assert page.locator("#manifest tbody tr").count() >= 4
                # Filters are links (the CSP allows no script and no form): all rows, then one symbol.
                page.locator("#filter-rows a", has_text="all rows").click()
                all_rows = page.locator("#audit tbody tr").count()
                assert "rows=all" in page.url and all_rows >= page.locator("#audit [data-verdict]").count() > 0
                page.locator("#filter-symbol a").first.click()
                symbols = page.locator("#audit tbody tr td:nth-child(2)").all_inner_texts()
                assert "symbol=" in page.url and len(set(symbols)) == 1
                page.goto(page_url)
                SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT_DIR / "report-page.png"), full_page=True)

                runs = context.new_page()
                runs.goto(f"{stack.url}/lean-airflow/")
                assert runs.locator("#runs tbody tr").count() >= 1

                # A re-run that changed the params and stopped: the page shows STALE in red, no verdict.
                params = finished_run / "lean_backtest_range" / RUN_KEY / f"execution_params_run_{RUN_KEY}.json"
                params.write_text(params.read_text() + "\n")  # any change of its bytes
                page.goto(page_url)
                banner = page.locator("#freshness")
                assert (
                    banner.get_attribute("data-state") == "stale"
                    and "changed since the manifest" in banner.inner_text()
                )
                assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(251, 224, 224)"
                badges = page.locator("[data-verdict]").evaluate_all("els => els.map(e => e.dataset.verdict)")
                assert badges == ["stale"]
                runs.goto(f"{stack.url}/lean-airflow/")
                assert "stale" in runs.locator("#runs tbody").inner_text()
                context.close()
            finally:
                browser.close()
