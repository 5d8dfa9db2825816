"""The portfolio: the ledger of cash and holdings (the accounting of Lean's SecurityPortfolioManager), the
algorithm's view of it (``algorithm.portfolio``), and ``PortfolioTarget``."""

from __future__ import annotations

from collections.abc import Iterator, ValuesView
from typing import TYPE_CHECKING, Any, Protocol

from include.lean_local.enums import DataNormalizationMode
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset
from include.lean_local.market_data import KeyValuePair, TradeBar
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.market_data import Dividend, Split
    from include.lean_local.securities import Security, SecurityHolding, SecurityRegistry
    from include.lean_local.settings import AlgorithmSettings


class PortfolioLedger:
    """Cash, the invested securities, fees, realized profit and sale volume; the portfolio value is cached
    until a price or a holding changes (whoever changes one calls ``invalidate``)."""

    def __init__(self) -> None:
        self.cash = 100000.0
        self.total_fees = 0.0
        self.profit = 0.0
        self.sales_volume = 0.0
        self.trades: list[float] = []  # each closing fill's transaction record: the trade statistics
        self.cash_locked = False  # a live run's cash comes from its saved state: set_cash no longer applies
        self._invested: dict[Symbol, Security] = {}
        self._value: float | None = None

    def invested(self) -> ValuesView[Security]:
        return self._invested.values()

    def track(self, security: Security) -> None:
        """The security's holding was set: keep the invested set and the value current."""
        if security.holdings.quantity:
            self._invested[security.symbol] = security
        else:
            self._invested.pop(security.symbol, None)
        self._value = None

    def invalidate(self) -> None:
        self._value = None

    def total_portfolio_value(self) -> float:
        if self._value is None:
            self._value = self.cash + sum(s.holdings.quantity * s.price for s in self._invested.values())
        return self._value

    def total_margin_used(self) -> float:
        return sum(abs(s.holdings.quantity * s.price) / s.leverage for s in self._invested.values())

    def total_portfolio_value_less_free_buffer(self, settings: AlgorithmSettings) -> float:
        tpv = self.total_portfolio_value()
        free = (
            settings.free_portfolio_value
            if settings.free_portfolio_value is not None
            else tpv * settings.free_portfolio_value_percentage
        )
        return tpv - free

    def apply_fill(self, security: Security, quantity: float, price: float, fee: float) -> None:
        """A fill of ``quantity`` at ``price`` paying ``fee``: average price, realized profit (a closing fill is
        a trade), cash, fees and sale volume."""
        holding = security.holdings
        q0, a0 = holding.quantity, holding.average_price
        if q0 == 0 or (q0 > 0) == (quantity > 0):
            new_q = q0 + quantity
            holding.average_price = (q0 * a0 + quantity * price) / new_q
            holding.quantity = new_q
        else:
            closed = min(abs(quantity), abs(q0))
            profit = (price - a0) * closed * (1 if q0 > 0 else -1)
            holding.profit += profit
            holding.last_trade_profit = profit
            self.profit += profit
            # Lean's transaction record: the closing fill's profit less twice its fee, an estimate of both
            # fills' fees (Common/Securities/SecurityPortfolioModel.cs L95-99)
            self.trades.append(profit - 2 * fee)
            new_q = q0 + quantity
            holding.quantity = new_q
            if new_q == 0:
                holding.average_price = 0.0
            elif (new_q > 0) != (q0 > 0):
                holding.average_price = price
        if abs(holding.quantity) < 1e-12:
            holding.quantity = 0.0
        holding.total_fees += fee
        holding.total_sale_volume += abs(quantity) * price
        self.sales_volume += abs(quantity) * price
        self.cash -= quantity * price + fee
        self.total_fees += fee
        self.track(security)

    def apply_dividend(self, security: Security, dividend: Dividend) -> None:
        """Cash for the holder in Raw and SplitAdjusted modes; adjusted prices already carry it."""
        if security.data_normalization_mode not in (DataNormalizationMode.RAW, DataNormalizationMode.SPLIT_ADJUSTED):
            return
        total = security.holdings.quantity * dividend.distribution
        if total:
            self.cash += total
            self.profit += total
            security.holdings.total_dividends += total
            security.holdings.profit += total
            self._value = None

    def apply_split(self, security: Security, split: Split) -> None:
        """A split on Raw prices (other modes' prices are split-adjusted; the caller checks): quantity / factor,
        average price x factor, the fractional share paid out in cash, and the last price scaled so the
        portfolio value holds."""
        factor = split.split_factor
        fraction = security.holdings.apply_split(factor)
        bar = security.bar
        if bar is not None:
            security.bar = TradeBar(
                bar.time,
                bar.symbol,
                bar.open * factor,
                bar.high * factor,
                bar.low * factor,
                bar.close * factor,
                bar.volume / factor,
                end_time=bar.end_time,
                is_fill_forward=bar.is_fill_forward,
            )
            price = security.bar.close
        else:
            price = split.reference_price * factor
        self.cash += fraction * price
        self._value = None


class SettingsOwner(Protocol):
    settings: AlgorithmSettings


class SecurityPortfolioManager(SupportedSubset):
    """``algorithm.portfolio``: holdings by Symbol or ticker and the portfolio totals."""

    def __init__(self, ledger: PortfolioLedger, securities: SecurityRegistry, algorithm: SettingsOwner) -> None:
        self._ledger = ledger
        self._securities = securities
        self._algorithm = algorithm
        self.cash_book = CashBook(self)

    @property
    def cash(self) -> float:
        return self._ledger.cash

    @cash.setter
    def cash(self, value: float) -> None:
        self._ledger.cash = value
        self._ledger.invalidate()

    @property
    def total_fees(self) -> float:
        return self._ledger.total_fees

    @total_fees.setter
    def total_fees(self, value: float) -> None:
        self._ledger.total_fees = value

    def set_cash(self, symbol: Any = None, cash: Any = None, conversion_rate: Any = None) -> None:
        """Lean's ``SetCash(cash)`` or ``SetCash(symbol, cash, conversion_rate)`` (only the account currency, USD)."""
        if isinstance(symbol, str):
            if symbol.upper() != "USD":
                raise NotSupportedByLocalRuntime(f"portfolio.set_cash in {symbol}")
        elif cash is None:
            cash = symbol
        elif symbol is not None:
            raise TypeError("set_cash() takes (cash) or (symbol, cash, conversion_rate)")
        if cash is None:
            raise TypeError("set_cash() needs cash")
        self._ledger.cash = float(cash)

    def __getitem__(self, key: Any) -> SecurityHolding:
        return self._securities.security(key).holdings

    def __contains__(self, key: Any) -> bool:
        return self._securities.contains(key)

    def contains_key(self, symbol: Any = None, *, key: Any = None) -> bool:
        """``contains_key(symbol)``, or ``key=`` (the name of Lean's dictionary base)."""
        return self._securities.contains(symbol if key is None else key)

    def __iter__(self) -> Iterator[KeyValuePair]:
        return (KeyValuePair(s.symbol, s.holdings) for s in self._securities.as_list())

    def keys(self) -> list[Symbol]:
        return [s.symbol for s in self._securities.as_list()]

    def values(self) -> list[SecurityHolding]:
        return [s.holdings for s in self._securities.as_list()]

    def items(self) -> list[tuple[Symbol, SecurityHolding]]:
        return [(s.symbol, s.holdings) for s in self._securities.as_list()]

    def __len__(self) -> int:
        return len(self._securities.as_list())

    @property
    def count(self) -> int:
        return len(self)

    @property
    def invested(self) -> bool:
        return any(s.holdings.quantity != 0 for s in self._ledger.invested())

    @property
    def total_holdings_value(self) -> float:
        return sum(abs(s.holdings.quantity * s.price) for s in self._ledger.invested())

    @property
    def total_absolute_holdings_cost(self) -> float:
        return sum(abs(s.holdings.holdings_cost) for s in self._ledger.invested())

    @property
    def total_unrealized_profit(self) -> float:
        return sum(s.holdings.unrealized_profit for s in self._ledger.invested())

    total_unrealised_profit = total_unrealized_profit

    @property
    def total_portfolio_value(self) -> float:
        return self._ledger.total_portfolio_value()

    @property
    def total_profit(self) -> float:
        return self._ledger.profit

    @property
    def total_net_profit(self) -> float:
        return self._ledger.profit - self._ledger.total_fees

    @property
    def total_margin_used(self) -> float:
        return self._ledger.total_margin_used()

    @property
    def margin_remaining(self) -> float:
        return self.total_portfolio_value - self.total_margin_used

    @property
    def total_portfolio_value_less_free_buffer(self) -> float:
        return self._ledger.total_portfolio_value_less_free_buffer(self._algorithm.settings)


class Cash:
    """The account currency's entry of the cash book: a view of the portfolio's cash (``add_amount`` and
    ``set_amount`` are refused by name, below)."""

    def __init__(self, symbol: str, portfolio: SecurityPortfolioManager) -> None:
        self.symbol = symbol
        self._portfolio = portfolio
        self.conversion_rate = 1.0

    @property
    def amount(self) -> float:
        return self._portfolio.cash

    def add_amount(self, amount: float) -> float:
        raise NotSupportedByLocalRuntime(_CASH_CHANGE)

    def set_amount(self, amount: float) -> None:
        raise NotSupportedByLocalRuntime(_CASH_CHANGE)

    @property
    def value_in_account_currency(self) -> float:
        return self.amount


# SetCustomSettlementModelRegressionAlgorithm adds cash in its first on_data: End Equity matches Lean's, but Lean's
# published daily-return statistics (Sharpe, deviation, alpha/beta) place that change in a later daily sample
# than the runtime's sampling does; why is not known, so a cash change outside a fill stays refused.
_CASH_CHANGE = "Cash.add_amount/set_amount (a cash-book change outside a fill: Lean's sampling of it is not reproduced)"


class CashBook(dict):
    def __init__(self, portfolio: SecurityPortfolioManager) -> None:
        super().__init__()
        self._portfolio = portfolio

    def __getitem__(self, key: str) -> Cash:
        if key != "USD":
            raise NotSupportedByLocalRuntime(f"cash_book[{key!r}] (only USD)")
        return Cash("USD", self._portfolio)

    def __contains__(self, key: object) -> bool:
        return key == "USD"

    def keys(self) -> Any:
        return ["USD"]

    @property
    def total_value_in_account_currency(self) -> float:
        return self._portfolio.cash

    @property
    def account_currency(self) -> str:
        return "USD"


class PortfolioTarget(SupportedSubset):
    """``PortfolioTarget(symbol, quantity)``; in ``set_holdings([...])`` the quantity is a portfolio percentage."""

    def __init__(self, symbol: Any, quantity: Any = None, tag: str = "", *, insight_direction: Any = None) -> None:
        if insight_direction is not None:
            raise NotSupportedByLocalRuntime("PortfolioTarget(symbol, insight_direction)")
        if quantity is None:
            raise TypeError("PortfolioTarget() needs a quantity")
        self.symbol = symbol
        self.quantity = float(quantity)
        self.tag = tag

    @staticmethod
    def percent(
        algorithm: Any, symbol: Any, percent: float, return_delta_quantity: bool = False, tag: str = ""
    ) -> PortfolioTarget | None:
        engine = algorithm._engine
        qty = engine.margin.target_quantity(symbol, float(percent), delta=return_delta_quantity)
        if qty is None:
            return None
        return PortfolioTarget(engine.securities.to_symbol(symbol), qty, tag)

    def __repr__(self) -> str:
        return f"{self.symbol}: {self.quantity:g}"
