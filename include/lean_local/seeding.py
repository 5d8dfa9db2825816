"""Lean's security seeders and initializers an algorithm composes (``FuncSecuritySeeder``,
``FuncSecurityInitializer``, ``CompositeSecurityInitializer``), and ``QCAlgorithm.get_last_known_prices``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.lean_local.errors import SupportedSubset

if TYPE_CHECKING:
    from include.lean_local.engine import Engine


class FuncSecuritySeeder(SupportedSubset):
    """Lean's ``FuncSecuritySeeder``: a function of a security giving its last known data, each set as its market
    price (``SeedSecurity``)."""

    def __init__(self, seed_function: Any) -> None:
        self._seed_function = seed_function

    def seed_security(self, security: Any) -> bool:
        data = self._seed_function(security)
        if data is None:
            return True
        for point in data if isinstance(data, list | tuple) else [data]:
            if point is not None:
                security.set_market_price(point)
        return True


class FuncSecurityInitializer(SupportedSubset):
    """Lean's ``FuncSecurityInitializer``: a function run on each security added."""

    def __init__(self, initializer: Any) -> None:
        self._initializer = initializer

    def initialize(self, security: Any) -> None:
        self._initializer(security)


class CompositeSecurityInitializer(SupportedSubset):
    """Lean's ``CompositeSecurityInitializer``: its initializers run in order."""

    def __init__(self, *initializers: Any) -> None:
        self._initializers = list(initializers)

    def initialize(self, security: Any) -> None:
        for initializer in self._initializers:
            fn = initializer if callable(initializer) else initializer.initialize
            fn(security)


def last_known_prices(engine: Engine, security: Any) -> list[Any]:
    """Lean's ``GetLastKnownPrices(security)``: the last daily bar that closed by now, in the security's data
    normalization (its subscription's), as a one-element list (none without data)."""
    symbol = engine.securities.to_symbol(getattr(security, "symbol", security))
    bars = engine.history_bars(symbol, 1)
    return list(bars[-1:])
