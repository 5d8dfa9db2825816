"""Lean API the local runtime gained for Lean's regression algorithms (issue #16): subscriptions, stop-limit
orders, indicators and slippage models, each checked against values computed from Lean's formulas."""

from __future__ import annotations

import json
from pathlib import Path

from tests.include.lean_local.helpers import run_inprocess, write_run

SUBSCRIPTIONS = """
from AlgorithmImports import *
class Subs(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 5)
        sym = self.add_equity("ZZSG", Resolution.DAILY, data_normalization_mode=DataNormalizationMode.RAW).symbol
        service = self.subscription_manager.subscription_data_config_service
        configs = service.get_subscription_data_configs(sym)
        everything = service.get_subscription_data_configs()
        unknown = service.get_subscription_data_configs(Symbol.create("ZZZZ", SecurityType.EQUITY, Market.USA))
        c = configs[0]
        self.object_store.save("configs", json.dumps([
            len(configs), len(everything), len(unknown), self.subscription_manager.count,
            int(c.resolution), int(c.data_normalization_mode), c.symbol == sym, c.extended_market_hours,
            c.is_internal_feed, c.type.__name__, str(c),
        ]))
"""


def test_subscription_manager_lists_each_securitys_daily_config(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, SUBSCRIPTIONS, name="subs")) == 0
    saved = json.loads((tmp_path / "storage" / "configs").read_text())
    assert saved == [
        1,
        1,
        0,
        1,
        4,
        0,
        True,
        False,
        False,
        "TradeBar",
        "ZZSG,#0,ZZSG,Daily,TradeBar,Trade,Raw,OpenInterest",
    ]
