"""Run every benchmark, each in its own process; print one table, write ``bench/results.json`` and
``bench/results.png`` (how cost grows: events against time, symbols against time).

    PYTHONPATH=. .venv/bin/python bench/run_all.py            # the full figures the issues ask for
    PYTHONPATH=. .venv/bin/python bench/run_all.py --quick    # small sizes, a couple of minutes
    PYTHONPATH=. .venv/bin/python bench/run_all.py --with-rss # also the 10M-event RSS run (~3.5 GB temp file)

Every figure is a ratio against a baseline measured in the same run (see each bench_*.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

FULL = {
    "engine_symbols": [50, 100, 250, 500],
    "ingest_events": [10_000, 50_000, 200_000, 500_000],
    "check_events": [100_000, 300_000, 1_000_000],
    "backfill_days": 60,
    "dag_repeat": 5,
}
QUICK = {
    "engine_symbols": [25, 50],
    "ingest_events": [5_000, 20_000],
    "check_events": [20_000, 50_000],
    "backfill_days": 3,
    "dag_repeat": 2,
}


def _run(script: str, *args: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args, "--json-out", str(out)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        sys.stderr.write(f"  {script} {' '.join(args)}: exit {proc.returncode} in {elapsed:.0f}s\n")
        if proc.returncode != 0 or not out.exists():
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
            raise SystemExit(f"{script} failed")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        result["script"], result["wall_s"] = script, round(elapsed, 1)
        return result


def _plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [r.get("series", {}) for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, label in (("sqlite_s", "ingest, SQLite"), ("postgres_s", "ingest, PostgreSQL"), ("check_s", "check")):
        points = sorted((s["events"], s[key]) for s in series if key in s and "events" in s)
        if points:
            left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    left.set(xlabel="order events", ylabel="seconds", title="Audit: events against time", xscale="log", yscale="log")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    for key, label in (("local_s", "lean_local"), ("backtrader_s", "backtrader")):
        points = sorted((s["symbols"], s[key]) for s in series if key in s)
        if points:
            right.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    right.set(xlabel="symbols (252 daily bars each)", ylabel="seconds", title="Engine: symbols against time")
    right.grid(True, alpha=0.3)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(figures: list[dict[str, Any]]) -> str:
    header = ("figure", "value", "baseline", "ratio", "target", "met")
    rows = [
        (
            f["name"],
            f"{f['value']:,.3g} {f['unit']}",
            f"{f['baseline_value']:,.3g} ({f['baseline']})",
            f"{f['ratio']:.2f}",
            f["target"],
            "yes" if f["met"] else "NO",
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (the figures are then not judged)")
    parser.add_argument("--with-rss", action="store_true", help="also ingest a 10M-event file and read its peak RSS")
    parser.add_argument("--no-backfill", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    runs = [_run("bench_dag_overhead.py", "--repeat", str(sizes["dag_repeat"]))]
    runs += [_run("bench_local_engine.py", "--symbols", str(n)) for n in sizes["engine_symbols"]]
    runs += [_run("bench_ingest.py", "--events", str(n)) for n in sizes["ingest_events"]]
    runs += [_run("bench_consistency.py", "--events", str(n)) for n in sizes["check_events"]]
    if args.with_rss:
        runs.append(_run("bench_ingest_rss.py"))
    if not args.no_backfill:
        runs.append(_run("bench_backfill.py", "--days", str(sizes["backfill_days"])))
    figures = [f for r in runs for f in r["figures"]]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip() or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "mode": "quick" if args.quick else "full",
        "sizes": sizes,
        "wall_s": round(time.perf_counter() - started, 1),
        "figures": figures,
        "runs": [{k: v for k, v in r.items() if k != "figures"} for r in runs],
    }
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    _plot(runs, out.with_suffix(".png"))
    print(_table(figures))
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out} and its .png in {result['wall_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
