"""Result files as Lean writes them: order events, result JSON, summary, logs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from include.atomic_io import atomic_write_bytes
from include.lean_local.orders import ORDER_STATUS_JSON, Order, OrderDirection, OrderEvent, OrderType
from include.lean_local.statistics import LeanSeries

_DIRECTION = {OrderDirection.BUY: "buy", OrderDirection.SELL: "sell", OrderDirection.HOLD: "hold"}


def _num(value: float) -> float:
    """Lean decimals serialize without float noise: round to 10 places (decimal precision of prices)."""
    out = round(float(value), 10)
    return 0.0 if out == 0 else out


def serialize_event(event: OrderEvent, algorithm_id: str) -> dict[str, Any]:
    """SerializedOrderEvent: Lean's field order and presence rules."""
    row: dict[str, Any] = {
        "id": f"{algorithm_id}-{event.order_id}-{event.order_event_id}",
        "algorithmId": algorithm_id,
        "orderId": event.order_id,
        "orderEventId": event.order_event_id,
        "symbol": str(event.symbol.id),
        "symbolValue": event.symbol.value,
        "symbolPermtick": event.symbol.id.symbol,
        "time": float(event.utc_time.timestamp()),
        "status": ORDER_STATUS_JSON[int(event.status)],
    }
    fee = event.order_fee.value
    if fee.currency != "QCC":
        row["orderFeeAmount"] = _num(fee.amount)
        row["orderFeeCurrency"] = fee.currency
    row["fillPrice"] = _num(event.fill_price)
    row["fillPriceCurrency"] = event.fill_price_currency
    row["fillQuantity"] = _num(event.fill_quantity)
    row["direction"] = _DIRECTION[event.direction]
    if event.message:
        row["message"] = event.message
    row["isAssignment"] = bool(event.is_assignment)
    row["quantity"] = _num(event.quantity)
    if event.stop_price is not None:
        row["stopPrice"] = _num(event.stop_price)
    if event.limit_price is not None:
        row["limitPrice"] = _num(event.limit_price)
    return row


def dumps_compact(payload: Any) -> bytes:
    """Newtonsoft Formatting.None: no whitespace."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def write_order_events(path: Path, events: list[OrderEvent], algorithm_id: str) -> bool:
    if not events:
        return False
    atomic_write_bytes(path, dumps_compact([serialize_event(e, algorithm_id) for e in events]))
    return True


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serialize_order(order: Order) -> dict[str, Any]:
    row: dict[str, Any] = {
        "type": int(order.type),
        "id": order.id,
        "contingentId": order.contingent_id,
        "brokerId": [str(order.id)],
        "symbol": order.symbol.to_json(),
        "price": _num(order.price),
        "priceCurrency": "USD",
        "time": _iso(order.time),
        "createdTime": _iso(order.created_time),
    }
    if order.last_fill_time is not None:
        row["lastFillTime"] = _iso(order.last_fill_time)
    if order.canceled_time is not None:
        row["canceledTime"] = _iso(order.canceled_time)
    row["quantity"] = _num(order.quantity)
    row["status"] = int(order.status)
    if order.tag:
        row["tag"] = order.tag
    row["properties"] = {"timeInForce": {}}
    row["securityType"] = 1
    row["direction"] = int(order.direction)
    row["value"] = _num(order.quantity * order.price)
    row["orderSubmissionData"] = {
        "bidPrice": _num(order.submission_price),
        "askPrice": _num(order.submission_price),
        "lastPrice": _num(order.submission_price),
    }
    row["isMarketable"] = order.type in (OrderType.MARKET, OrderType.MARKET_ON_OPEN, OrderType.MARKET_ON_CLOSE)
    row["priceAdjustmentMode"] = int(order.price_adjustment_mode)
    # the order type's own properties, after Order's (StopLimitOrder: StopPrice, StopTriggered, LimitPrice)
    if order.type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) and order.stop_price is not None:
        row["stopPrice"] = _num(order.stop_price)
    if order.type == OrderType.STOP_LIMIT:
        row["stopTriggered"] = order.stop_triggered
    if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and order.limit_price is not None:
        row["limitPrice"] = _num(order.limit_price)
    return row


def _series(name: str, unit: str, points: list[list[Any]]) -> dict[str, Any]:
    """A Lean ``Series`` of type Line as SeriesJsonConverter writes it (Common/Util/SeriesJsonConverter.cs)."""
    return {
        "name": name,
        "unit": unit,
        "index": 0,
        "seriesType": 0,
        "values": points,
        "color": "",
        "scatterMarkerSymbol": "none",
    }


def _chart(name: str, series: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "chartType": 0, "series": {series["name"]: series}}


def sampled_charts(series: LeanSeries) -> dict[str, Any]:
    """The "Benchmark" chart (series "Benchmark": the benchmark's value at each daily sample) and the "Drawdown"
    chart (series "Equity Drawdown", percent below the running peak), sampled by BaseResultsHandler.Sample
    (Engine/Results/BaseResultsHandler.cs L708-733, L788-806) in backtests too. A point is [UTC epoch seconds,
    value] (Common/Util/ChartPointJsonConverter.cs)."""
    benchmark = [[int(when.timestamp()), float(value)] for when, _, value in series.samples]
    drawdown = [[int(when.timestamp()), value] for when, value in series.drawdown]
    return {
        "Benchmark": _chart("Benchmark", _series("Benchmark", "$", benchmark)),
        "Drawdown": _chart("Drawdown", _series("Equity Drawdown", "%", drawdown)),
    }


def write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8"))
