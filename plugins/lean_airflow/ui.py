"""The lean-airflow report pages: a FastAPI app served by Airflow's api-server.

Every route sits behind Airflow's own authentication (the UI's JWT cookie or a Bearer token)
and its DAG authorisation; the page content comes from ``include.reporting``.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from include.errors import ArtifactPathError
from include.reporting.html import render_run_page, render_runs_list
from include.reporting.run_view import list_runs, load_run_view
from include.run_folder import RunFolder, RunRef, artifact_root

URL_PREFIX = "/lean-airflow"

app = FastAPI(title="lean-airflow reports", docs_url=None, redoc_url=None, openapi_url=None)


# Plugin pages are static HTML with inline styles and SVG: no script, no frame, no form, nothing
# fetched. Even if some text escaped escaping, the browser would run none of it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# The only pages a login may return to: this app's own routes, with ids that check_dag_id and
# check_run_key accept. Anything else (a payload in the path) sends the user to the runs list.
_RETURN_PATH = re.compile(
    re.escape(URL_PREFIX)
    + r"(?:/|/runs/[A-Za-z0-9_.\-]{1,250}(?:/[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}(?:/report\.json)?)?)?"
)


@app.middleware("http")
async def _security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def login_link(request_path: str) -> str:
    """The login URL that returns to ``request_path`` when it is one of our routes, else to the runs list.

    The refusal page echoes nothing the request chose: an unknown path is replaced, a known one is
    made only of id characters, and the whole link is still URL-quoted and HTML-escaped.
    """
    # the mounted app's request path already carries the mount prefix (Starlette puts root_path in it)
    path = request_path if request_path.startswith(URL_PREFIX) else URL_PREFIX + request_path
    if not _RETURN_PATH.fullmatch(path) or ".." in path:
        path = URL_PREFIX + "/"
    return html.escape("/auth/login?next=" + urllib.parse.quote(path, safe="/"), quote=True)


@app.exception_handler(HTTPException)
async def _refuse(request: Request, exc: HTTPException) -> Response:
    if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
        body = (
            f"<!doctype html><p>{exc.status_code}: sign in to Airflow first. "
            f'<a href="{login_link(request.url.path)}">Log in</a></p>'
        )
        return HTMLResponse(body, status_code=exc.status_code, headers=SECURITY_HEADERS)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=SECURITY_HEADERS)


def _run_folder(dag_id: str, run_key: str) -> RunFolder:
    try:
        folder = RunFolder.locate(RunRef(dag_id, run_key))
    except ArtifactPathError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    if not folder.path.is_dir():
        raise HTTPException(status_code=404, detail=f"no run folder for {dag_id}/{run_key}")
    return folder


@app.get("/", response_class=HTMLResponse)
def runs_page(user: GetUserDep) -> HTMLResponse:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    manager = get_auth_manager()
    runs = [
        r
        for r in list_runs(artifact_root())
        if manager.is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=r["dag_id"]), user=user
        )
    ]
    return HTMLResponse(render_runs_list(runs, link_prefix=URL_PREFIX))


ReadRun = Annotated[None, Depends(requires_access_dag("GET", DagAccessEntity.RUN))]


@app.get("/runs/{dag_id}", response_class=HTMLResponse)
def dag_runs_page(dag_id: str, _: ReadRun) -> HTMLResponse:
    """The runs of one DAG (where a report link points before its run has a run folder)."""
    runs = [r for r in list_runs(artifact_root()) if r["dag_id"] == dag_id]
    return HTMLResponse(render_runs_list(runs, link_prefix=URL_PREFIX))


@app.get("/runs/{dag_id}/{run_key}", response_class=HTMLResponse)
def run_page(dag_id: str, run_key: str, _: ReadRun) -> HTMLResponse:
    try:
        return HTMLResponse(render_run_page(load_run_view(_run_folder(dag_id, run_key))))
    except ArtifactPathError:  # a file of the run is a symlink out of its folder: show none of it
        raise HTTPException(status_code=404, detail="a file of this run leaves its run folder") from None


@app.get("/runs/{dag_id}/{run_key}/report.json")
def run_report(dag_id: str, run_key: str, _: ReadRun) -> Any:
    folder = _run_folder(dag_id, run_key)
    if not folder.report_json_path.exists():
        raise HTTPException(status_code=404, detail="this run has no consistency report yet")
    try:
        path = folder.inside(folder.report_json_path)
    except ArtifactPathError:
        raise HTTPException(status_code=404, detail="the report leaves its run folder") from None
    return JSONResponse(json.loads(path.read_text(encoding="utf-8")))
