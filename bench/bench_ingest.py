"""Ingestion throughput into SQLite and Postgres vs a raw DB write of the same rows.

    PYTHONPATH=. .venv/bin/python bench/bench_ingest.py [--events 200000] [--repeat 3] [--no-postgres] [--json-out FILE]

Baselines, measured in the same run on the same rows: SQLite ``executemany`` of ready-made
tuples through the DBAPI cursor; Postgres ``COPY`` of the same tuples (psycopg). The ratio is
ingest events/s divided by baseline rows/s (1.0 = as fast as a bare write; parsing + validation
+ linking cost the rest). Each side is run ``--repeat`` times on a fresh database; the best time
of each counts (on a shared machine, other load only ever adds time).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from include.audit.db import make_engine, upgrade_database  # noqa: E402
from include.audit.ingest import ensure_run, event_row, ingest_order_events, iter_order_events  # noqa: E402

ALGORITHM_ID = "1234567890"
PG_URL = os.environ.get("LEAN_AIRFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SYMBOLS = [
    ("SPY", "SPY R735QTJ8XC9X"),
    ("AAPL", "AAPL R735QTJ8XC9X"),
    ("QQQ", "QQQ RIWIV7K5Z9LX"),
    ("IBM", "IBM R735QTJ8XC9X"),
]


def write_events_file(path: Path, events: int, algorithm_id: str = ALGORITHM_ID) -> int:
    """A Lean-format ``<id>-order-events.json`` of ``events`` events (submitted + filled pairs), streamed to disk."""
    t0 = 1617111000.0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for i in range(events):
            order_id, event_id = i // 2 + 1, i % 2 + 1
            ticker, sid = SYMBOLS[order_id % len(SYMBOLS)]
            qty = float(10 + order_id % 90)
            side = "buy" if order_id % 3 else "sell"
            signed = qty if side == "buy" else -qty
            head = (
                f'{{"id":"{algorithm_id}-{order_id}-{event_id}","algorithmId":"{algorithm_id}","orderId":{order_id},'
                f'"orderEventId":{event_id},"symbol":"{sid}","symbolValue":"{ticker}","symbolPermtick":"{ticker}",'
                f'"time":{t0 + order_id:.1f},'
            )
            if event_id == 1:
                body = (
                    '"status":"submitted","fillPrice":0.0,"fillPriceCurrency":"USD","fillQuantity":0.0,'
                    f'"direction":"{side}","isAssignment":false,"quantity":{signed}}}'
                )
            else:
                price = 100.0 + order_id % 50
                body = (
                    f'"status":"filled","orderFeeAmount":{abs(signed) * price * 1e-4:.6f},"orderFeeCurrency":"USD",'
                    f'"fillPrice":{price},"fillPriceCurrency":"USD","fillQuantity":{signed},'
                    f'"direction":"{side}","isAssignment":false,"quantity":{signed}}}'
                )
            out.write(("," if i else "") + head + body)
        out.write("]")
    return path.stat().st_size


def _rows(path: Path, run_id: int) -> list[tuple[Any, ...]]:
    rows = []
    for event in iter_order_events(path):
        r = event_row(event, run_id, None, path.name)
        r["extras"] = None
        rows.append(tuple(r.values()))
    return rows


def bench(url: str, path: Path, events: int, baseline: str) -> dict[str, float]:
    engine = make_engine(url)
    try:
        t = time.perf_counter()
        summary = ingest_order_events(
            engine=engine, results_dir=path.parent, algorithm_id=ALGORITHM_ID, run_key="bench", dag_id="bench"
        )
        ingest_s = time.perf_counter() - t
        assert summary.inserted == events, summary
        with engine.begin() as conn:
            run_id = ensure_run(conn, dag_id="bench", run_key="baseline")
        rows = _rows(path, run_id)
        columns = list(event_row(next(iter_order_events(path)), run_id, None, "x").keys())
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            t = time.perf_counter()
            if baseline == "executemany":
                placeholders = ",".join("?" for _ in columns)
                cursor.executemany(
                    f"INSERT INTO order_events ({','.join(columns)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING",
                    rows,
                )
            else:
                with cursor.copy(f"COPY order_events ({','.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            raw.commit()
            base_s = time.perf_counter() - t
        finally:
            raw.close()
    finally:
        engine.dispose()
    return {
        "ingest_events_per_s": events / ingest_s,
        "baseline_rows_per_s": events / base_s,
        "ratio": (events / ingest_s) / (events / base_s),
        "ingest_s": ingest_s,
        "baseline_s": base_s,
    }


def parse_only(path: Path, events: int) -> float:
    t = time.perf_counter()
    count = sum(1 for _ in iter_order_events(path))
    assert count == events
    return events / (time.perf_counter() - t)


def _best(runs: list[dict[str, float]], events: int) -> dict[str, float]:
    """The best (least disturbed) time of each side over the repeats, and the ratio of their rates."""
    ingest_s, base_s = min(r["ingest_s"] for r in runs), min(r["baseline_s"] for r in runs)
    return {
        "ingest_events_per_s": events / ingest_s,
        "baseline_rows_per_s": events / base_s,
        "ratio": base_s / ingest_s,
        "ingest_s": ingest_s,
        "baseline_s": base_s,
    }


@contextlib.contextmanager
def _postgres_schema() -> Iterator[str]:
    """A URL of a fresh schema of the test database, dropped afterwards."""
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="fresh databases per side; the best time counts")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    figures: list[dict[str, Any]] = []
    series: dict[str, float] = {"events": args.events}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "results"
        folder.mkdir()
        path = folder / f"{ALGORITHM_ID}-order-events.json"
        size = write_events_file(path, args.events)
        print(f"events file: {args.events} events, {size / 1e6:.1f} MB; best of {args.repeat}, fresh DB each")
        print(f"parse+validate only (ijson yajl2_c + LeanOrderEvent): {parse_only(path, args.events):,.0f} events/s")

        @contextlib.contextmanager
        def sqlite_db(i: int) -> Iterator[str]:
            yield f"sqlite:///{Path(tmp) / f'bench-{i}.db'}"

        # (label, series key, baseline, the baseline as the figure and the console name it, fresh DB per run)
        backends = [("SQLite", "sqlite", "executemany", "raw executemany", "raw executemany", sqlite_db)]
        if not args.no_postgres:
            backends.append(("PostgreSQL", "postgres", "copy", "raw COPY", "COPY", lambda _i: _postgres_schema()))
        for label, key, baseline, figure_name, baseline_name, fresh_db in backends:
            runs = []
            for i in range(args.repeat):
                with fresh_db(i) as url:
                    upgrade_database(url)
                    runs.append(bench(url, path, args.events, baseline))
            result = _best(runs, args.events)
            figures.append(_figure(label, f"{figure_name} of the same rows", args.events, result))
            series[f"{key}_s"], series[f"{key}_baseline_s"] = result["ingest_s"], result["baseline_s"]
            print(
                f"{key:<8}: ingest {result['ingest_events_per_s']:,.0f} events/s ({result['ingest_s']:.2f}s); "
                f"{baseline_name} {result['baseline_rows_per_s']:,.0f} rows/s; ratio {result['ratio']:.2f}"
            )
    from _figures import emit

    emit(
        args.json_out,
        figures=figures,
        sizes={"events": args.events, "file_mb": round(size / 1e6, 1), "repeat": args.repeat},
        series=series,
    )
    return 0


def _figure(db: str, baseline: str, events: int, result: dict[str, float]) -> dict[str, Any]:
    from _figures import figure

    rate, base = result["ingest_events_per_s"], result["baseline_rows_per_s"]
    return figure(
        f"ingestion into {db}, {events:,} events",
        rate,
        "events/s",
        baseline=baseline,
        baseline_value=base,
        ratio=result["ratio"],
        target=">= 0.5 (within 2x of the baseline)",
        met=result["ratio"] >= 0.5,
        note=f"issue: >= 200k events/s (absolute, not judged; measured {rate:,.0f} events/s)",
    )


if __name__ == "__main__":
    sys.exit(main())
