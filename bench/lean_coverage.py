"""Coverage of the local runtime, as a figure: Lean's own regression algorithms through ``include.lean_local``.

The population: every Python file ``Algorithm.Python/<Name>.py`` of a Lean checkout (``LEAN_REPO_DIR``) whose
same-named C# file (anywhere under ``Algorithm.CSharp/``) defines a concrete ``ExpectedStatistics``. Each runs
unmodified in its own ``python -m include.lean_local`` subprocess (with a timeout), on a launcher config whose
``data-folder`` is ``LEAN_REPO_DIR/Data`` (as ``tests/include/lean_local/test_fidelity.py`` does) plus the C# file's
``CustomConfigurations`` (as Lean's regression harness adds them), and is classified:

* MATCH: exit 0 and Lean's published Total Orders exact, End Equity within 0.5 %, Total Fees within 5 % (each
  when the C# file publishes it);
* WRONG: exit 0 with other figures (the worst outcome: a silent wrong number);
* REFUSED: exit 1 with a named ``not supported by the local runtime: NAME`` on stderr and in ``log.txt``;
* CRASH: anything else (an unnamed error, a timeout, a missing result file).

The daily US-equity subset (``daily_us_equity``, decided from the Python source): algorithms that subscribe
only US equities, all at ``Resolution.DAILY`` (each ``add_equity``/``add_security`` passes it, a universe sets
``universe_settings.resolution`` to it), with no intraday resolution, no other asset class, no custom data
(``add_data``/``PythonData``) and no other market.

    LEAN_REPO_DIR=/path/to/Lean PYTHONPATH=. .venv/bin/python bench/lean_coverage.py [--jobs N] [--timeout S]
        [--only NAME ...] [--daily] [--json-out bench/out/lean_coverage.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
REFUSAL = re.compile(r"not supported by the local runtime: ([^\n]+)")
_PAIR = re.compile(r'\{\s*"([^"]+)"\s*,\s*"([^"]*)"\s*\}')
_ABSTRACT = re.compile(r"abstract\s+(?:public\s+)?Dictionary<string,\s*string>\s+ExpectedStatistics")
_PROPERTY = re.compile(r"Dictionary<string,\s*string>\s+ExpectedStatistics")
OUTCOMES = ("MATCH", "WRONG", "REFUSED", "CRASH")


@dataclass
class Case:
    name: str
    python: Path
    csharp: Path
    expected: dict[str, str]
    daily_us_equity: bool
    configurations: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    name: str
    outcome: str
    daily_us_equity: bool
    seconds: float
    exit_code: int | None
    refusal: str = ""
    detail: str = ""
    figures: dict[str, str] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)


def expected_statistics(text: str) -> dict[str, str] | None:
    """The C# file's concrete ``ExpectedStatistics`` pairs; None when it defines none (or only an abstract one)."""
    match = _PROPERTY.search(text)
    if match is None or _ABSTRACT.search(text):
        return None
    body = text[match.end() :]
    end = body.find("};")
    return dict(_PAIR.findall(body[: end if end >= 0 else len(body)]))


_CONFIGURATIONS = re.compile(r"Dictionary<string,\s*string>\s+CustomConfigurations\s*=>")


def custom_configurations(text: str) -> dict[str, str]:
    """The C# file's ``CustomConfigurations`` pairs (Lean's regression harness adds them to the launcher
    config), or none."""
    match = _CONFIGURATIONS.search(text)
    if match is None:
        return {}
    body = text[match.end() :]
    end = body.find("};")
    return dict(_PAIR.findall(body[: end if end >= 0 else len(body)]))


def discover(lean: Path) -> list[Case]:
    csharp: dict[str, list[Path]] = {}
    for path in sorted((lean / "Algorithm.CSharp").rglob("*.cs")):
        csharp.setdefault(path.stem, []).append(path)
    cases = []
    for python in sorted((lean / "Algorithm.Python").glob("*.py")):
        for cs in csharp.get(python.stem, []):
            text = cs.read_text(encoding="utf-8-sig", errors="replace")
            expected = expected_statistics(text)
            if expected is not None:
                source = python.read_text(encoding="utf-8", errors="replace")
                cases.append(
                    Case(python.stem, python, cs, expected, daily_us_equity(source), custom_configurations(text))
                )
                break
    return cases


_OTHER_ASSETS = re.compile(
    r"\badd_(?:forex|crypto|crypto_future|option|option_contract|future|future_contract|future_option|index|"
    r"index_option|index_option_contract|cfd|data|universe_options)\b|\bPythonData\b|SecurityType\.(?!EQUITY)\w+|"
    r"Market\.(?!USA)\w+"
)
_INTRADAY = re.compile(r"Resolution\.(?:MINUTE|HOUR|SECOND|TICK)\b")
_UNIVERSE = re.compile(r"\b(?:add_universe|set_universe_selection|add_universe_selection)\b")
_UNIVERSE_DAILY = re.compile(r"universe_settings\.resolution\s*=\s*Resolution\.DAILY")


def daily_us_equity(source: str) -> bool:
    """Whether the algorithm subscribes only US equities, all at daily resolution (see the module docstring)."""
    if _OTHER_ASSETS.search(source) or _INTRADAY.search(source) or "Resolution.DAILY" not in source:
        return False
    if _UNIVERSE.search(source) and not _UNIVERSE_DAILY.search(source):
        return False
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("add_equity", "add_security")
            and not _passes_resolution(node)
        ):
            return False
    return True


def _passes_resolution(call: ast.Call) -> bool:
    """The call gives a resolution (positionally after the ticker, or by keyword): without one Lean uses MINUTE."""
    skip = 1 if call.func.attr == "add_equity" else 2  # type: ignore[attr-defined]
    return len(call.args) > skip or any(k.arg == "resolution" for k in call.keywords)


def launcher_parameters(lean: Path) -> dict[str, str]:
    """The ``parameters`` of the checkout's ``Launcher/config.json``: Lean's regression runs take them (e.g.
    ``GetParameterRegressionAlgorithm`` expects its ``ema-fast``)."""
    path = lean / "Launcher" / "config.json"
    if not path.is_file():
        return {}
    text = re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*', lambda m: m[1] or "", path.read_text(encoding="utf-8-sig"))
    try:
        parameters = json.loads(text).get("parameters") or {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in parameters.items()}


def _config(case: Case, lean: Path, work: Path) -> Path:
    cfg: dict[str, Any] = {
        "environment": "backtesting",
        "algorithm-location": str(case.python),
        "algorithm-type-name": case.name,
        "algorithm-id": case.name,
        "data-folder": str(lean / "Data"),
        "results-destination-folder": str(work / "results"),
        "object-store-root": str(work / "storage"),
        "parameters": launcher_parameters(lean),
        **case.configurations,
    }
    path = work / "config.json"
    path.write_text(json.dumps(cfg, indent=1))
    return path


def _close(actual: str | None, expected: str, rel: float) -> bool:
    if actual is None:
        return False
    try:
        a, e = float(actual.lstrip("$").replace(",", "")), float(expected.lstrip("$").replace(",", ""))
    except ValueError:
        return False
    return abs(a - e) <= rel * abs(e) + 0.005


def judge(expected: dict[str, str], figures: dict[str, str]) -> list[str]:
    """The published figures the run misses (empty: a MATCH)."""
    misses = []
    if "Total Orders" in expected and figures.get("Total Orders") != expected["Total Orders"]:
        misses.append("Total Orders")
    if "End Equity" in expected and not _close(figures.get("End Equity"), expected["End Equity"], 0.005):
        misses.append("End Equity")
    if "Total Fees" in expected and not _close(figures.get("Total Fees"), expected["Total Fees"], 0.05):
        misses.append("Total Fees")
    return misses


def run_case(case: Case, lean: Path, timeout: float) -> Outcome:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"cov-{case.name}-") as tmp:
        work = Path(tmp)
        config = _config(case, lean, work)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        base = Outcome(case.name, "CRASH", case.daily_us_equity, 0.0, None, expected=case.expected)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "include.lean_local", "--config", str(config)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            base.seconds = time.perf_counter() - started
            base.detail = f"timeout after {timeout:g} s"
            return base
        base.seconds = round(time.perf_counter() - started, 2)
        base.exit_code = proc.returncode
        results = work / "results"
        log = (results / "log.txt").read_text(errors="replace") if (results / "log.txt").is_file() else ""
        summary = results / f"{case.name}-summary.json"
        if proc.returncode == 0:
            if not summary.is_file():
                base.detail = "exit 0 without a summary file"
                return base
            stats = json.loads(summary.read_text())["statistics"]
            base.figures = {k: stats.get(k, "") for k in ("Total Orders", "End Equity", "Total Fees")}
            misses = judge(case.expected, stats)
            base.outcome = "WRONG" if misses else "MATCH"
            base.detail = ", ".join(misses)
            return base
        found = REFUSAL.findall(proc.stderr)
        if proc.returncode == 1 and found and found[-1].strip() in log:
            base.outcome = "REFUSED"
            base.refusal = found[-1].strip()
            return base
        base.detail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300]
        return base


def _table(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    table = {}
    for label, rows in (("all", outcomes), ("daily US equity", [o for o in outcomes if o.daily_us_equity])):
        counts = Counter(o.outcome for o in rows)
        table[label] = {"total": len(rows), **{k: counts.get(k, 0) for k in OUTCOMES}}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", nargs="*", default=None, help="run only these algorithm names")
    parser.add_argument("--daily", action="store_true", help="run only the daily US-equity subset")
    parser.add_argument("--json-out", type=Path, default=OUT / "lean_coverage.json")
    args = parser.parse_args(argv)
    lean_dir = os.environ.get("LEAN_REPO_DIR")
    if not lean_dir:
        parser.error("set LEAN_REPO_DIR to a Lean checkout (Algorithm.Python/, Algorithm.CSharp/, Data/)")
    lean = Path(lean_dir)
    cases = discover(lean)
    if args.only:
        cases = [c for c in cases if c.name in set(args.only)]
    if args.daily:
        cases = [c for c in cases if c.daily_us_equity]
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        outcomes = list(pool.map(lambda c: run_case(c, lean, args.timeout), cases))
    refusals = Counter(o.refusal.split(" (")[0] for o in outcomes if o.outcome == "REFUSED")
    table = _table(outcomes)
    for label, counts in table.items():
        print(f"{label:16} " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    for o in outcomes:
        if o.outcome in ("MATCH", "WRONG", "CRASH") or o.daily_us_equity:
            print(f"  {o.outcome:8} {'D' if o.daily_us_equity else ' '} {o.name}: {o.refusal or o.detail}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "table": table,
        "refusals": dict(refusals.most_common()),
        "outcomes": [asdict(o) for o in outcomes],
    }
    args.json_out.write_text(json.dumps(payload, indent=1))
    print(f"detail: {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
