"""Consistency check on 1M ingested events (SQLite) vs a baseline of just reading the same rows.

PYTHONPATH=. .venv/bin/python bench/bench_consistency.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_ingest import ALGORITHM_ID, write_events_file  # noqa: E402

from include.audit.consistency import check_consistency, load_event_columns  # noqa: E402
from include.audit.db import make_engine, upgrade_database  # noqa: E402
from include.audit.ingest import ingest_order_events  # noqa: E402
from include.audit.run_folder import StartingState  # noqa: E402
from include.contracts.params import ExecutionParams  # noqa: E402
from include.intent import build_order_intent  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "results"
        folder.mkdir()
        write_events_file(folder / f"{ALGORITHM_ID}-order-events.json", args.events)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade_database(url)
        engine = make_engine(url)
        intent = build_order_intent(
            run_id="bench",
            rebalances={dt.date(2021, 3, 30): [{"symbol": s, "weight": 0.2} for s in ("SPY", "AAPL", "QQQ", "IBM")]},
            source="bench",
        )
        summary = ingest_order_events(engine=engine, results_dir=folder, algorithm_id=ALGORITHM_ID, intent=intent)
        t = time.perf_counter()
        frame = load_event_columns(engine, summary.run_id)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        report = check_consistency(
            engine=engine,
            run_id=summary.run_id,
            intent=intent,
            params=ExecutionParams(fee_bps=1.0),
            starting=StartingState(cash=1e9),
            data_folder=None,
            policy="warn",
            output_dir=Path(tmp),
        )
        check_s = time.perf_counter() - t
        engine.dispose()
    print(f"{len(frame):,} events, {report.orders:,} orders, verdict {report.verdict}")
    print(
        f"baseline read of the same rows: {read_s:.2f}s; full check (read + checks + report + DB rows): "
        f"{check_s:.2f}s; ratio {check_s / read_s:.2f}; target <= 5 s"
    )
    from _figures import emit, figure

    emit(
        args.json_out,
        figures=[
            figure(
                f"consistency check, {args.events:,} events",
                check_s,
                "s",
                baseline="plain read of the same rows",
                baseline_value=read_s,
                ratio=check_s / read_s,
                target="<= 5 s on 1M events",
                met=check_s <= 5.0 if args.events >= 1_000_000 else True,
            )
        ],
        sizes={"events": args.events, "orders": report.orders},
        series={"events": args.events, "check_s": check_s, "read_s": read_s},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
