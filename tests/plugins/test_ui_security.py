"""The plugin's refusal page echoes nothing the request chose, and every answer carries a
Content-Security-Policy (issue #17). Through FastAPI's TestClient: the 401 path needs no login."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from plugins.lean_airflow.ui import SECURITY_HEADERS, URL_PREFIX, app, login_link

PAYLOADS = [
    '/runs/x/"><img src=x onerror=alert(document.domain)>',
    "/runs/x/'><svg/onload=alert(1)>",
    "/runs/x/%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
    "/runs/lean_backtest_range/javascript:alert(1)",
    '/runs/a/b/report.json" onmouseover="alert(1)',
    "//evil.example/phish",
    "/runs/a/..%2f..%2fetc/passwd",
]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(app, root_path=URL_PREFIX)


@pytest.mark.parametrize("path", PAYLOADS)
def test_the_refusal_page_echoes_nothing_from_the_request(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"accept": "text/html"})
    assert response.status_code in (401, 404)  # a path no route matches is a plain 404
    body = response.text
    if response.status_code == 401:
        assert f'href="/auth/login?next={URL_PREFIX}/"' in body
    for marker in ("<img", "<svg", "<script", "onerror", "onload", "onmouseover", "javascript:", "evil.example"):
        assert marker not in body.lower(), (marker, body)
    assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none' forbids scripts


@pytest.mark.parametrize(
    "path",
    [
        f"{URL_PREFIX}/",
        f"{URL_PREFIX}/runs/lean_backtest_range/20210201_20210226",
        f"{URL_PREFIX}/runs/d/k/report.json",
    ],
)
def test_a_login_returns_to_our_own_routes(path: str) -> None:
    assert login_link(path) == f"/auth/login?next={path}"


def test_json_refusals_carry_the_headers_too(client: TestClient) -> None:
    response = client.get("/runs/x/y/report.json")
    assert response.status_code == 401
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
