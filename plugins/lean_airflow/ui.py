"""The lean-airflow report pages: a FastAPI app served by Airflow's api-server.

Every route sits behind Airflow's own authentication (the UI's JWT cookie or a Bearer token)
and its DAG authorisation, team-aware as Airflow's own routes are; the page content comes from
``include.reporting``. ``/dag-runs/{dag_id}/{run_id}`` is the "Lean report" tab of Airflow's DAG
run page (an ``external_views`` entry with ``destination: "dag_run"``, embedded by the UI in an
iframe): it finds the run key the Airflow run recorded and opens that run's page.

The pages read run folders where the workers wrote them: the local artifact root in the embedded default;
with an artifact store (``LEAN_AIRFLOW_ARTIFACT_STORE``), a cache under the local artifact root
(``.ui-cache/``) that each page refreshes from the store first (the runs list: the top-level files of every
run; a run's page: its whole folder; only what changed is fetched).
"""

from __future__ import annotations

import html
import http
import json
import re
import urllib.parse
from collections import defaultdict
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated, Any, Literal

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.errors import ArtifactPathError, RunFolderError
from include.reporting.html import render_run_page, render_runs_list
from include.reporting.pages import render_message_page
from include.reporting.run_view import list_runs, load_run_view
from include.run_folder import RunFolder, RunRef, artifact_root, check_dag_id, check_run_key

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from sqlalchemy.orm import Session

    from include.artifact_store import ArtifactStore

URL_PREFIX = "/lean-airflow"
# With an artifact store, the run folders the pages read are mirrored here, under the local artifact root.
UI_CACHE_DIR = ".ui-cache"

app = FastAPI(title="lean-airflow reports", docs_url=None, redoc_url=None, openapi_url=None)


# Plugin pages are static HTML with inline styles and SVG: no script, no frame, no form, nothing
# fetched. Even if some text escaped escaping, the browser would run none of it. Only a page of the
# same origin may frame them: Airflow's UI, whose DAG run page shows the "Lean report" tab in an iframe.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# The only pages a login may return to: this app's own routes, with ids that check_dag_id and
# check_run_key accept (and Airflow run ids of its default [scheduler] allowed_run_id_pattern).
# Anything else (a payload in the path) sends the user to the runs list. Always used with fullmatch.
_RETURN_PATH = re.compile(
    re.escape(URL_PREFIX)
    + r"(?:/|/runs/[A-Za-z0-9_.\-]{1,250}(?:/[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}(?:/report\.json)?)?"
    + r"|/dag-runs/[A-Za-z0-9_.\-]{1,250}/[A-Za-z0-9_.~:+\-]{1,250})?"
)
# What the HTML error pages say: fixed texts, never the request's path or the exception's detail
# (which may quote a refused id); API clients get the detail as JSON.
_PAGE_TEXT = {
    401: ("Sign in to Airflow first", "These Lean run reports are shown to signed-in Airflow users only."),
    403: (
        "You may not read these runs",
        "Your Airflow user is not allowed to read the runs of this DAG (for its team, in a multi-team "
        "Airflow). Ask an Airflow admin for access, or sign in as another user.",
    ),
    404: (
        "Not found",
        "There is no such page, DAG or run here. A run has a page once its first task has written its run folder.",
    ),
}


@app.middleware("http")
async def _security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def _login_href(request_path: str) -> str:
    # the mounted app's request path already carries the mount prefix (Starlette puts root_path in it)
    path = request_path if request_path.startswith(URL_PREFIX) else URL_PREFIX + request_path
    if not _RETURN_PATH.fullmatch(path) or ".." in path:
        path = URL_PREFIX + "/"
    return "/auth/login?next=" + urllib.parse.quote(path, safe="/")


def login_link(request_path: str) -> str:
    """The login URL that returns to ``request_path`` when it is one of our routes, else to the runs list.

    The refusal page echoes nothing the request chose: an unknown path is replaced, a known one is
    made only of id characters, and the whole link is still URL-quoted and HTML-escaped.
    """
    return html.escape(_login_href(request_path), quote=True)


def error_page(status_code: int, request_path: str) -> str:
    """The HTML page of an HTTP error: a fixed text per status, a way back to the runs list and,
    when signing in may help (401, 403), the login link. Nothing of the request is shown."""
    try:
        phrase = http.HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    heading, text = _PAGE_TEXT.get(status_code, (phrase, "The request could not be served."))
    links = [(URL_PREFIX + "/", "All Lean runs")]
    if status_code in (401, 403):
        links.insert(0 if status_code == 401 else 1, (_login_href(request_path), "Log in"))
    return render_message_page(
        code=f"{status_code} {phrase}",
        heading=heading,
        paragraphs=[text],
        links=links,
        tone="warn" if status_code in (401, 403) else "error" if status_code >= 500 else "info",
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


# Starlette's class: FastAPI's HTTPException subclasses it, and the router raises it for a path no
# route matches (404) or a wrong method (405).
@app.exception_handler(StarletteHTTPException)
async def _refuse(request: Request, exc: StarletteHTTPException) -> Response:
    headers = {**(exc.headers or {}), **SECURITY_HEADERS}
    if _wants_html(request):
        return HTMLResponse(error_page(exc.status_code, request.url.path), status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _store() -> ArtifactStore:
    from lean_airflow.operators import artifact_store

    return artifact_store()


def ui_cache_root() -> Path:
    return artifact_root() / UI_CACHE_DIR


def runs_root(dag_ids: set[str] | None = None) -> Path:
    """Where the runs list reads run folders: the artifact root itself in the embedded default; with a store,
    the UI cache, refreshed first with the top-level files of every run (of ``dag_ids``, else of all DAGs)."""
    store = _store()
    if store.in_place:
        return artifact_root()
    cache = ui_cache_root()
    store.cache_run_summaries(cache, dag_ids)
    return cache


def _run_folder(dag_id: str, run_key: str) -> RunFolder:
    """A run's folder to render: in place, the run folder itself; with a store, its mirror in the UI cache."""
    try:
        ref = RunRef(dag_id, run_key)
        store = _store()
        if store.in_place:
            folder: RunFolder | None = RunFolder.locate(ref)
        else:
            folder = store.cache_run(ref, ui_cache_root())
    except ArtifactPathError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    if folder is None or not folder.path.is_dir():
        raise HTTPException(status_code=404, detail=f"no run folder for {dag_id}/{run_key}")
    return folder


def _run_exists(ref: RunRef) -> bool:
    store = _store()
    if store.in_place:
        return RunFolder.locate(ref).path.is_dir()
    return store.run_exists(ref)


def readable_dag_ids(dag_ids: set[str], *, user: BaseUser, session: Session) -> set[str]:
    """The DAGs among ``dag_ids`` whose runs ``user`` may read, each authorised with its team.

    As Airflow's own routes do: the team of each DAG is its bundle's (``DagModel``'s mapping, the
    lookup ``requires_access_dag`` makes for one DAG); the DAGs of one team go through the auth
    manager's batch filter ``filter_authorized_dag_ids`` (what ``get_authorized_dag_ids`` feeds Airflow's
    list routes), then each through the exact check of this app's single-run routes
    (``is_authorized_dag`` GET on the DAG's runs, with its team). Outside multi-team mode no bundle
    has a team and the team is None, as in Airflow.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    if not dag_ids:
        return set()
    manager = get_auth_manager()
    team_of = DagModel.get_dag_id_to_team_name_mapping(sorted(dag_ids), session=session)
    by_team: dict[str | None, set[str]] = defaultdict(set)
    for dag_id in dag_ids:
        by_team[team_of.get(dag_id)].add(dag_id)
    readable: set[str] = set()
    for team_name, team_dag_ids in by_team.items():
        for dag_id in manager.filter_authorized_dag_ids(
            dag_ids=team_dag_ids, user=user, method="GET", team_name=team_name
        ):
            if manager.is_authorized_dag(
                method="GET",
                access_entity=DagAccessEntity.RUN,
                details=DagDetails(id=dag_id, team_name=team_name),
                user=user,
            ):
                readable.add(dag_id)
    return readable


@app.get("/", response_class=HTMLResponse)
def runs_page(user: GetUserDep, session: SessionDep) -> HTMLResponse:
    """Every run of the DAGs whose runs the user may read (team-scoped in a multi-team Airflow)."""
    runs = list_runs(runs_root())
    readable = readable_dag_ids({r["dag_id"] for r in runs}, user=user, session=session)
    return HTMLResponse(render_runs_list([r for r in runs if r["dag_id"] in readable], link_prefix=URL_PREFIX))


ReadRun = Annotated[None, Depends(requires_access_dag("GET", DagAccessEntity.RUN))]


@app.get("/runs/{dag_id}", response_class=HTMLResponse)
def dag_runs_page(dag_id: str, _: ReadRun) -> HTMLResponse:
    """The runs of one DAG (where a report link points before its run has a run folder).

    ``ReadRun`` is Airflow's ``requires_access_dag``: it authorises this DAG with its team.
    """
    runs = [r for r in list_runs(runs_root({dag_id})) if r["dag_id"] == dag_id]
    return HTMLResponse(render_runs_list(runs, link_prefix=URL_PREFIX))


@app.get("/runs/{dag_id}/{run_key}", response_class=HTMLResponse)
def run_page(dag_id: str, run_key: str, request: Request, _: ReadRun) -> HTMLResponse:
    from include.reporting.audit_table import AuditQuery

    # The audit's filters and pages (rows, symbol, from, to, page, fpage): each value is accepted
    # only in its exact form, else its default with a fixed notice; the page never repeats it.
    query = AuditQuery.parse(request.query_params)
    try:
        view = load_run_view(_run_folder(dag_id, run_key))
        return HTMLResponse(render_run_page(view, query, interactive=True))
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


# ---------------------------------------------------------------- the "Lean report" tab of a DAG run

# The chain's tasks that return the run folder's paths (``dag_factory``): ``snapshot`` first, the
# task that creates the folder, then the later ones (their XCom outlives a re-run of ``snapshot``).
RUN_DIR_TASKS = ("snapshot", "write_intent", "write_params", "ingest_events", "consistency_check")
_MANIFEST_MAX_BYTES = 1 << 20
# A mount's root path, e.g. "/lean-airflow" or "/airflow/lean-airflow" behind [api] base_url's sub-path.
_ROOT_PATH = re.compile(r"(?:/[A-Za-z0-9_.\-]+)+")


def _app_root(request: Request) -> str:
    """This app's URL prefix: its mount's root path (set by the server, never by the request), else ``URL_PREFIX``."""
    root = str(request.scope.get("root_path") or "")
    if root.endswith(URL_PREFIX) and _ROOT_PATH.fullmatch(root) and "/.." not in root:
        return root
    return URL_PREFIX


def _run_key_of_folder_path(dag_id: str, run_dir: object) -> str | None:
    """The run key of a recorded run folder path ``<artifact root>/<dag_id>/<run key>``.

    Only its last two parts count: the api-server may see the artifact root at another path than
    the workers do."""
    if not isinstance(run_dir, str):
        return None
    path = PurePath(run_dir)
    if path.parent.name != dag_id:
        return None
    try:
        return check_run_key(path.name)
    except ArtifactPathError:
        return None


def recorded_run_key(session: Session, dag_id: str, run_id: str) -> str | None:
    """The run key an Airflow run recorded: the run folder its tasks returned (their XCom), read
    from Airflow's metadata DB as Airflow's XCom route does (no XCom backend involved)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.execute(
        select(XComModel.task_id, XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.key == "return_value",
            XComModel.map_index == -1,
            XComModel.task_id.in_(RUN_DIR_TASKS),
        )
    ).all()
    values = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    for task_id in RUN_DIR_TASKS:
        value = values.get(task_id)
        run_key = _run_key_of_folder_path(dag_id, value.get("run_dir")) if isinstance(value, dict) else None
        if run_key is not None:
            return run_key
    return None


def manifest_run_key(dag_id: str, run_id: str) -> str | None:
    """The run key whose ``manifest.json`` names this Airflow run (``ingest_events`` writes its ids
    there): for a run whose XCom is gone (cleared for a re-run, or removed by ``airflow db clean``)."""
    root = runs_root({check_dag_id(dag_id)})
    dag_dir = root / dag_id
    if not dag_dir.is_dir():
        return None
    for path in sorted((p for p in dag_dir.iterdir() if p.is_dir()), reverse=True):
        try:
            folder = RunFolder.open(path, root=root)
            if not folder.manifest_path.is_file():
                continue
            manifest = folder.inside(folder.manifest_path)
            if manifest.stat().st_size > _MANIFEST_MAX_BYTES:
                continue
            content = json.loads(manifest.read_bytes())
        except (ArtifactPathError, RunFolderError, OSError, ValueError):
            continue
        ids = content.get("airflow") if isinstance(content, dict) else None
        if isinstance(ids, dict) and ids.get("dag_id") == dag_id and ids.get("run_id") == run_id:
            return folder.run_key
    return None


def not_produced_page(
    *, dag_id: str, run_id: str, state: str, recorded_key: str | None, app_root: str = URL_PREFIX
) -> str:
    """The tab of an Airflow run that has no run folder here (yet)."""
    facts = [("DAG", dag_id), ("Airflow run", run_id), ("Run state", state)]
    tone: Literal["info", "warn"] = "info"
    if recorded_key is not None:
        facts.append(("Run folder", f"{dag_id}/{recorded_key}"))
        text = (
            "The run recorded its run folder, but this server does not find it: the api-server must read "
            "the workers' artifact store (the same LEAN_AIRFLOW_ARTIFACT_STORE and LEAN_AIRFLOW_ARTIFACT_CONN_ID), "
            "or without a store, see their LEAN_AIRFLOW_ARTIFACT_ROOT (the same volume)."
        )
        tone = "warn"
    elif state in ("queued", "running", "restarting", "up_for_retry"):
        text = (
            "The run's first task (snapshot) writes its run folder; the report appears here once the "
            "run has one. Reload this tab later."
        )
    elif state == "failed":
        text = (
            "The run ended before its snapshot task wrote a run folder. That task's log says why "
            "(a form the run's Params refuse fails there, naming what to fix)."
        )
        tone = "warn"
    else:
        text = "This run recorded no Lean run folder: only the runs of lean-airflow DAGs have a report."
    return render_message_page(
        code="No report yet",
        heading="This run has not produced a Lean report yet",
        paragraphs=[text],
        facts=facts,
        links=[
            (f"{app_root}/runs/{urllib.parse.quote(dag_id)}", "This DAG's Lean runs"),
            (f"{app_root}/", "All Lean runs"),
        ],
        tone=tone,
    )


@app.get("/dag-runs/{dag_id}/{run_id:path}", response_class=HTMLResponse)
def dag_run_tab(dag_id: str, run_id: str, request: Request, session: SessionDep, _: ReadRun) -> Response:
    """An Airflow DAG run's "Lean report" tab: a redirect to its run's page, found from the run key
    the run recorded (its tasks' XCom, else a run folder's manifest), or a "not produced yet" page."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    try:
        check_dag_id(dag_id)
    except ArtifactPathError:
        raise HTTPException(status_code=404, detail="not a DAG id") from None
    found = session.execute(
        select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id).limit(1)
    ).first()
    if found is None:
        raise HTTPException(status_code=404, detail="no such Airflow DAG run")
    state = str(getattr(found.state, "value", found.state) or "none")
    recorded = recorded_run_key(session, dag_id, run_id)
    run_key = recorded or manifest_run_key(dag_id, run_id)
    root = _app_root(request)
    if run_key is not None:
        try:
            exists = _run_exists(RunRef(dag_id, run_key))
        except ArtifactPathError:
            exists = False
        if exists:
            target = f"{root}/runs/{urllib.parse.quote(dag_id)}/{urllib.parse.quote(run_key)}"
            return RedirectResponse(target, status_code=303)
    return HTMLResponse(
        not_produced_page(dag_id=dag_id, run_id=run_id, state=state, recorded_key=recorded, app_root=root)
    )
