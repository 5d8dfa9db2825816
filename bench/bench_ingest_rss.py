"""Peak RSS of ingesting a large events file (default 10M events) into SQLite; target <= 500 MB.

    PYTHONPATH=. .venv/bin/python bench/bench_ingest_rss.py [--events 10000000] [--json-out FILE]

Slow and needs ~3.5 GB of temp space: not in the default run (``bench/run_all.py --with-rss``).

The file is generated on disk in a temp dir; ingestion runs in a child process whose
``ru_maxrss`` (RUSAGE_CHILDREN, KiB on Linux) is read after it exits.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_ingest import ALGORITHM_ID, write_events_file  # noqa: E402

CHILD = """
import sys
sys.path.insert(0, {repo!r})
from include.audit.db import make_engine, upgrade_database
from include.audit.ingest import ingest_order_events
url = {url!r}
upgrade_database(url)
engine = make_engine(url)
summary = ingest_order_events(engine=engine, results_dir={results!r}, algorithm_id={algo!r}, run_key="rss")
print(summary.inserted)
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        results.mkdir()
        size = write_events_file(results / f"{ALGORITHM_ID}-order-events.json", args.events)
        code = CHILD.format(
            repo=str(REPO), url=f"sqlite:///{Path(tmp) / 'rss.db'}", results=str(results), algo=ALGORITHM_ID
        )
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        elapsed = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"{args.events:,} events ({size / 1e9:.2f} GB) ingested: {out.stdout.strip()} rows in {elapsed:.0f}s; "
        f"peak RSS {peak_mb:.0f} MB (target <= 500 MB)"
    )
    from _figures import emit, figure

    emit(
        args.json_out,
        figures=[
            figure(
                f"peak RSS ingesting {args.events:,} events",
                peak_mb,
                "MB",
                baseline="size of the events file",
                baseline_value=size / 2**20,
                ratio=peak_mb / (size / 2**20),
                target="<= 500 MB for 10M events",
                met=peak_mb <= 500,
                judged=args.events >= 10_000_000,
            )
        ],
        sizes={"events": args.events, "file_gb": round(size / 1e9, 2), "seconds": round(elapsed, 1)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
