"""A run folder is complete and current, or visibly not (issue #17): a re-run that stops after
``write_params`` leaves new inputs beside the previous attempt's results, and neither the page nor
the runs list may then show the old verdict; a folder whose inputs changed after its manifest is
"stale", in red."""

from __future__ import annotations

import shutil
from pathlib import Path

from include.pipeline import run_chain
from include.reporting.html import render_run_page
from include.reporting.run_view import list_runs, load_run_view
from tests.faults.helpers import range_request


def _badges(page: str) -> list[str]:
    import re

    return re.findall(r'class="verdict [a-z]+" data-verdict="([^"]+)"', page)


def test_a_rerun_that_stops_after_write_params_shows_incomplete_never_the_old_pass(
    lean_env: dict[str, str], tmp_path: Path
) -> None:
    root = Path(lean_env["root"])
    first = run_chain(range_request(options={"top_n": 2, "lookback_days": 10, "universe": []}))
    folder = first.folder
    view = load_run_view(folder)
    assert view.freshness.state == "current" and view.report is not None and view.report["verdict"] == "pass"
    assert [r["verdict"] for r in list_runs(root)] == ["pass"]
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in (folder.manifest_path, folder.report_json_path):
        shutil.copy2(path, kept / path.name)

    # The re-run with other weights stops after write_params (say run_lean failed).
    run_chain(range_request(options={"top_n": 3, "lookback_days": 10, "universe": []}), until="write_params")
    assert (folder.results_dir / f"{folder.algorithm_id}-order-events.json").exists()  # the old results
    view = load_run_view(folder)
    page = render_run_page(view)
    assert view.freshness.state == "incomplete" and view.report is None
    assert _badges(page)[0] == "incomplete" and "pass" not in _badges(page)
    assert 'id="freshness"' in page and "no manifest.json" in page
    assert [r["verdict"] for r in list_runs(root)] == ["incomplete"]

    # A folder whose old manifest and report survived (copied back, or written by an older
    # version): its inputs no longer match, so it is stale, naming the files that changed.
    for name in ("manifest.json", "report.json"):
        shutil.copy2(kept / name, folder.path / name)
    view = load_run_view(folder)
    page = render_run_page(view)
    assert view.freshness.state == "stale"
    assert any("order_intent_run_" in p and "changed since the manifest" in p for p in view.freshness.problems)
    assert _badges(page)[0] == "stale" and "pass" not in _badges(page)
    assert [r["verdict"] for r in list_runs(root)] == ["stale"]

    # The re-run completed: current again, with the new run's verdict.
    done = run_chain(range_request(options={"top_n": 3, "lookback_days": 10, "universe": []}))
    assert done.outputs["consistency_check"]["verdict"] == "pass"
    assert load_run_view(folder).freshness.state == "current"
    assert [r["verdict"] for r in list_runs(root)] == ["pass"]
