"""The sweep comparison page of the report plugin: ``/lean-airflow/sweeps/<sweep hash>``.

Routes of the reports app (``lean_airflow.ui.app``, which adds the security headers and the error
pages), behind Airflow's authentication; a user sees a sweep when Airflow lets them read the runs of
``lean_backtest_sweep`` (team-aware, as the run pages). The page is rendered from the sweep's
``comparison.json`` in the artifact store (``include.sweep``), through its contract.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from include.errors import ArtifactPathError
from include.sweep import SWEEP_DAG_ID, SweepPlanError, check_sweep_hash, read_comparison

SWEEP_ROUTE = "/sweeps/{sweep_hash}"
router = APIRouter()


def _comparison(sweep_hash: str, user: Any, session: Any) -> Any:
    from lean_airflow.operators import artifact_store
    from lean_airflow.ui import readable_dag_ids

    if SWEEP_DAG_ID not in readable_dag_ids({SWEEP_DAG_ID}, user=user, session=session):
        raise HTTPException(status_code=403, detail=f"you may not read the runs of {SWEEP_DAG_ID}")
    try:
        check_sweep_hash(sweep_hash)
        return read_comparison(sweep_hash, store=artifact_store())
    except ArtifactPathError:
        raise HTTPException(status_code=404, detail="not a sweep hash") from None
    except FileNotFoundError:
        raise HTTPException(status_code=404, detail="this sweep has no comparison yet") from None
    except SweepPlanError:
        raise HTTPException(status_code=500, detail="this sweep's comparison.json breaks its contract") from None


@router.get(SWEEP_ROUTE, response_class=HTMLResponse)
def sweep_page(sweep_hash: str, request: Request, user: GetUserDep, session: SessionDep) -> HTMLResponse:
    """The comparison of a sweep's points: the ranking, the plot, Lean's statistics per point."""
    from include.reporting.sweep_page import render_comparison_page
    from lean_airflow.ui import _app_root

    comparison = _comparison(sweep_hash, user, session)
    return HTMLResponse(render_comparison_page(comparison, runs_prefix=f"{_app_root(request)}/runs"))


@router.get(SWEEP_ROUTE + "/comparison.json")
def sweep_comparison_json(sweep_hash: str, user: GetUserDep, session: SessionDep) -> JSONResponse:
    return JSONResponse(_comparison(sweep_hash, user, session).model_dump(mode="json"))


def register(app: FastAPI) -> FastAPI:
    """Add the sweep routes to the reports app, once (the plugin manager may load the plugin again)."""
    paths = {getattr(route, "path", None) for route in app.routes}
    if SWEEP_ROUTE not in paths:
        app.include_router(router)
    return app
