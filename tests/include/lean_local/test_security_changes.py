"""Lean's SecurityChanges and OnSecuritiesChanged: securities added by add_equity in initialize are reported
(Lean's user-defined universe) in the run's first time slice, later additions at the next step."""

from __future__ import annotations

import json
from pathlib import Path

from include.lean_local.security_changes import SecurityChanges, SecurityChangesConstructor
from include.lean_local.symbols import SecurityIdentifier, Symbol
from tests.include.lean_local.helpers import run_inprocess, write_run


class _Sec:
    def __init__(self, ticker: str) -> None:
        self.symbol = Symbol(SecurityIdentifier(ticker, None), ticker)


def test_changes_are_sorted_by_ticker_filtered_and_additions_win_over_removals() -> None:
    a, b, c = _Sec("SPY"), _Sec("AAPL"), _Sec("IBM")
    ctor = SecurityChangesConstructor()
    ctor.add(a, False)
    ctor.add(b, False)
    ctor.add(c, True)
    changes = ctor.flush()
    assert [s.symbol.value for s in changes.added_securities] == ["AAPL", "IBM", "SPY"]
    assert changes.count == 3
    user = SecurityChanges(changes)
    user.filter_internal_securities = True
    assert [s.symbol.value for s in user.added_securities] == ["AAPL", "SPY"]
    assert ctor.flush() is SecurityChanges.NONE
    removal = SecurityChanges.create([], [a], [], [])
    merged = removal + SecurityChanges.create([a], [], [], [])
    assert merged.removed_securities == [] and merged.added_securities == [a]
    assert str(SecurityChanges.NONE) == "SecurityChanges: None"


CHANGES = """
from AlgorithmImports import *
class Changes(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 6)
        self.add_equity("ZZSG", Resolution.DAILY)
        self.seen = []
        self.added_later = False
    def on_data(self, data):
        if not self.added_later:
            self.added_later = True
            self.add_equity("ZZSG", Resolution.DAILY)  # already there: no change
    def on_securities_changed(self, changes):
        self.seen.append([str(self.time), [s.symbol.value for s in changes.added_securities],
                          [s.symbol.value for s in changes.removed_securities]])
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_securities_added_in_initialize_are_reported_at_the_first_midnight(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, CHANGES, name="changes")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen == [["2019-03-01 00:00:00", ["ZZSG"], []]]
