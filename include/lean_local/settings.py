"""Lean's ``AlgorithmSettings``: the settings daily US-equity algorithms read or set."""

from __future__ import annotations

import datetime as dt

from include.lean_local.enums import Resolution
from include.lean_local.errors import SupportedSubset


class AlgorithmSettings(SupportedSubset):
    def __init__(self) -> None:
        self.free_portfolio_value_percentage = 0.0025
        self.free_portfolio_value: float | None = None
        self.minimum_order_margin_portfolio_percentage = 0.001
        self.max_absolute_portfolio_target_percentage = 1_000_000_000.0
        self.min_absolute_portfolio_target_percentage = 0.0000000001
        self.liquidate_enabled = True
        self.daily_precise_end_time = True
        self.seed_initial_prices = False
        self.stale_price_time_span = dt.timedelta(hours=1)
        self.warmup_resolution: Resolution | None = None
        # the framework's PortfolioConstructionModel rebalance flags (None: the model's own)
        self.rebalance_portfolio_on_insight_changes: bool | None = None
        self.rebalance_portfolio_on_security_changes: bool | None = None
