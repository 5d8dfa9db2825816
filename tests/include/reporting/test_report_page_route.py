"""The plugin's run page takes the audit's filters and pages from its query string (issue #17):
valid values filter and page, bad ones fall back to the defaults with a notice, nothing is
echoed, and the page keeps its CSP. Through FastAPI's TestClient, Airflow's DAG authorisation
replaced by an allow-all (the security tests cover the refusals)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plugins.lean_airflow.ui import SECURITY_HEADERS, URL_PREFIX, ReadRun, app
from tests.include.audit.scenario import DAG_ID, RUN_KEY, make_run

PAGE = f"/runs/{DAG_ID}/{RUN_KEY}"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    make_run(tmp_path, "backtest")  # Lean's orders of a run not checked yet: SPY, AAPL, QQQ (rejected)
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    authorise = ReadRun.__metadata__[0].dependency
    app.dependency_overrides[authorise] = lambda: None
    try:
        yield TestClient(app, root_path=URL_PREFIX)
    finally:
        app.dependency_overrides.pop(authorise, None)


def _symbols(body: str) -> list[str]:
    table = body.split('<table id="audit">')[1].split("</table>")[0]
    return re.findall(r'<tr><td class="l">[0-9-]+</td><td class="l">([A-Z]+)</td>', table)


def test_the_default_page_and_its_filters(client: TestClient) -> None:
    response = client.get(PAGE)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert sorted(_symbols(response.text)) == ["AAPL", "QQQ", "SPY"]
    assert 'id="filter-rows"' in response.text and 'href="?rows=failed#audit-title"' in response.text
    failed = client.get(PAGE, params={"rows": "failed"}).text
    assert _symbols(failed) == ["QQQ"]  # the rejected order
    assert _symbols(client.get(PAGE, params={"symbol": "SPY"}).text) == ["SPY"]
    assert _symbols(client.get(PAGE, params={"from": "2030-01-01"}).text) == []


@pytest.mark.parametrize(
    "params",
    [
        {"rows": '"><script>alert(1)</script>'},
        {"symbol": "<img src=x onerror=alert(1)>"},
        {"from": "javascript:alert(1)", "to": "2021-99-99"},
        {"page": "<svg/onload=alert(1)>", "fpage": "-3"},
        {"symbol": "NOPE"},
    ],
)
def test_bad_query_values_fall_back_and_are_not_echoed(client: TestClient, params: dict[str, str]) -> None:
    response = client.get(PAGE, params=params)
    assert response.status_code == 200
    body = response.text
    for marker in ("<script", "<img", "<svg", "onerror", "onload", "javascript:", "NOPE", "99-99"):
        assert marker not in body, marker
    assert 'class="banner warn notice"' in body
    assert sorted(_symbols(body)) == ["AAPL", "QQQ", "SPY"]  # the default view
