"""The trading API of ``QCAlgorithm`` (Lean's QCAlgorithm.Trading.cs): orders, liquidation, and portfolio
targets (``set_holdings``).

A market order sent while the market is closed becomes MarketOnOpen, in backtest and live alike
(Lean ``Algorithm/QCAlgorithm.Trading.cs`` L245-258). On daily data Lean also turns a backtest's market order
into MarketOnClose during market hours (MarketOnOpen near the close), so it does not fill at the stale previous
close (L261-280, backtest only); a live market order fills at once at the latest price.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from include.lean_local.orders import OrderTicket, OrderType
from include.lean_local.portfolio import PortfolioTarget
from include.lean_local.sessions import local_to_utc
from include.lean_local.symbols import Symbol
from include.lean_local.transactions import MOC_BUFFER

if TYPE_CHECKING:
    from include.lean_local.engine import Engine
    from include.lean_local.settings import AlgorithmSettings


class TradingApi:
    """Mixed into QCAlgorithm, whose state and logging it uses."""

    if TYPE_CHECKING:
        _engine: Engine
        _warned_market_on_open: bool
        _warned_daily_market_order: bool
        settings: AlgorithmSettings
        time: dt.datetime
        utc_time: dt.datetime

        def debug(self, message: Any) -> None: ...

        def error(self, message: Any) -> None: ...

    def _daily_market_order_type(self) -> OrderType:
        engine = self._engine
        if not engine.exchange_open():
            if not self._warned_market_on_open:
                self._warned_market_on_open = True
                self.debug(
                    "Warning: market orders submitted while the market is closed are automatically converted "
                    "into MarketOnOpen orders to fill at the next market open."
                )
            return OrderType.MARKET_ON_OPEN
        if engine.live:
            return OrderType.MARKET
        if not self._warned_daily_market_order:
            self._warned_daily_market_order = True
            self.debug(
                "Warning: market orders on daily resolution data sent during market hours are automatically "
                "converted into MarketOnClose orders (or MarketOnOpen near the close) to avoid filling at the "
                "stale previous close. Note: in live trading this conversion is not applied, as the order "
                "fills at the current market price."
            )
        close = engine.sessions.next_close_after(self.time)
        if self.utc_time > local_to_utc(close) - MOC_BUFFER:
            return OrderType.MARKET_ON_OPEN
        return OrderType.MARKET_ON_CLOSE

    def market_order(
        self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "", order_properties: Any = None
    ) -> OrderTicket:
        return self._engine.transactions.submit_order(
            symbol, quantity, self._daily_market_order_type(), tag, asynchronous=asynchronous
        )

    def order(
        self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "", order_properties: Any = None
    ) -> OrderTicket:
        return self.market_order(symbol, quantity, asynchronous, tag)

    def buy(self, symbol: Any, quantity: float) -> OrderTicket:
        """Lean's ``Buy``: ``Order(symbol, |quantity|)``."""
        return self.order(symbol, abs(quantity))

    def sell(self, symbol: Any, quantity: float) -> OrderTicket:
        """Lean's ``Sell``: ``Order(symbol, -|quantity|)``."""
        return self.order(symbol, -abs(quantity))

    def shortable(self, symbol: Any, short_quantity: float = 0, update_order_id: int | None = None) -> bool:
        """Lean's ``Shortable(symbol[, short_quantity, update_order_id])``."""
        engine = self._engine
        return engine.transactions.shortable(engine.securities.to_symbol(symbol), short_quantity, update_order_id)

    def shortable_quantity(self, symbol: Any) -> int:
        """Lean's ``ShortableQuantity``: 0 when the provider gives no limit (None)."""
        return self._engine.transactions.shortable_quantity(self._engine.securities.to_symbol(symbol))

    def market_on_open_order(
        self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "", order_properties: Any = None
    ) -> OrderTicket:
        return self._engine.transactions.submit_order(
            symbol, quantity, OrderType.MARKET_ON_OPEN, tag, asynchronous=asynchronous
        )

    def market_on_close_order(
        self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "", order_properties: Any = None
    ) -> OrderTicket:
        return self._engine.transactions.submit_order(
            symbol, quantity, OrderType.MARKET_ON_CLOSE, tag, asynchronous=asynchronous
        )

    def limit_order(
        self,
        symbol: Any,
        quantity: float,
        limit_price: float,
        asynchronous: bool = False,
        tag: str = "",
        order_properties: Any = None,
    ) -> OrderTicket:
        return self._engine.transactions.submit_order(
            symbol, quantity, OrderType.LIMIT, tag, float(limit_price), asynchronous=asynchronous
        )

    def stop_market_order(
        self,
        symbol: Any,
        quantity: float,
        stop_price: float,
        asynchronous: bool = False,
        tag: str = "",
        order_properties: Any = None,
    ) -> OrderTicket:
        return self._engine.transactions.submit_order(
            symbol, quantity, OrderType.STOP_MARKET, tag, stop_price=float(stop_price), asynchronous=asynchronous
        )

    def stop_limit_order(
        self,
        symbol: Any,
        quantity: float,
        stop_price: float,
        limit_price: float,
        asynchronous: bool = False,
        tag: str = "",
        order_properties: Any = None,
    ) -> OrderTicket:
        return self._engine.transactions.submit_order(
            symbol,
            quantity,
            OrderType.STOP_LIMIT,
            tag,
            float(limit_price),
            stop_price=float(stop_price),
            asynchronous=asynchronous,
        )

    def liquidate(
        self,
        symbol: Any = None,
        asynchronous: bool = False,
        tag: str | None = None,
        order_properties: Any = None,
        *,
        symbols: Any = None,
    ) -> list[OrderTicket]:
        """Lean's ``Liquidate(symbol)`` or ``Liquidate(symbols)`` (a list); no symbol: every holding."""
        engine = self._engine
        if symbols is not None:
            if symbol is not None:
                raise TypeError("liquidate() takes symbol or symbols, not both")
            symbol = symbols
        if not self.settings.liquidate_enabled:
            self.debug(
                "Liquidate() is currently disabled by settings. To re-enable please set "
                "'Settings.LiquidateEnabled' to true"
            )
            return []
        tag = "Liquidated" if tag is None else tag
        if symbol is None:
            symbols = sorted((s.symbol for s in engine.securities.as_list()), key=lambda s: s.value)
        elif isinstance(symbol, (list, tuple)):
            symbols = [engine.securities.to_symbol(s) for s in symbol]
        else:
            symbols = [engine.securities.to_symbol(symbol)]
        tickets: list[OrderTicket] = []
        for sym in symbols:
            if not engine.securities.contains(sym):
                continue
            orders = engine.transactions.open_orders(sym)
            holding = engine.securities.security(sym).holdings
            quantity = holding.quantity if holding.invested else 0.0
            if (
                len(orders) == 1
                and quantity != 0
                and orders[0].quantity == -quantity
                and orders[0].type == OrderType.MARKET
            ):
                continue
            market_qty = 0.0
            for order in orders:
                if order.type == OrderType.MARKET:
                    market_qty += engine.transactions.tickets[order.id].quantity_remaining
                else:
                    engine.transactions.cancel_order(order.id, tag)
            if quantity != 0:
                tickets.append(self.market_order(sym, -quantity - market_qty, tag=tag))
        return tickets

    def calculate_order_quantity(self, symbol: Any, target: float) -> float:
        qty = self._engine.margin.target_quantity(symbol, float(target), delta=True)
        return 0.0 if qty is None else float(qty)

    def _symbols_to_liquidate(self, keep: list[Symbol]) -> list[Symbol]:
        keep_set = set(keep)
        return sorted(
            (s.symbol for s in self._engine.securities.as_list() if s.symbol not in keep_set), key=lambda s: s.value
        )

    def set_holdings(
        self,
        symbol: Any = None,
        percentage: float | None = None,
        liquidate_existing_holdings: bool = False,
        asynchronous: bool = False,
        tag: str | None = None,
        order_properties: Any = None,
        *,
        targets: Any = None,
    ) -> list[OrderTicket]:
        """Lean's ``SetHoldings(symbol, percentage, ...)`` or ``SetHoldings(targets, ...)`` (PortfolioTargets)."""
        engine = self._engine
        if targets is not None:
            if symbol is not None:
                raise TypeError("set_holdings() takes symbol or targets, not both")
            symbol = targets
        if symbol is None:
            raise TypeError("set_holdings() needs a symbol or targets")
        if isinstance(symbol, (list, tuple)):
            if isinstance(percentage, bool):
                liquidate_existing_holdings = percentage
            targets = [PortfolioTarget(engine.securities.to_symbol(t.symbol), t.quantity) for t in symbol]
            tickets: list[OrderTicket] = []
            if liquidate_existing_holdings:
                tickets += self.liquidate(self._symbols_to_liquidate([t.symbol for t in targets]), tag=tag)
            deltas = [(t.symbol, self.calculate_order_quantity(t.symbol, t.quantity)) for t in targets]
            for sym, qty in self._order_by_margin_impact(deltas):
                tickets += self._set_holdings_impl(sym, qty, tag)
            return tickets
        if percentage is None:
            raise TypeError("set_holdings(symbol, percentage) needs a percentage")
        tickets = []
        sym = engine.securities.to_symbol(symbol)
        if liquidate_existing_holdings:
            tickets += self.liquidate(self._symbols_to_liquidate([sym]), tag=tag)
        tickets += self._set_holdings_impl(sym, self.calculate_order_quantity(sym, percentage), tag)
        return tickets

    def _order_by_margin_impact(self, deltas: list[tuple[Symbol, float]]) -> list[tuple[Symbol, float]]:
        """OrderTargetsByMarginImpact (targetIsDelta): position-reducing orders first, then by margin impact."""
        engine = self._engine
        rows = []
        for sym, qty in deltas:
            if qty == 0:
                continue
            sec = engine.securities.security(sym)
            held = sec.holdings.quantity
            reducing = held != 0 and (held > 0) != (qty > 0)
            impact = abs((held + qty) * sec.price) - abs(held * sec.price)
            rows.append((not reducing, impact, sym.value, sym, qty))
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        return [(r[3], r[4]) for r in rows]

    def _set_holdings_impl(self, symbol: Symbol, order_quantity: float, tag: str | None) -> list[OrderTicket]:
        engine = self._engine
        pending = sum(
            engine.transactions.tickets[o.id].quantity_remaining
            for o in engine.transactions.open_orders(symbol)
            if o.type in (OrderType.MARKET, OrderType.MARKET_ON_OPEN)
        )
        quantity = order_quantity - pending
        if abs(quantity) > 0:
            if not engine.securities.contains(symbol):
                self.error(f"{symbol} not found in portfolio. Request this data when initializing the algorithm.")
                return []
            if engine.exchange_open() or engine.live:
                # live: a market order (Lean turns it into MarketOnOpen while the market is closed)
                return [self.market_order(symbol, quantity, tag=tag or "")]
            return [self.market_on_open_order(symbol, quantity, tag=tag or "")]
        return []
