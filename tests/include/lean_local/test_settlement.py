"""Settlement models (settlement.py): ImmediateSettlementModel by default; a Python model and a cash-book change
refused by name."""

from __future__ import annotations

import json
from pathlib import Path

from tests.include.lean_local.helpers import run_inprocess, write_run

SETTLEMENT = """
from AlgorithmImports import *
class Model:
    def apply_funds(self, parameters):
        pass
    def scan(self, parameters):
        pass
class Algo(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8); self.set_cash(100000)
        sec = self.add_equity("ZZSA", Resolution.DAILY)
        self.seen = {"default": type(sec.settlement_model).__name__, "usd": Currencies.USD}
        sec.set_settlement_model(ImmediateSettlementModel())
        for name, call in (("custom", lambda: sec.set_settlement_model(Model())),
                           ("add", lambda: self.portfolio.cash_book[Currencies.USD].add_amount(1)),
                           ("apply", lambda: ImmediateSettlementModel().apply_funds(ApplyFundsSettlementModelParameters(
                               self.portfolio, sec, self.utc_time, CashAmount(1, "USD"), None)))):
            try:
                call()
            except Exception as exc:
                self.seen[name] = type(exc).__name__
        ImmediateSettlementModel().scan(ScanSettlementModelParameters(self.portfolio, sec, self.utc_time))
        self.seen["cash"] = self.portfolio.cash_book[Currencies.USD].amount
        self.seen["unsettled"] = ImmediateSettlementModel().get_unsettled_cash()
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_settlement_model_is_immediate_and_custom_models_are_refused(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, SETTLEMENT, name="settlement")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen == {
        "default": "ImmediateSettlementModel",
        "usd": "USD",
        "custom": "NotSupportedByLocalRuntime",
        "add": "NotSupportedByLocalRuntime",
        "apply": "NotSupportedByLocalRuntime",  # through Cash.add_amount
        "cash": 100000,
        "unsettled": None,
    }
