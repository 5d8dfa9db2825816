"""Run every benchmark, each in its own process; print one table, write ``bench/results.json`` and
``bench/results.png`` (how cost grows: events against time, symbols against time).

    PYTHONPATH=. .venv/bin/python bench/run_all.py            # the full figures the issues ask for
    PYTHONPATH=. .venv/bin/python bench/run_all.py --quick    # small sizes, a couple of minutes
    PYTHONPATH=. .venv/bin/python bench/run_all.py --with-rss # also the 10M-event RSS run (~3.5 GB temp file)
    PYTHONPATH=. .venv/bin/python bench/run_all.py --backfill-days N | --no-backfill
    PYTHONPATH=. .venv/bin/python bench/run_all.py --no-sweep-scaling  # no Celery stack (staging overhead still)
    PYTHONPATH=. .venv/bin/python bench/run_all.py --replot   # redraw results.png from results.json

The sizes used are recorded in results.json ("sizes", and per run). A benchmark that fails is
reported and the others still run; the exit status is then 1.

Every figure is a ratio against a baseline measured in the same run (see each bench_*.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
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

FULL: dict[str, Any] = {
    "engine_symbols": [50, 100, 250, 500],
    "ingest_events": [10_000, 50_000, 200_000, 500_000],
    "check_events": [100_000, 300_000, 1_000_000],
    "backfill_days": 60,
    # The 8-point sweep on one Celery worker and on two (Redis and PostgreSQL needed; ~10 min).
    "sweep_scaling": True,
    "dag_repeat": 5,
    "import_repeat": 10,
    "repeat": 3,  # engine, ingestion and check: each side this many times, the best counts
}
QUICK: dict[str, Any] = {
    "engine_symbols": [25, 50],
    "ingest_events": [5_000, 20_000],
    "check_events": [20_000, 50_000],
    "backfill_days": 3,
    "sweep_scaling": False,
    "dag_repeat": 2,
    "import_repeat": 3,
    "repeat": 1,
}


def _run(script: str, *args: str) -> dict[str, Any]:
    """Run one benchmark in its own process; its ``--json-out`` result, or a failure record."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        started = time.perf_counter()
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args, "--json-out", str(out)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        sys.stderr.write(f"  {script} {' '.join(args)}: exit {proc.returncode} in {elapsed:.0f}s\n")
        sys.stderr.flush()
        if proc.returncode != 0 or not out.exists():
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:] + "\n")
            return {"script": script, "args": list(args), "wall_s": round(elapsed, 1), "failed": True, "figures": []}
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        benchmark = Path(script).stem.removeprefix("bench_")
        for f in result["figures"]:
            f["benchmark"] = benchmark
        result.update(script=script, args=list(args), wall_s=round(elapsed, 1))
        return result


def _points(series: list[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    points = sorted((s[x], s[y]) for s in series if x in s and y in s)
    return [p[0] for p in points], [p[1] for p in points]


def _plot(runs: list[dict[str, Any]], path: Path, subtitle: str) -> None:
    """Events against time (ingestion, check) and symbols against time (engines); each measured
    figure solid, its same-run baseline dashed in the same colour; the backfill per run, if run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    series = [r.get("series", {}) for r in runs]
    backfill = next((s for s in series if "lean" in s and "noop" in s), None)
    fig, axes = plt.subplots(1, 3 if backfill else 2, figsize=(17 if backfill else 12, 5))
    left, right = axes[0], axes[1]
    for key, label, base_label, colour in (
        ("sqlite_s", "ingest, SQLite", "raw executemany", "tab:blue"),
        ("postgres_s", "ingest, PostgreSQL", "raw COPY", "tab:orange"),
        ("check_s", "consistency check", "plain read", "tab:green"),
    ):
        base_key = "read_s" if key == "check_s" else key.replace("_s", "_baseline_s")
        xs, ys = _points(series, "events", key)
        if xs:
            left.plot(xs, ys, marker="o", color=colour, label=label)
        xs, ys = _points(series, "events", base_key)
        if xs:
            left.plot(xs, ys, marker=".", linestyle="--", color=colour, alpha=0.6, label=f"  baseline: {base_label}")
    left.set(xlabel="order events", ylabel="seconds", title="Audit: events against time", xscale="log", yscale="log")

    def plain(v: float, _: object = None) -> str:
        return f"{v:,.0f}" if v >= 1 else f"{v:.2g}"

    def sparse(v: float, _: object = None) -> str:  # minor ticks: only 2x and 5x of a power of ten
        return plain(v) if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""

    left.xaxis.set_major_formatter(FuncFormatter(plain))
    left.yaxis.set_major_formatter(FuncFormatter(plain))
    left.yaxis.set_minor_formatter(FuncFormatter(sparse))
    left.xaxis.set_minor_formatter(NullFormatter())
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    for key, label, colour, style in (
        ("local_s", "lean_local engine", "tab:blue", "-"),
        ("backtrader_s", "baseline: backtrader, same data and orders", "tab:blue", "--"),
    ):
        xs, ys = _points(series, "symbols", key)
        if xs:
            right.plot(xs, ys, marker="o", color=colour, linestyle=style, label=label)
            for x, y in zip(xs, ys, strict=True):
                right.annotate(f"{y:.2f}s", (x, y), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")
    right.set(xlabel="symbols (252 daily bars each)", ylabel="seconds", title="Engine: symbols against time")
    right.set_ylim(bottom=0)
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    if backfill:
        ax = axes[2]
        values = [backfill["lean"]["wall_s"] / backfill["days"], backfill["noop"]["wall_s"] / backfill["days"]]
        bars = ax.bar(["lean_backtest_daily", "baseline: no-op\nsix-task DAG"], values, color=["tab:blue", "tab:gray"])
        ax.bar_label(bars, fmt="%.2f s", fontsize=8)
        ax.set(ylabel="seconds per run", title=f"Backfill through the scheduler: {backfill['days']} sessions")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(subtitle, fontsize=9, color="dimgray")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _subtitle(result: dict[str, Any]) -> str:
    return (
        f"{result['mode']} run {result['date']}, commit {result['commit']}, {result['cpus']} CPUs, "
        f"Python {result['python']}; solid = measured, dashed = same-run baseline"
    )


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _table(figures: list[dict[str, Any]]) -> str:
    header = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met")
    rows = [
        (
            f.get("benchmark", ""),
            f["name"],
            f"{_num(f['value'])} {f['unit']}",
            f"{_num(f['baseline_value'])} ({f['baseline']})",
            f"{f['ratio']:.2f}",
            f["target"],
            ("yes" if f["met"] else "NO") if f.get("judged", True) else "n/a",
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    notes = [f"  {f['name']}: {f['note']}" for f in figures if f.get("note")]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (the figures are then not judged)")
    parser.add_argument("--with-rss", action="store_true", help="also ingest a 10M-event file and read its peak RSS")
    parser.add_argument("--no-backfill", action="store_true")
    parser.add_argument("--backfill-days", type=int, help="override the backfill size (default: 60, quick: 3)")
    parser.add_argument("--no-sweep-scaling", action="store_true", help="skip the sweep on one and two Celery workers")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument("--replot", action="store_true", help="only redraw the .png (and table) from an --out file")
    args = parser.parse_args()
    out = Path(args.out)
    if args.replot:
        saved = json.loads(out.read_text(encoding="utf-8"))
        _plot(saved["runs"], out.with_suffix(".png"), _subtitle(saved))
        print(_table(saved["figures"]))
        return 0
    sizes = dict(QUICK if args.quick else FULL)
    if args.backfill_days:
        sizes["backfill_days"] = args.backfill_days
    if args.no_backfill:
        sizes["backfill_days"] = None
    if args.no_sweep_scaling:
        sizes["sweep_scaling"] = False
    if args.with_rss:
        sizes["rss_events"] = 10_000_000
    started = time.perf_counter()
    repeat = ("--repeat", str(sizes["repeat"]))
    dag_args = ("--repeat", str(sizes["dag_repeat"]), "--import-repeat", str(sizes["import_repeat"]))
    runs = [_run("bench_dag_overhead.py", *dag_args)]
    runs += [_run("bench_local_engine.py", "--symbols", str(n), *repeat) for n in sizes["engine_symbols"]]
    runs += [_run("bench_ingest.py", "--events", str(n), *repeat) for n in sizes["ingest_events"]]
    runs += [_run("bench_consistency.py", "--events", str(n), *repeat) for n in sizes["check_events"]]
    runs.append(_run("bench_report_page.py", *repeat))
    if args.with_rss:
        runs.append(_run("bench_ingest_rss.py"))
    if sizes["backfill_days"]:
        runs.append(_run("bench_backfill.py", "--days", str(sizes["backfill_days"])))
    # The staging overhead always; the sweep on one and two workers unless skipped.
    sweep_args = () if sizes["sweep_scaling"] else ("--no-sweep",)
    runs.append(_run("bench_sweep_scaling.py", *repeat, *sweep_args))
    figures = [f for r in runs for f in r["figures"]]
    if args.quick:  # small sizes: reported, not judged against the targets
        for f in figures:
            f["met"], f["judged"] = True, False
    failed = [f"{r['script']} {' '.join(r['args'])}" for r in runs if r.get("failed")]
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
        "failed": failed,
        "figures": figures,
        "runs": [{k: v for k, v in r.items() if k != "figures"} for r in runs],
    }
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    _plot(runs, out.with_suffix(".png"), _subtitle(result))
    print(_table(figures))
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out} and its .png in {result['wall_s']}s")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
