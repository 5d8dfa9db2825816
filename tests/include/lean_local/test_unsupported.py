"""Lean names outside the local runtime's subset stop a run with the name, wherever they are used
(the algorithm's file, a module it imports, a ``from QuantConnect... import``), never a bare error."""

from __future__ import annotations

import sys
from pathlib import Path

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
        (HEADER + BODY + "        self.bb = BollingerBands(20, 2)\n", "BollingerBands"),
        # subclassed at import time
        (HEADER + "class Custom(PythonData):\n    pass\n" + BODY, "PythonData"),
        # imported from its .NET namespace, then used
        (
            "from QuantConnect.Indicators import RollingWindow\n" + HEADER + BODY + "        RollingWindow[float](5)\n",
            "RollingWindow",
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
    (tmp_path / "project" / "helpers.py").write_text(HEADER + "def window():\n    return RollingWindow[float](5)\n")
    source = HEADER + "from helpers import window\n" + BODY + "        window()\n"
    done = run_subprocess(write_run(tmp_path, source))
    assert done.returncode == 1
    assert "not supported by the local runtime: RollingWindow" in done.stderr.splitlines()[-1]


def test_naming_an_unsupported_type_is_harmless_and_the_run_completes(tmp_path: Path) -> None:
    source = (
        HEADER
        + "def keep(bars: List[TradeBar], window: RollingWindow = None) -> None:\n    pass\n"
        + BODY
        + "        assert not isinstance(self, BollingerBands)\n"
    )
    done = run_subprocess(write_run(tmp_path, source))
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary(tmp_path)["statistics"]["Total Orders"] == "0"
    assert "not supported" not in algo_log(tmp_path)


def test_implemented_names_are_the_runtime_s_and_the_rest_refuse() -> None:
    names = exports()
    assert names["QCAlgorithm"].__module__ == "include.lean_local.algorithm"
    assert not isinstance(names["SimpleMovingAverage"], UnsupportedName)
    assert isinstance(names["BollingerBands"], UnsupportedName)
    with pytest.raises(NotSupportedByLocalRuntime, match=r"BollingerBands\.upper_band"):
        _ = names["BollingerBands"].upper_band
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
