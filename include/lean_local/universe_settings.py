"""``algorithm.universe_settings`` (Lean's ``UniverseSettings``): the defaults a security added without them takes
(``add_equity``'s resolution and data normalization mode), and Lean's local-disk providers of map and factor
files an algorithm may build. Universes themselves are outside the runtime's subset (``add_universe`` refuses)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from include.lean_local.enums import DataNormalizationMode, Resolution
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset


class UniverseSettings(SupportedSubset):
    """Lean's defaults (``Common/Data/UniverseSelection/UniverseSettings.cs``): minute resolution, adjusted
    prices, leverage unset (equities: 2), fill-forward, regular hours."""

    def __init__(self, universe_settings: UniverseSettings | None = None) -> None:
        self.schedule = Schedule()
        if universe_settings is not None:  # Lean's copy constructor
            for name, value in vars(universe_settings).items():
                setattr(self, name, value)
            self.schedule = Schedule(universe_settings.schedule.rule)
            return
        self.resolution = Resolution.MINUTE
        self.data_normalization_mode = DataNormalizationMode.ADJUSTED
        self.leverage = 0.0  # Security.NullLeverage
        self.fill_forward = True
        self.extended_market_hours = False
        self.minimum_time_in_universe = dt.timedelta(days=1)
        self.contract_depth_offset = 0
        self.asynchronous = False


class Schedule(SupportedSubset):
    """``UniverseSettings.schedule`` (Lean's ``Common/Data/UniverseSelection/Schedule.cs``): the date rule a
    universe selects on (include/lean_local/universes.py)."""

    def __init__(self, rule: Any = None) -> None:
        self.rule = rule

    @property
    def initialized(self) -> bool:
        return self.rule is not None

    def on(self, date_rule: Any) -> None:
        self.rule = date_rule


class DefaultDataProvider(SupportedSubset):
    """Lean's ``DefaultDataProvider`` (files of the data folder); the runtime reads the data folder itself."""


class LocalDiskMapFileProvider(SupportedSubset):
    def initialize(self, data_provider: Any) -> None:
        self._data_provider = data_provider


class LocalDiskFactorFileProvider(SupportedSubset):
    def initialize(self, map_file_provider: Any, data_provider: Any) -> None:
        self._map_file_provider = map_file_provider
        self._data_provider = data_provider

    def get(self, symbol: Any) -> CorporateFactorProvider:
        return CorporateFactorProvider(symbol)


class CorporateFactorProvider(SupportedSubset):
    """A security's factor file (``Common/Data/Auxiliary/CorporateFactorProvider.cs``); its price factors are not
    implemented (refused by name when asked)."""

    def __init__(self, symbol: Any) -> None:
        self.symbol = symbol

    def get_price_factor(self, *args: Any, **kwargs: Any) -> float:
        raise NotSupportedByLocalRuntime("CorporateFactorProvider.get_price_factor")
