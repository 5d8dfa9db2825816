"""The lean-airflow report pages: a FastAPI app served by Airflow's api-server.

Every route sits behind Airflow's own authentication (the UI's JWT cookie or a Bearer token)
and its DAG authorisation; the page content comes from ``include.reporting``.
"""

from __future__ import annotations

import json
from pathlib import Path
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


@app.exception_handler(HTTPException)
async def _refuse(request: Request, exc: HTTPException) -> Response:
    if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
        # the mounted app's request path already carries the mount prefix (Starlette puts root_path in it)
        path = request.url.path if request.url.path.startswith(URL_PREFIX) else URL_PREFIX + request.url.path
        login = f"/auth/login?next={path}"
        body = f'<!doctype html><p>{exc.status_code}: sign in to Airflow first. <a href="{login}">Log in</a></p>'
        return HTMLResponse(body, status_code=exc.status_code)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def _run_folder(dag_id: str, run_key: str) -> Path:
    try:
        folder = RunFolder.locate(RunRef(dag_id, run_key)).path
    except ArtifactPathError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    if not folder.is_dir():
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


@app.get("/runs/{dag_id}/{run_key}", response_class=HTMLResponse)
def run_page(dag_id: str, run_key: str, _: ReadRun) -> HTMLResponse:
    return HTMLResponse(render_run_page(load_run_view(_run_folder(dag_id, run_key))))


@app.get("/runs/{dag_id}/{run_key}/report.json")
def run_report(dag_id: str, run_key: str, _: ReadRun) -> Any:
    path = _run_folder(dag_id, run_key) / "report.json"
    if not path.exists():
        raise HTTPException(status_code=404, detail="this run has no consistency report yet")
    return JSONResponse(json.loads(path.read_text(encoding="utf-8")))
