"""Lean's shortable providers (``QuantConnect.Data.Shortable``): how much of a security may be shorted."""

from __future__ import annotations

import datetime as dt
from typing import Any


class NullShortableProvider:
    """Lean's default (``DefaultBrokerageModel.GetShortableProvider``): any quantity may be shorted, at no fee
    or rebate; subclassable from Python."""

    def fee_rate(self, symbol: Any, local_time: dt.datetime) -> float:
        return 0.0

    def rebate_rate(self, symbol: Any, local_time: dt.datetime) -> float:
        return 0.0

    def shortable_quantity(self, symbol: Any, local_time: dt.datetime) -> int | None:
        return None  # no limit
