"""Lean names outside the local runtime's subset stop a run with the name, wherever they are used
(the algorithm's file, a module it imports, a ``from QuantConnect... import``), never a bare error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from include.lean_local import catalog
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.shim_exports import exports
from include.lean_local.unsupported import LeanImportFinder, UnsupportedName, install, refusal_name, uninstall
from tests.include.lean_local.helpers import algo_log, run_subprocess, summary, write_run

HEADER = """
from AlgorithmImports import *
"""
BODY = """
class A(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8)
        self.set_cash(100000)
        self.add_equity("ZZSA", Resolution.DAILY)
"""


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        # called in initialize: an indicator the runtime lacks
        (HEADER + BODY + "        self.kc = KeltnerChannels(20, 2)\n", "KeltnerChannels"),
        # subclassed at import time
        (HEADER + "class Custom(PythonData):\n    pass\n" + BODY, "PythonData"),
        # imported from its .NET namespace, then used
        (
            "from QuantConnect.Indicators import AverageTrueRange\n" + HEADER + BODY + "        AverageTrueRange(14)\n",
            "AverageTrueRange",
        ),
        # a framework module of Lean's Python folders
        (
            "from Alphas.EmaCrossAlphaModel import EmaCrossAlphaModel\n" + HEADER + BODY,
            "Alphas.EmaCrossAlphaModel",
        ),
    ],
)
def test_an_unsupported_lean_name_stops_the_run_naming_it(tmp_path: Path, source: str, refused: str) -> None:
    done = run_subprocess(write_run(tmp_path, source))
    assert done.returncode == 1
    line = f"not supported by the local runtime: {refused}"
    assert line in done.stderr.splitlines()[-1], done.stderr[-2000:]
    assert line in (tmp_path / "results" / "log.txt").read_text()


def test_a_refusal_in_a_module_the_algorithm_imports_is_named(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "helpers.py").write_text(HEADER + "def window():\n    return AverageTrueRange(14)\n")
    source = HEADER + "from helpers import window\n" + BODY + "        window()\n"
    done = run_subprocess(write_run(tmp_path, source))
    assert done.returncode == 1
    assert "not supported by the local runtime: AverageTrueRange" in done.stderr.splitlines()[-1]


def test_naming_an_unsupported_type_is_harmless_and_the_run_completes(tmp_path: Path) -> None:
    source = (
        HEADER
        + "def keep(bars: List[TradeBar], window: KeltnerChannels = None) -> None:\n    pass\n"
        + BODY
        + "        assert not isinstance(self, KeltnerChannels)\n"
    )
    done = run_subprocess(write_run(tmp_path, source))
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary(tmp_path)["statistics"]["Total Orders"] == "0"
    assert "not supported" not in algo_log(tmp_path)


def test_implemented_names_are_the_runtime_s_and_the_rest_refuse() -> None:
    names = exports()
    assert names["QCAlgorithm"].__module__ == "include.lean_local.algorithm"
    assert not isinstance(names["SimpleMovingAverage"], UnsupportedName)
    assert isinstance(names["KeltnerChannels"], UnsupportedName)
    with pytest.raises(NotSupportedByLocalRuntime, match=r"KeltnerChannels\.upper_band"):
        _ = names["KeltnerChannels"].upper_band
    # Every name Lean's AlgorithmImports gives is there, implemented or refusing.
    assert set(catalog.algorithm_imports_names()) <= set(names)


def test_the_import_hook_is_removed_after_a_run() -> None:
    install()
    try:
        import QuantConnect.Indicators as indicators

        assert indicators.SimpleMovingAverage is exports()["SimpleMovingAverage"]
    finally:
        uninstall()
    assert "QuantConnect.Indicators" not in sys.modules and "QuantConnect" not in sys.modules
    # (Importing QuantConnect now would reach quantconnect-stubs, whose __init__ needs Python.NET.)
    assert not [finder for finder in sys.meta_path if isinstance(finder, LeanImportFinder)]


def test_refusal_names() -> None:
    assert refusal_name(NotSupportedByLocalRuntime("X")) == "X"
    assert refusal_name(NameError("name 'PythonData' is not defined", name="PythonData")) == "PythonData"
    assert refusal_name(NameError("name 'spelling' is not defined", name="spelling")) is None
    missing = ModuleNotFoundError("No module named 'cvxpy'", name="cvxpy")
    assert "cvxpy" in str(refusal_name(missing))


def test_the_catalog_is_what_the_pinned_stubs_say() -> None:
    """lean_names.json is generated from quantconnect-stubs (a test tool): regenerate it with
    ``python -m include.lean_local.catalog`` when the pinned stubs change."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "AlgorithmImports").is_dir():
        pytest.skip("quantconnect-stubs is not installed")
    assert catalog.dumps(catalog.generate(site)) == catalog.CATALOG_FILE.read_text(encoding="utf-8")


def _refused(tmp_path: Path, done: Any, refused: str) -> None:
    assert done.returncode == 1, done.stderr[-2000:]
    line = f"not supported by the local runtime: {refused}"
    assert line in done.stderr.splitlines()[-1], done.stderr[-2000:]
    assert line in (tmp_path / "results" / "log.txt").read_text()


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        # a member of Lean's QCAlgorithm the runtime lacks, named with its class
        ("        self.kch('ZZSA', 20, 2.0)\n", "QCAlgorithm.kch"),
        # a member of a Lean class the runtime implements in part (read on the class)
        ("        Symbol.create_future('ES', Market.CME, datetime(2019, 6, 21))\n", "Symbol.create_future"),
        # an enum member the runtime's enum lacks
        ("        x = OrderType.LIMIT_IF_TOUCHED\n", "OrderType.LIMIT_IF_TOUCHED"),
        # a call shape Lean's overloads have (the type first) and the runtime's signature lacks
        (
            "        self.history(TradeBar, ['ZZSA'], 5, Resolution.DAILY)\n",
            "QCAlgorithm.history (a call with 4 positional arguments)",
        ),
    ],
)
def test_lean_members_and_call_shapes_the_runtime_lacks_are_named(tmp_path: Path, body: str, refused: str) -> None:
    _refused(tmp_path, run_subprocess(write_run(tmp_path, HEADER + BODY + body)), refused)


def test_a_lean_member_used_in_an_imported_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    kind = "def kind():\n    return OrderType.LIMIT_IF_TOUCHED\n"
    (tmp_path / "project" / "orders_util.py").write_text(HEADER + kind)
    source = HEADER + "from orders_util import kind\n" + BODY + "        kind()\n"
    done = run_subprocess(write_run(tmp_path, source))
    _refused(tmp_path, done, "OrderType.LIMIT_IF_TOUCHED")
    assert "orders_util.py" in done.stderr  # the traceback shows where


def test_a_lean_name_in_an_imported_module_without_algorithm_imports_is_named(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "bands.py").write_text("def bands():\n    return KeltnerChannels(20, 2)\n")
    source = HEADER + "from bands import bands\n" + BODY + "        bands()\n"
    _refused(tmp_path, run_subprocess(write_run(tmp_path, source)), "KeltnerChannels")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # the algorithm's own attribute, misspelt: not a Lean member
        ("        self.fast = 1\n        self.fsat += 1\n", "AttributeError: 'A' object has no attribute 'fsat'"),
        # a name that is not Lean's, in the algorithm's file
        ("        undefined_helper()\n", "NameError: name 'undefined_helper' is not defined"),
        # a Lean class read for a member Lean's class does not have either
        ("        Symbol.no_such_member\n", "AttributeError: type object 'Symbol' has no attribute 'no_such_member'"),
        # a call shape no overload of Lean's has
        ("        self.set_cash(1, 2, 3, 4, 5)\n", "TypeError: QCAlgorithm.set_cash() takes"),
        # a TypeError of the algorithm's own code
        ("        len(5)\n", "TypeError: object of type 'int' has no len()"),
    ],
)
def test_the_algorithm_s_own_errors_are_never_called_refusals(tmp_path: Path, body: str, error: str) -> None:
    done = run_subprocess(write_run(tmp_path, HEADER + BODY + body))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(f"error: {error}"), done.stderr[-2000:]
    assert "not supported by the local runtime" not in done.stderr
    assert "not supported by the local runtime" not in (tmp_path / "results" / "log.txt").read_text()
    assert "Traceback" in done.stderr


def test_a_user_error_in_an_imported_module_is_not_a_refusal(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "util.py").write_text(HEADER + "def f():\n    return not_defined_anywhere\n")
    source = HEADER + "from util import f\n" + BODY + "        f()\n"
    done = run_subprocess(write_run(tmp_path, source))
    assert done.returncode == 1
    assert "NameError: name 'not_defined_anywhere' is not defined" in done.stderr.splitlines()[-1]
    assert "not supported by the local runtime" not in done.stderr
