"""Lean's settlement models (``Common/Securities``), the part a margin account's US equity reads.

* ``ImmediateSettlementModel`` (DefaultBrokerageModel.GetSettlementModel for a margin account): a fill's funds
  are the portfolio's at once; ``scan`` does nothing. The runtime's fills apply funds this way directly.
* ``security.set_settlement_model(model)``: only an ImmediateSettlementModel. A Python model is refused by name:
  Lean scans it on every time slice at most once an hour (AlgorithmManager, the benchmark's hourly slices too,
  which the runtime does not replay) and applies each fill's funds through it.
* ``ApplyFundsSettlementModelParameters``, ``ScanSettlementModelParameters``: the parameters Lean passes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from include.lean_local.errors import NotSupportedByLocalRuntime


class ApplyFundsSettlementModelParameters:
    """``ApplyFundsSettlementModelParameters(portfolio, security, application_time_utc, cash_amount, fill)``."""

    def __init__(
        self, portfolio: Any, security: Any, application_time_utc: dt.datetime, cash_amount: Any, fill: Any
    ) -> None:
        self.portfolio = portfolio
        self.security = security
        self.utc_time = application_time_utc
        self.cash_amount = cash_amount
        self.fill = fill


class ScanSettlementModelParameters:
    """``ScanSettlementModelParameters(portfolio, security, time_utc)``."""

    def __init__(self, portfolio: Any, security: Any, time_utc: dt.datetime) -> None:
        self.portfolio = portfolio
        self.security = security
        self.utc_time = time_utc


class ImmediateSettlementModel:
    """``ImmediateSettlementModel``: the funds are added to the cash book at once."""

    def apply_funds(self, apply_funds_parameters: ApplyFundsSettlementModelParameters) -> None:
        amount = apply_funds_parameters.cash_amount
        apply_funds_parameters.portfolio.cash_book[amount.currency].add_amount(amount.amount)

    def scan(self, settlement_parameters: ScanSettlementModelParameters) -> None:
        pass

    def get_unsettled_cash(self) -> Any:
        return None


def check_model(model: Any) -> None:
    """``set_settlement_model``: Lean's ImmediateSettlementModel only (see the module's notes)."""
    if type(model) is not ImmediateSettlementModel:
        raise NotSupportedByLocalRuntime(
            f"Security.set_settlement_model({type(model).__name__}) (only ImmediateSettlementModel: Lean scans a "
            "custom model on every hourly slice and applies each fill's funds through it)"
        )
