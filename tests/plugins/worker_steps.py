"""The chain's steps in a process of their own, as an Airflow worker runs them (possibly as another
user, or killed mid-way): ``python -m tests.plugins.worker_steps STEP[,STEP...] RUN_SPEC``.

``RUN_SPEC`` is a JSON object: ``dag_id`` (``prepare``), ``run_dir``, ``docker_url``, ``image``,
``engine_timeout_s``, and for ``run_lean`` optionally ``mode`` (default backtest), ``broker_conn_id`` and
``data_path`` (default the sample data). Steps: ``prepare`` (snapshot, intent, params), ``run_lean`` (the
``LeanRunOperator`` on Docker), ``ingest``, ``check``. Prints one JSON line per step; exits 1 with
the error's name and message on the first failure.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any


def _step(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder
    from tests.faults.helpers import STARTING_CASH, check, ingest, prepare_run

    if name == "prepare":
        return {"run_dir": str(prepare_run(dag_id=spec["dag_id"]).path)}
    folder = RunFolder.open(spec["run_dir"])
    if name == "run_lean":
        from lean_airflow.operators import LeanRunOperator

        operator = LeanRunOperator(
            task_id="run_lean",
            mode=spec.get("mode", "backtest"),
            runtime="docker",
            run_dir=str(folder.path),
            data_path=str(spec.get("data_path") or DEFAULT_DATA_FOLDER),
            broker_conn_id=spec.get("broker_conn_id"),
            parameters={"starting-cash": STARTING_CASH},
            image=spec["image"],
            docker_url=spec["docker_url"],
            engine_timeout=dt.timedelta(seconds=float(spec.get("engine_timeout_s", 600))),
        )
        return {"results": operator.execute({})}
    if name == "ingest":
        return ingest(folder)
    if name == "check":
        return check(folder)
    raise SystemExit(f"unknown step {name!r}")


def main(argv: list[str]) -> int:
    steps, spec = argv[0].split(","), json.loads(argv[1])
    for name in steps:
        try:
            result = _step(name, spec)
        except Exception as exc:
            print(json.dumps({"step": name, "error": type(exc).__name__, "message": str(exc)}), flush=True)
            return 1
        if name == "prepare":
            spec["run_dir"] = result["run_dir"]
        print(json.dumps({"step": name, "result": result}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
