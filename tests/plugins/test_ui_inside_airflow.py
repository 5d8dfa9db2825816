"""The report inside Airflow (issue #17): the "Lean report" tab of a DAG run, the HTML refusal and
not-found pages, and the runs list scoped to what the user's team may read.

The routes run through FastAPI's TestClient against Airflow's real metadata DB (SQLite) and its real
``SimpleAuthManager`` (users with roles and teams, multi-team mode on); only the signed-in user is
given (``get_user`` overridden), as a JWT cookie would give it.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

from plugins.lean_airflow.ui import SECURITY_HEADERS, URL_PREFIX, app, not_produced_page

ALPHA, BETA, SHARED = "t17_alpha_dag", "t17_beta_dag", "t17_shared_dag"
TEAM_OF = {ALPHA: "t17_alpha", BETA: "t17_beta", SHARED: None}
RUN_ID = "manual__2021-02-01T00:00:00+00:00"
ADMIN = SimpleAuthManagerUser(username="admin", role="admin")
ALICE = SimpleAuthManagerUser(username="alice", role="viewer", teams=["t17_alpha"])
NOBODY = SimpleAuthManagerUser(username="nobody", role=None)
HTML = {"accept": "text/html,application/xhtml+xml"}


class RecordingAuthManager(SimpleAuthManager):
    """Airflow's SimpleAuthManager, recording the authorisation calls the plugin makes."""

    def __init__(self) -> None:
        super().__init__()
        self.filter_calls: list[tuple[frozenset[str], str | None]] = []
        self.dag_calls: list[tuple[str, DagAccessEntity | None, DagDetails | None]] = []

    def filter_authorized_dag_ids(
        self, *, dag_ids: set[str], user: Any, method: Any = "GET", team_name: Any = None
    ) -> set[str]:
        self.filter_calls.append((frozenset(dag_ids), team_name))
        return super().filter_authorized_dag_ids(dag_ids=dag_ids, user=user, method=method, team_name=team_name)

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        self.dag_calls.append((method, access_entity, details))
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)


@pytest.fixture
def manager(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> RecordingAuthManager:
    from airflow.api_fastapi import app as airflow_app

    monkeypatch.setenv("AIRFLOW__CORE__MULTI_TEAM", "True")
    am = RecordingAuthManager()
    monkeypatch.setattr(airflow_app._AuthManagerState, "instance", am)
    return am


@pytest.fixture
def teams(airflow_db: None) -> Iterator[None]:
    """Two teams, each owning a DAG bundle with one DAG, and a DAG of a bundle without a team."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.team import Team
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        for dag_id, team_name in TEAM_OF.items():
            bundle = DagBundleModel(name=f"{dag_id}_bundle")
            if team_name:
                team = Team(name=team_name)
                session.add(team)
                bundle.teams.append(team)
            session.add(bundle)
            session.flush()
            session.add(DagModel(dag_id=dag_id, bundle_name=bundle.name, fileloc=f"/dags/{dag_id}.py"))
    yield
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel

    with create_session() as session:
        for model in (XComModel, TaskInstance, DagRun, DagModel):
            session.execute(delete(model).where(model.dag_id.in_(TEAM_OF)))
        session.execute(delete(DagBundleModel).where(DagBundleModel.name.in_([f"{d}_bundle" for d in TEAM_OF])))
        session.execute(delete(Team).where(Team.name.in_([t for t in TEAM_OF.values() if t])))


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An artifact root with one run folder for each DAG (run key 20210201)."""
    base = tmp_path / "artifacts"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(base))
    for dag_id in TEAM_OF:
        folder = base / dag_id / "20210201"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    return base


@pytest.fixture
def as_user() -> Iterator[Any]:
    from airflow.api_fastapi.core_api.security import get_user

    def sign_in(user: SimpleAuthManagerUser) -> TestClient:
        app.dependency_overrides[get_user] = lambda: user
        return TestClient(app, root_path=URL_PREFIX, follow_redirects=False)

    yield sign_in
    app.dependency_overrides.clear()


def _add_run(dag_id: str, *, state: str = "running", run_dirs: dict[str, str] | None = None) -> None:
    """An Airflow DAG run and, for each ``task_id -> run_dir``, that task's return value (its XCom)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert

    with create_session() as session:
        run = DagRun(
            dag_id=dag_id,
            run_id=RUN_ID,
            run_type="manual",
            state=state,  # type: ignore[arg-type]
            run_after=dt.datetime(2021, 2, 2, tzinfo=dt.UTC),
        )
        session.add(run)
        session.flush()
        for task_id, run_dir in (run_dirs or {}).items():
            # the task instance row an XCom belongs to (its foreign key), as a finished task leaves it
            session.execute(
                insert(TaskInstance.__table__).values(
                    dag_id=dag_id, task_id=task_id, run_id=RUN_ID, pool="default_pool", state="success"
                )
            )
            XComModel.set(
                "return_value",
                {"run_dir": run_dir, "snapshots": f"{run_dir}/x.jsonl"},
                dag_id=dag_id,
                task_id=task_id,
                run_id=RUN_ID,
                session=session,
            )


def _tab(dag_id: str, run_id: str = RUN_ID) -> str:
    # the UI puts encodeURIComponent(dag_id) and encodeURIComponent(run_id) into the href
    return f"/dag-runs/{urllib.parse.quote(dag_id, safe='')}/{urllib.parse.quote(run_id, safe='')}"


# ------------------------------------------------------------------ the plugin's tab declaration


def test_the_plugin_declares_the_nav_entry_and_a_dag_run_tab() -> None:
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse
    from lean_airflow_plugin import REPORT_TAB_ROUTE, LeanAirflowPlugin

    views = [ExternalViewResponse.model_validate(v) for v in LeanAirflowPlugin.external_views]
    nav, tab = views
    assert (nav.name, nav.href, nav.destination, nav.category) == ("Lean runs", "/lean-airflow/", "nav", "browse")
    # The UI lists a plugin's dag_run views that have a url_route as tabs, and frames href with the
    # placeholders replaced.
    assert tab.destination == "dag_run"
    assert tab.url_route == REPORT_TAB_ROUTE
    assert tab.href == f"{URL_PREFIX}/dag-runs/{{DAG_ID}}/{{RUN_ID}}"


def test_airflow_serves_the_tab_to_its_ui() -> None:
    """Through Airflow's plugin manager and the /plugins API's response model, as the UI gets it."""
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse

    info = {p["name"]: p for p in plugins_manager.get_plugin_info()}
    response = PluginResponse.model_validate(info["lean_airflow"])
    tabs = [v for v in response.external_views if v.destination == "dag_run"]
    assert [(v.url_route, v.href) for v in tabs] == [("lean-report", "/lean-airflow/dag-runs/{DAG_ID}/{RUN_ID}")]
    # a url_route no other plugin takes: the UI routes /dags/<dag>/runs/<run>/plugin/lean-report to it
    external_views, _ = plugins_manager._get_ui_plugins()
    assert [v["url_route"] for v in external_views].count("lean-report") == 1


def test_the_tab_follows_airflows_sub_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from lean_airflow_plugin import _external_views

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://example.org/airflow/")
    assert _external_views()[1]["href"] == "/airflow/lean-airflow/dag-runs/{DAG_ID}/{RUN_ID}"


def test_the_ui_may_frame_the_pages_and_nothing_else_may() -> None:
    assert "frame-ancestors 'self'" in SECURITY_HEADERS["Content-Security-Policy"]


# ------------------------------------------------------------------ HTML refusal and not-found pages


def _assert_plain_page(body: str) -> None:
    assert body.startswith("<!doctype html>")
    assert "<style>" in body
    for marker in ("<script", "<iframe", "<form", "<img", "javascript:", "onerror", "onload"):
        assert marker not in body.lower(), marker


def test_a_browser_gets_an_html_401_page_with_the_login_link() -> None:
    response = TestClient(app, root_path=URL_PREFIX).get("/runs/x/y", headers=HTML)
    assert response.status_code == 401
    _assert_plain_page(response.text)
    assert "Sign in to Airflow first" in response.text
    assert 'href="/auth/login?next=/lean-airflow/runs/x/y"' in response.text
    assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/nothing-here", '/nothing"><script>alert(1)</script>', "/runs"])
def test_a_browser_gets_an_html_404_page_that_echoes_nothing(path: str) -> None:
    response = TestClient(app, root_path=URL_PREFIX).get(path, headers=HTML)
    assert response.status_code == 404
    _assert_plain_page(response.text)
    assert "Not found" in response.text
    assert 'href="/lean-airflow/"' in response.text
    assert "nothing" not in response.text and "alert" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_api_clients_still_get_json() -> None:
    client = TestClient(app, root_path=URL_PREFIX)
    missing = client.get("/nothing-here", headers={"accept": "application/json"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    refused = client.get("/runs/x/y/report.json")
    assert refused.status_code == 401 and refused.json() == {"detail": "Not authenticated"}
    wrong_method = client.post("/")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"


def test_a_user_without_access_gets_an_html_403_page(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    response = as_user(ALICE).get(f"/runs/{BETA}", headers=HTML)
    assert response.status_code == 403
    _assert_plain_page(response.text)
    assert "You may not read these runs" in response.text
    # the DAG id only in the login link's return path (id characters only, as for the 401 page)
    assert response.text.count(BETA) == 1
    assert f'href="/auth/login?next=/lean-airflow/runs/{BETA}"' in response.text
    assert 'href="/lean-airflow/"' in response.text


# ------------------------------------------------------------------ team scoping of the runs lists


def test_the_runs_list_shows_only_the_dags_of_the_users_team(
    manager: RecordingAuthManager, teams: None, root: Path, as_user: Any
) -> None:
    page = as_user(ALICE).get("/", headers=HTML)
    assert page.status_code == 200
    assert f"/runs/{ALPHA}/20210201" in page.text
    assert f"/runs/{SHARED}/20210201" in page.text  # a bundle without a team: any reader
    assert BETA not in page.text
    # Airflow's batch filter once per team, with the team; then each DAG's runs, with its team.
    assert sorted(manager.filter_calls, key=str) == sorted(
        [(frozenset({ALPHA}), "t17_alpha"), (frozenset({BETA}), "t17_beta"), (frozenset({SHARED}), None)], key=str
    )
    run_checks = {(d.id, d.team_name) for m, e, d in manager.dag_calls if e == DagAccessEntity.RUN and d}
    assert run_checks == {(ALPHA, "t17_alpha"), (SHARED, None)}
    assert all(m == "GET" for m, _, _ in manager.dag_calls)

    everything = as_user(ADMIN).get("/", headers=HTML).text
    assert all(f"/runs/{dag_id}/20210201" in everything for dag_id in TEAM_OF)
    assert "/runs/" not in as_user(NOBODY).get("/", headers=HTML).text


def test_one_dags_runs_are_authorised_with_its_team(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    client = as_user(ALICE)
    assert client.get(f"/runs/{ALPHA}").status_code == 200
    assert client.get(f"/runs/{BETA}").status_code == 403
    assert client.get(f"/runs/{BETA}/20210201").status_code == 403
    assert client.get(f"/runs/{BETA}/20210201/report.json").status_code == 403
    assert as_user(ADMIN).get(f"/runs/{BETA}").status_code == 200


# ------------------------------------------------------------------ the "Lean report" tab


def test_the_tab_opens_the_run_folder_the_run_recorded(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    # the workers may see the artifact root elsewhere: only <dag_id>/<run key> of the path counts
    _add_run(ALPHA, run_dirs={"snapshot": f"/opt/airflow/artifacts/{ALPHA}/20210201"})
    response = as_user(ALICE).get(_tab(ALPHA), headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == f"/lean-airflow/runs/{ALPHA}/20210201"
    assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


def test_a_later_tasks_xcom_is_enough(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    _add_run(ALPHA, run_dirs={"consistency_check": f"/a/{ALPHA}/20210201"})
    assert as_user(ALICE).get(_tab(ALPHA)).headers["location"] == f"/lean-airflow/runs/{ALPHA}/20210201"


def test_a_run_dir_of_another_dag_is_not_followed(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    _add_run(ALPHA, state="success", run_dirs={"snapshot": f"/a/{BETA}/20210201"})
    response = as_user(ALICE).get(_tab(ALPHA), headers=HTML)
    assert response.status_code == 200
    assert "has not produced a Lean report yet" in response.text
    assert BETA not in response.text


def test_the_manifest_names_the_run_when_its_xcom_is_gone(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    (root / ALPHA / "20210201" / "manifest.json").write_text(
        json.dumps({"dag_id": ALPHA, "run_key": "20210201", "airflow": {"dag_id": ALPHA, "run_id": RUN_ID}})
    )
    (root / ALPHA / "20210202").mkdir()
    (root / ALPHA / "20210202" / "manifest.json").write_text(json.dumps({"airflow": {"run_id": "other"}}))
    _add_run(ALPHA, state="success")
    assert as_user(ALICE).get(_tab(ALPHA)).headers["location"] == f"/lean-airflow/runs/{ALPHA}/20210201"


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ("running", "writes its run folder; the report appears here once"),
        ("queued", "Reload this tab later"),
        ("failed", "ended before its snapshot task wrote a run folder"),
        ("success", "only the runs of lean-airflow DAGs have a report"),
    ],
)
def test_a_run_without_a_folder_shows_not_produced_yet(
    manager: Any, teams: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_user: Any, state: str, says: str
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "empty"))
    _add_run(ALPHA, state=state)
    response = as_user(ALICE).get(_tab(ALPHA), headers=HTML)
    assert response.status_code == 200
    _assert_plain_page(response.text)
    assert "This run has not produced a Lean report yet" in response.text
    assert says in response.text
    assert f"<code>{RUN_ID}</code>" in response.text
    assert f'href="/lean-airflow/runs/{ALPHA}"' in response.text


def test_a_recorded_folder_missing_here_names_the_artifact_root(
    manager: Any, teams: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_user: Any
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "elsewhere"))
    _add_run(ALPHA, run_dirs={"snapshot": f"/workers/artifacts/{ALPHA}/20210201"})
    text = as_user(ALICE).get(_tab(ALPHA), headers=HTML).text
    assert f"<code>{ALPHA}/20210201</code>" in text
    assert "LEAN_AIRFLOW_ARTIFACT_ROOT" in text


def test_the_tab_is_authorised_like_the_other_routes(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    _add_run(BETA, run_dirs={"snapshot": f"/a/{BETA}/20210201"})
    assert TestClient(app, root_path=URL_PREFIX).get(_tab(BETA)).status_code == 401
    refused = as_user(ALICE).get(_tab(BETA), headers=HTML)
    assert refused.status_code == 403 and "You may not read these runs" in refused.text
    assert (
        f'href="/auth/login?next=/lean-airflow/dag-runs/{BETA}/manual__2021-02-01T00%3A00%3A00%2B00%3A00"'
        in refused.text
    )
    assert as_user(ADMIN).get(_tab(BETA)).status_code == 303


def test_an_unknown_run_is_not_found(manager: Any, teams: None, root: Path, as_user: Any) -> None:
    client = as_user(ADMIN)
    assert client.get(_tab(ALPHA, "no_such_run")).status_code == 404
    assert client.get(_tab(ALPHA, "no_such_run"), headers=HTML).text.count("Not found") >= 1
    assert client.get(_tab("bad id!")).status_code == 404


def test_the_not_produced_page_escapes_what_it_shows() -> None:
    page = not_produced_page(dag_id="d", run_id='r"><script>alert(1)</script>', state="running", recorded_key=None)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize("on_store", [False, True], ids=["artifact-root", "artifact-store"])
def test_a_real_run_opens_in_its_tab(
    dagbag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manager: Any, as_user: Any, on_store: bool
) -> None:
    """A real ``dag.test()`` of lean_backtest_range: its tab finds the run key the run recorded. On an
    artifact store, the api-server has its own (empty) scratch: the pages read the store through its cache."""
    from include.audit.db import upgrade_database

    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade_database(db_url)
    if on_store:
        monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    monkeypatch.setenv("LEAN_AIRFLOW_RUNTIME", "local")
    conf = {"start_date": "2021-02-01", "end_date": "2021-02-05", "top_n": 2, "lookback_days": 10, "runtime": "local"}
    run = dagbag.dags["lean_backtest_range"].test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["snapshot"] == "success", states
    if on_store:
        import shutil

        shutil.rmtree(tmp_path / "artifacts")  # the api-server's scratch: nothing of the workers'
        monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "api-server"))
    client = as_user(ADMIN)
    response = client.get(_tab("lean_backtest_range", run.run_id))
    assert response.status_code == 303, response.text
    target = "/lean-airflow/runs/lean_backtest_range/20210201_20210205"
    assert response.headers["location"] == target
    page = client.get(target.removeprefix(URL_PREFIX), headers=HTML)
    assert page.status_code == 200
    assert "20210201_20210205" in client.get("/", headers=HTML).text
    report = client.get(target.removeprefix(URL_PREFIX) + "/report.json")
    assert report.status_code == 200 and report.json()["verdict"] in ("pass", "warn")
    if on_store:
        assert (tmp_path / "api-server" / ".ui-cache" / "lean_backtest_range" / "20210201_20210205").is_dir()
        assert not (tmp_path / "artifacts").exists()
