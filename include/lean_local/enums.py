"""Lean's global enums and constants (``QuantConnect`` namespace, Common/Global.cs): the subset daily US-equity
algorithms use."""

from __future__ import annotations

from enum import IntEnum


class Resolution(IntEnum):
    TICK = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAILY = 4


class DataNormalizationMode(IntEnum):
    RAW = 0
    ADJUSTED = 1
    SPLIT_ADJUSTED = 2
    TOTAL_RETURN = 3


class SecurityType(IntEnum):
    BASE = 0
    EQUITY = 1
    CRYPTO = 7  # a name only (a brokerage model's default_markets key): a crypto security is refused


class DelistingType(IntEnum):
    WARNING = 0
    DELISTED = 1


class SplitType(IntEnum):
    WARNING = 0
    SPLIT_OCCURRED = 1


class AccountType(IntEnum):
    MARGIN = 0
    CASH = 1


class AlgorithmMode(IntEnum):
    """``QuantConnect.AlgorithmMode`` (Common/Global.cs)."""

    LIVE = 0
    OPTIMIZATION = 1
    BACKTESTING = 2
    RESEARCH = 3

    def __str__(self) -> str:
        return self.name.capitalize()  # .NET's member name


class DeploymentTarget(IntEnum):
    """``QuantConnect.DeploymentTarget`` (Common/Global.cs)."""

    CLOUD_PLATFORM = 0
    LOCAL_PLATFORM = 1
    PRIVATE_CLOUD_PLATFORM = 2

    def __str__(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))  # .NET's member name


class DayOfWeek(IntEnum):
    """``System.DayOfWeek``."""

    SUNDAY = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6


class Currencies:
    """``QuantConnect.Currencies``: the account currency (the runtime's only one)."""

    USD = "USD"


class Market:
    USA = "usa"
    BINANCE = "binance"  # a name only (default_markets): any market but USA is refused where it is used
