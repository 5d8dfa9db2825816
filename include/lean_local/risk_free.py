"""Lean's risk-free interest rate models an algorithm makes (``QuantConnect.Data``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


class FuncRiskFreeRateInterestRateModel:
    """The rate a function of the date gives (``Common/Data/FuncRiskFreeRateInterestRateModel.cs``)."""

    def __init__(self, get_interest_rate_func: Callable[[dt.datetime], Any]) -> None:
        if not callable(get_interest_rate_func):
            raise TypeError("FuncRiskFreeRateInterestRateModel() needs a function of the date")
        self._get_interest_rate_func = get_interest_rate_func

    def get_interest_rate(self, date: dt.datetime) -> float:
        return float(self._get_interest_rate_func(date))
