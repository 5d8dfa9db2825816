"""1,000 runs of the core chain in one process: memory and open file descriptors must not grow.

Each run is snapshot -> write_intent -> write_params -> (the engine's config, identity and result
files, copied from one real run with the run's own algorithm id) -> ingest_events -> consistency_check,
for distinct run keys. The engine itself runs in a subprocess (its own leaks die with it), so it runs
once.
"""

from __future__ import annotations

import gc
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.faults.helpers import check, ingest, prepare_run, run_engine

RUNS = int(os.environ.get("LEAK_TEST_RUNS", "1000"))
WARM_UP = 50
# Allowances: SQLAlchemy/pandas caches settle during warm-up; a leak of even 30 KB per run
# (one report's worth) would pass 30 MB well before the end.
RSS_GROWTH_LIMIT_MB = 30.0
FD_GROWTH_LIMIT = 2

pytestmark = pytest.mark.slow


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _copy_results(template_key: str, template: Path, key: str, results_dir: Path) -> None:
    """The template run's result files as this run's engine would write them (its own id)."""
    shutil.rmtree(results_dir, ignore_errors=True)
    results_dir.mkdir(parents=True)
    for path in template.iterdir():
        if path.is_file():
            text = path.read_text(encoding="utf-8").replace(template_key, key)
            (results_dir / path.name.replace(template_key, key)).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_a_thousand_runs_grow_neither_memory_nor_file_descriptors(lean_env: dict[str, str]) -> None:
    template = prepare_run(run_key="t0000")
    run_engine(template)
    rss: list[float] = []
    fds: list[int] = []
    first_rss, first_fds = _rss_mb(), _open_fds()  # printed only: caches fill during the warm-up
    started = time.perf_counter()
    for i in range(1, RUNS + 1):
        run = prepare_run(run_key=f"r{i:04d}")
        config = template.config_path.read_text(encoding="utf-8")
        run.config_path.write_text(config.replace(template.run_key, run.run_key), encoding="utf-8")
        run.engine_path.write_bytes(template.engine_path.read_bytes())  # what the launch records
        _copy_results(template.run_key, template.results_dir, run.run_key, run.results_dir)
        summary = ingest(run)
        assert summary["inserted"] > 0 and summary["already_present"] == 0, summary
        assert check(run)["verdict"] in ("pass", "warn"), run.run_key
        if i in (WARM_UP, RUNS):
            gc.collect()
            rss.append(_rss_mb())
            fds.append(_open_fds())
    per_second = RUNS / (time.perf_counter() - started)
    print(
        f"\n{RUNS} runs, {per_second:.1f} runs/s; before the first run / after warm-up ({WARM_UP}) / end: "
        f"RSS {first_rss:.1f} / {rss[0]:.1f} / {rss[1]:.1f} MB, open fds {first_fds} / {fds[0]} / {fds[1]}"
    )
    assert fds[1] - fds[0] <= FD_GROWTH_LIMIT, fds
    assert rss[1] - rss[0] <= RSS_GROWTH_LIMIT_MB, rss
