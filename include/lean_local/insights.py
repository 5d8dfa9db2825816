"""Lean's insights (``QuantConnect.Algorithm.Framework.Alphas``) an algorithm emits with ``emit_insights``.

Without a portfolio construction model (the runtime implements none) an insight makes no order and Lean's
summary statistics do not use insights: the runtime records them. Only price insights over a period are
implemented; the other forms refuse by name.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum
from typing import Any

from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset


class InsightDirection(IntEnum):
    DOWN = -1
    FLAT = 0
    UP = 1


class InsightType(IntEnum):
    PRICE = 0
    VOLATILITY = 1


class Insight(SupportedSubset):
    def __init__(
        self,
        symbol: Any,
        period: dt.timedelta,
        type: InsightType,
        direction: InsightDirection,
        magnitude: float | None = None,
        confidence: float | None = None,
        source_model: str | None = None,
        weight: float | None = None,
        tag: str = "",
    ) -> None:
        """Lean's ``Insight(symbol, period, type, direction[, magnitude, confidence, source_model, weight,
        tag])``; the other forms (an expiry function, a generated time) refuse by name."""
        if not isinstance(period, dt.timedelta):
            raise NotSupportedByLocalRuntime("Insight with an expiry function (only a period)")
        self.symbol = symbol
        self.period = period
        self.type = InsightType(int(type))
        self.direction = InsightDirection(int(direction))
        self.magnitude = magnitude
        self.confidence = confidence
        self.source_model = source_model
        self.weight = weight
        self.tag = tag
        self.generated_time_utc: dt.datetime | None = None

    @staticmethod
    def price(
        symbol: Any,
        *args: Any,
        period: dt.timedelta | None = None,
        resolution: Any = None,
        bar_count: int | None = None,
        close_time_local: Any = None,
        expiry_func: Any = None,
        direction: Any = None,
        magnitude: float | None = None,
        confidence: float | None = None,
        source_model: str | None = None,
        weight: float | None = None,
        tag: str = "",
    ) -> Insight:
        """Lean's ``Insight.Price(symbol, period, direction[, magnitude, confidence, source_model, weight,
        tag])``; the resolution/bar-count, close-time and expiry-function forms refuse by name."""
        if resolution is not None or bar_count is not None or (args and not isinstance(args[0], dt.timedelta)):
            raise NotSupportedByLocalRuntime("Insight.price (only the form with a period, a timedelta)")
        if close_time_local is not None or expiry_func is not None:
            raise NotSupportedByLocalRuntime("Insight.price (only the form with a period, a timedelta)")
        names = ("period", "direction", "magnitude", "confidence", "source_model", "weight", "tag")
        given: dict[str, Any] = {
            "period": period,
            "direction": direction,
            "magnitude": magnitude,
            "confidence": confidence,
            "source_model": source_model,
            "weight": weight,
            "tag": tag or None,
        }
        if len(args) > len(names):
            raise TypeError(f"price() takes at most {len(names) + 1} positional arguments")
        for name, value in zip(names, args, strict=False):
            if given[name] is not None:
                raise TypeError(f"price() got multiple values for argument '{name}'")
            given[name] = value
        if given["period"] is None or given["direction"] is None:
            raise TypeError("price() needs a period and a direction")
        return Insight(
            symbol,
            given["period"],
            InsightType.PRICE,
            given["direction"],
            given["magnitude"],
            given["confidence"],
            given["source_model"],
            given["weight"],
            given["tag"] or "",
        )

    def __repr__(self) -> str:
        return f"{self.symbol}: {self.type.name.title()} {self.direction.name.title()} within {self.period}"
