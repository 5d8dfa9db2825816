"""The report reads only its own run folder (issue #17): a file symlinked out of the folder, or a
run folder symlinked out of the artifact root, is refused or skipped, never shown. And a folder
shows its verdict only while its manifest and report belong to the inputs in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.errors import ArtifactPathError
from include.reporting.html import render_run_page
from include.reporting.run_view import list_runs, load_run_view
from include.run_folder import RunFolder, RunRef

SECRET = "top-secret-content-outside-the-run-folder"


def _folder(root: Path, dag_id: str = "lean_backtest_range", run_key: str = "20210201_20210226") -> RunFolder:
    folder = RunFolder.create(RunRef(dag_id, run_key), root=root)
    (folder.path / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("target", ["report", "manifest", "parity", "summary", "results"])
def test_a_file_symlinked_out_of_the_run_folder_is_refused(tmp_path: Path, target: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"statistics": {"x": SECRET}, "verdict": SECRET}))
    folder = _folder(tmp_path / "root")
    links = {
        "report": folder.report_json_path,
        "manifest": folder.manifest_path,
        "parity": folder.parity_path,
        "summary": folder.results_dir / f"{folder.algorithm_id}-summary.json",
        "results": folder.results_dir,
    }
    link = links[target]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if target == "results" else outside / "secret.json")
    try:
        page = render_run_page(load_run_view(folder))
    except ArtifactPathError as exc:
        assert "outside" in str(exc)
        return
    # Not refused only when nothing made the page read it (a report without a manifest is stale,
    # so it is never opened): either way the secret is not on the page.
    assert target == "report" and SECRET not in page


def test_the_runs_list_skips_run_folders_and_reports_that_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    good = _folder(root)
    good.report_json_path.write_text(json.dumps({"verdict": "pass"}))
    linked_report = _folder(root, run_key="20210301_20210326")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.json").write_text(json.dumps({"verdict": SECRET}))
    linked_report.report_json_path.symlink_to(elsewhere / "report.json")
    stolen = tmp_path / "stolen_run"
    stolen.mkdir()
    (stolen / "config.json").write_text("{}")
    (stolen / "report.json").write_text(json.dumps({"verdict": SECRET}))
    (root / "lean_backtest_range" / "20210401_20210430").symlink_to(stolen)
    runs = list_runs(root)
    # The good run has no manifest, so it is listed as stale, not with its report's verdict.
    assert [(r["run_key"], r["verdict"]) for r in runs] == [("20210201_20210226", "stale")]
    assert SECRET not in json.dumps(runs)
