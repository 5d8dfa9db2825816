"""The brokerage model (brokerages.py): DefaultBrokerageModel, a Python subclass's can_submit_order /
can_update_order as Lean's BrokerageTransactionHandler asks them, and what is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.lean_local.brokerages import (
    BrokerageMessageEvent,
    BrokerageMessageType,
    DefaultBrokerageModel,
    check_model,
)
from include.lean_local.enums import AccountType, Market, SecurityType
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.symbols import Symbol
from tests.include.lean_local.helpers import events, run_inprocess, write_run


def test_message_event_prints_as_lean() -> None:
    """Messages.BrokerageMessageEvent.ToString: "{Type} - Code: {Code} - {Message}" (the enum's .NET name)."""
    assert str(BrokerageMessageEvent(BrokerageMessageType.INFORMATION, "", "no")) == "Information - Code:  - no"
    assert str(BrokerageMessageEvent(BrokerageMessageType.ACTION_REQUIRED, 7, "x")) == "ActionRequired - Code: 7 - x"


def test_default_model_allows_every_order_and_update() -> None:
    model = DefaultBrokerageModel()
    assert model.account_type == AccountType.MARGIN
    assert model.required_free_buying_power_percent == 0.0
    assert model.default_markets[SecurityType.EQUITY] == Market.USA
    assert model.can_submit_order(None, None, None) == (True, None)
    assert model.can_update_order(None, None, None, None) == (True, None)
    with pytest.raises(NotSupportedByLocalRuntime):
        model.get_fee_model(None)


def test_check_model_refuses_what_would_change_the_runtimes_defaults() -> None:
    class Allowed(DefaultBrokerageModel):
        default_markets = {SecurityType.EQUITY: Market.USA}

        def can_submit_order(self, security, order, message):  # type: ignore[no-untyped-def]
            return False, None

    class CustomFees(DefaultBrokerageModel):
        def get_fee_model(self, security):  # type: ignore[no-untyped-def]
            return None

    check_model(Allowed())
    with pytest.raises(NotSupportedByLocalRuntime, match="get_fee_model"):
        check_model(CustomFees())
    with pytest.raises(NotSupportedByLocalRuntime, match="CASH"):
        check_model(DefaultBrokerageModel(AccountType.CASH))
    with pytest.raises(NotSupportedByLocalRuntime):
        check_model(object())


def test_symbol_create_refuses_other_security_types_and_markets() -> None:
    with pytest.raises(NotSupportedByLocalRuntime):
        Symbol.create("BTCUSD", SecurityType.CRYPTO, Market.USA)
    with pytest.raises(NotSupportedByLocalRuntime):
        Symbol.create("SPY", SecurityType.EQUITY, Market.BINANCE)


BROKERAGE = """
from AlgorithmImports import *
class Model(DefaultBrokerageModel):
    def can_submit_order(self, security, order, message):
        if security.symbol.value == "ZZSB":
            return False, BrokerageMessageEvent(BrokerageMessageType.WARNING, "X1", "no ZZSB")
        if security.symbol.value == "ZZSC":
            return False   # a bare bool: Lean's default message
        return True, None
    def can_update_order(self, security, order, request, message):
        return False, None
class Algo(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8); self.set_cash(100000)
        self.set_brokerage_model(Model())
        for t in ("ZZSA", "ZZSB", "ZZSC"):
            self.add_equity(t, Resolution.DAILY)
        self.seen = {"events": []}
        self.tickets = None
    def on_data(self, data):
        if self.tickets is None:
            self.tickets = [self.market_order(t, 10) for t in ("ZZSA", "ZZSB", "ZZSC")]
    def on_order_event(self, event):
        self.seen["events"].append([event.order_id, int(event.status), event.message])
        if event.order_id == 1 and event.status == OrderStatus.SUBMITTED and "update" not in self.seen:
            self.seen["update"] = True
            fields = UpdateOrderFields()
            fields.quantity = 20
            response = self.transactions.get_order_ticket(1).update(fields)
            self.seen["provisional"] = response.is_success
    def on_end_of_algorithm(self):
        t = self.tickets
        self.seen["submit"] = [x.submit_request.response and x.submit_request.response.error_message for x in t]
        self.seen["codes"] = [x.submit_request.response and x.submit_request.response.error_code for x in t]
        self.seen["update_response"] = t[0].update_requests[0].response.error_message
        self.seen["update_code"] = t[0].update_requests[0].response.error_code
        self.seen["quantities"] = [x.quantity_filled for x in t]
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_python_brokerage_model_refuses_submissions_and_updates_as_lean(tmp_path: Path) -> None:
    """HandleSubmitOrderRequest (after the buying-power check): the order invalidated with
    "BrokerageModel declared unable to submit order: [id] {message}" (no message: Warning/InvalidOrder), code -4.
    HandleUpdateOrderRequest: "OrderID: id {message}" (no message: Warning/InvalidRequest), code -25, an order
    event with the order's status; an update requested in an order-event handler is handled once the request
    being processed is done (its response is the provisional success until then)."""
    assert run_inprocess(write_run(tmp_path, BROKERAGE, name="brokerage")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen["submit"][1:] == [
        "BrokerageModel declared unable to submit order: [2] Warning - Code: X1 - no ZZSB",
        "BrokerageModel declared unable to submit order: [3] Warning - Code: InvalidOrder - ",
    ]
    assert seen["codes"][1:] == [-4, -4]
    assert seen["provisional"] is True
    assert seen["update_response"] == (
        "OrderID: 1 Warning - Code: InvalidRequest - BrokerageModel declared unable to update order: 1"
    )
    assert seen["update_code"] == -25
    assert seen["quantities"] == [10, 0, 0]
    submitted, invalid, filled = 1, 7, 3
    assert seen["events"][:2] == [
        [1, submitted, ""],
        [1, submitted, "BrokerageModel declared unable to update order"],
    ]
    assert [e[:2] for e in seen["events"][2:]] == [[2, invalid], [3, invalid], [1, filled]]
    assert len({e["orderId"] for e in events(tmp_path)}) == 3
