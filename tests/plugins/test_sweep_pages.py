"""The sweep comparison route (``/lean-airflow/sweeps/<hash>``) through FastAPI's TestClient, with Airflow's
real metadata DB and its ``SimpleAuthManager``; only the signed-in user is given (``get_user`` overridden).
A sweep's files are written by ``include.sweep`` (no Lean run needed: its points are marked as never run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

from include.sweep import compare_sweep, expand_sweep, write_sweep_files
from plugins.lean_airflow.ui import SECURITY_HEADERS, URL_PREFIX, app

ADMIN = SimpleAuthManagerUser(username="admin", role="admin")
NOBODY = SimpleAuthManagerUser(username="nobody", role=None)
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    """The routes as the plugin registers them on the reports app."""
    from lean_airflow.sweep_pages import register

    register(app)
    register(app)  # idempotent: a reloaded plugin adds no second copy
    assert sum(1 for r in app.routes if getattr(r, "path", "") == "/sweeps/{sweep_hash}") == 1


@pytest.fixture
def sweep_hash(chain_env: Path) -> str:
    plan = expand_sweep({"start_date": "2021-02-01", "end_date": "2021-02-26", "grid": {"top_n": [1, 2]}})
    write_sweep_files(plan, compare_sweep(plan, failed_tasks={1: "run_lean"}))
    return plan.sweep_hash


@pytest.fixture
def as_user(airflow_db: None) -> Iterator[Any]:
    from airflow.api_fastapi.core_api.security import get_user

    def sign_in(user: SimpleAuthManagerUser | None) -> TestClient:
        if user is not None:
            app.dependency_overrides[get_user] = lambda: user
        return TestClient(app, root_path=URL_PREFIX, follow_redirects=False)

    yield sign_in
    app.dependency_overrides.clear()


def test_the_page_shows_the_comparison(sweep_hash: str, as_user: Any) -> None:
    response = as_user(ADMIN).get(f"/sweeps/{sweep_hash}", headers=HTML)
    assert response.status_code == 200, response.text
    body = response.text
    assert f"Lean sweep <code>{sweep_hash}</code>" in body
    assert 'id="comparison"' in body and 'id="sweep-plot"' in body and 'id="ranking"' in body
    assert body.count('data-status="failed"') == 2 and "failed at run_lean" in body
    # the points link to their run pages under this app's prefix
    assert f'href="{URL_PREFIX}/runs/lean_backtest_sweep/20210201_20210226_{sweep_hash}_p00"' in body
    assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    data = as_user(ADMIN).get(f"/sweeps/{sweep_hash}/comparison.json").json()
    assert data["sweep_hash"] == sweep_hash and [r["status"] for r in data["rows"]] == ["failed", "failed"]


def test_signed_out_or_without_access_is_refused(sweep_hash: str, as_user: Any) -> None:
    response = as_user(None).get(f"/sweeps/{sweep_hash}", headers=HTML)
    assert response.status_code == 401 and "comparison" not in response.text
    response = as_user(NOBODY).get(f"/sweeps/{sweep_hash}", headers=HTML)
    assert response.status_code == 403 and sweep_hash not in response.text


@pytest.mark.parametrize("path", ["/sweeps/0123abcd", "/sweeps/../../etc", "/sweeps/ABCDEF01", "/sweeps/123"])
def test_an_unknown_or_malformed_sweep_is_not_found(chain_env: Path, as_user: Any, path: str) -> None:
    response = as_user(ADMIN).get(path, headers=HTML)
    assert response.status_code == 404
    assert "etc" not in response.text
