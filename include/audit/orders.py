"""Lean's orders, one row each: the one per-order aggregation of order events.

Two sources build the same *events frame* (one row per order event, :data:`EVENT_COLUMNS`, sorted
by ``(order_id, order_event_id)``, tickers upper-case, a missing fee or intent link as NaN, no
message as None):

* the audit DB, :func:`load_event_columns`: what the consistency check reads (the ingested rows);
* Lean's events files, :func:`read_event_files`: what the parity diff reads, and the report page
  of a run that has not been checked yet. Every event is validated (``iter_order_events``) and
  linked to the intent exactly as ingestion links it.

:func:`order_frame` aggregates an events frame into one row per order (:data:`ORDER_COLUMNS`);
the check runs on that frame, :func:`order_table` turns it into the report's
:class:`~include.contracts.report.OrderTable`, and :func:`lean_orders` gives the rows the report
page and the parity diff iterate over.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from include.audit.db import IntentOrderRow, OrderEventRow
from include.audit.ingest import NEW_YORK, IntentLinker, iter_order_events
from include.contracts.intent import OrderIntent
from include.contracts.report import OrderTable
from include.run_folder import order_event_files

EVENT_COLUMNS = (
    "order_id",
    "order_event_id",
    "symbol_value",
    "time",
    "status",
    "direction",
    "fill_price",
    "fill_quantity",
    "fee_amount",
    "quantity",
    "intent_order_id",
    "message",
)
_INT_COLUMNS = frozenset({"order_id", "order_event_id"})
_TEXT_COLUMNS = frozenset({"symbol_value", "status", "direction", "message"})
_NULLABLE_COLUMNS = frozenset({"fee_amount", "intent_order_id"})  # the other numbers are NOT NULL
ORDER_COLUMNS = (
    "order_id",
    "symbol",
    "direction",
    "quantity",
    "status",
    "filled",
    "abs_filled",
    "fees",
    "notional",
    "value",
    "first_time",
    "fill_time",
    "message",
    "intent_order_id",
    "day",
)


# ---------------------------------------------------------------------------- the events frame


def events_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """The events frame of row tuples in :data:`EVENT_COLUMNS` order (already sorted)."""
    # One 2-D object array, then a typed array per column: well under the time pandas'
    # from_records takes on 10^6 rows. Text stays plain ``object`` (pandas' default string dtype
    # would make every later per-element step iterate Arrow scalars), and the frame keeps the
    # arrays as they are (copy=False: no consolidating copy of 10^6 x 12 values).
    table = np.array(rows, dtype=object).reshape(len(rows), len(EVENT_COLUMNS))
    data: dict[str, Any] = {}
    for index, name in enumerate(EVENT_COLUMNS):
        column = table[:, index]
        if name in _INT_COLUMNS:
            data[name] = column.astype(np.int64)
        elif name in _TEXT_COLUMNS:
            data[name] = pd.Series(column, dtype=object, copy=False)
        elif name in _NULLABLE_COLUMNS:
            missing = pd.isna(column)
            values = np.full(len(column), np.nan)
            values[~missing] = column[~missing].astype(np.float64)
            data[name] = values
        else:
            data[name] = column.astype(np.float64)
    frame = pd.DataFrame(data, copy=False)
    # Tickers are compared upper-case everywhere; upper-casing the few distinct ones is enough.
    codes, tickers = pd.factorize(frame["symbol_value"].to_numpy())
    upper = np.array([str(t).upper() for t in tickers] + [None], dtype=object)
    frame["symbol_value"] = pd.Series(upper[codes], dtype=object, copy=False)
    return frame


@contextmanager
def _no_gc() -> Iterator[None]:
    """Collector paused while 10^6 row tuples are made: each full pass would walk all of them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_event_columns(engine: Engine, audit_run_id: int) -> pd.DataFrame:
    """The run's ingested events as an events frame."""
    table = OrderEventRow.__table__
    stmt = (
        select(*(table.c[name] for name in EVENT_COLUMNS))
        .where(table.c.run_id == audit_run_id)
        .order_by(table.c.order_id, table.c.order_event_id)
    )
    with engine.connect() as conn, _no_gc():
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        # The driver's own cursor: plain tuples. SQLAlchemy Row objects cost pandas ~10 µs each.
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            cursor.execute(str(compiled))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        frame = events_frame(rows)
        # Freed while the collector is still off: re-enabled, its first pass would walk them all.
        del rows
    return frame


def load_intent_days(engine: Engine, audit_run_id: int) -> dict[int, dt.date]:
    """Intent order row id -> its rebalance date (what an event's ``intent_order_id`` points at)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(IntentOrderRow.id, IntentOrderRow.rebalance_date).where(IntentOrderRow.run_id == audit_run_id)
        )
        return {int(row_id): day for row_id, day in rows}


def read_event_files(
    paths: Iterable[Path], intent: OrderIntent | None = None
) -> tuple[pd.DataFrame, dict[int, dt.date]]:
    """The events frame of Lean's files, and the intent link ids it uses -> rebalance date.

    Each event is validated; its link is the one ingestion stores (the intent order of its
    ticker with the latest rebalance date on or before the event), numbered by the intent's order.
    """
    intent_orders = intent.intent_orders if intent is not None else ()
    link = IntentLinker({(o.rebalance_date, o.symbol): i for i, o in enumerate(intent_orders)}).link
    rows = []
    for path in paths:
        for e in iter_order_events(path):
            rows.append(
                (
                    e.order_id,
                    e.order_event_id,
                    e.symbol_value,
                    e.time,
                    e.status.value,
                    e.direction.value,
                    e.fill_price,
                    e.fill_quantity,
                    e.order_fee_amount,
                    e.quantity,
                    link(e.symbol_value.upper(), e.time),
                    e.message or None,  # as ingestion stores it
                )
            )
    rows.sort(key=lambda row: (row[0], row[1]))
    return events_frame(rows), {i: o.rebalance_date for i, o in enumerate(intent_orders)}


# ---------------------------------------------------------------------------- one row per order


def _midnights(dates: Sequence[dt.date]) -> np.ndarray:
    return np.array([dt.datetime.combine(d, dt.time(0, 0), tzinfo=NEW_YORK).timestamp() for d in dates], np.float64)


def order_frame(
    events: pd.DataFrame, *, rebalance_dates: Sequence[dt.date] = (), intent_days: Mapping[int, dt.date] | None = None
) -> pd.DataFrame:
    """One row per Lean order (:data:`ORDER_COLUMNS`), by order id.

    ``quantity``, ``status`` and ``message`` are the last event's; ``filled``, ``abs_filled`` (sum
    of |fill qty|), ``fees``, ``notional`` (sum of |fill qty| x price) and ``value`` (signed) sum
    the fills; ``first_time``
    is the earliest event, ``fill_time`` the last fill's. ``day`` is the rebalance the order is
    counted under: its intent link's date, else the latest of ``rebalance_dates`` on or before its
    first event (None before the first).
    """
    if events.empty:
        return pd.DataFrame(columns=list(ORDER_COLUMNS))
    fill_qty = events["fill_quantity"]
    frame = events.assign(
        abs_fill=fill_qty.abs(),
        notional=fill_qty.abs() * events["fill_price"],
        value=fill_qty * events["fill_price"],
        fee=events["fee_amount"].fillna(0.0),
        fill_time=events["time"].where(fill_qty != 0),
    )
    grouped = frame.groupby("order_id", sort=True)
    orders = pd.DataFrame(
        {
            "symbol": grouped["symbol_value"].first(),
            "direction": grouped["direction"].first(),
            "quantity": grouped["quantity"].last(),
            "status": grouped["status"].last(),
            "filled": grouped["fill_quantity"].sum(),
            "abs_filled": grouped["abs_fill"].sum(),
            "fees": grouped["fee"].sum(),
            "notional": grouped["notional"].sum(),
            "value": grouped["value"].sum(),
            "first_time": grouped["time"].min(),
            "fill_time": grouped["fill_time"].last(),
            "intent_order_id": grouped["intent_order_id"].first(),
        }
    ).reset_index()
    # The frame is sorted by order id, so each order's last event ends its run of rows, in the
    # orders' order. (groupby's last() would skip a missing message for an earlier one.)
    ids = events["order_id"].to_numpy()
    messages = events["message"].to_numpy()[np.flatnonzero(np.r_[ids[1:] != ids[:-1], True])]
    text = pd.Series(np.where(pd.isna(messages), "", messages), index=orders.index, dtype=object)
    orders.insert(orders.columns.get_loc("intent_order_id"), "message", text)
    dates = list(rebalance_dates)
    position = np.searchsorted(_midnights(dates), orders["first_time"].to_numpy(np.float64), side="right") - 1
    by_time = pd.Series(np.array([*dates, None], dtype=object)[np.where(position >= 0, position, len(dates))])
    linked = orders["intent_order_id"].map(dict(intent_days or {}))
    orders["day"] = linked.astype(object).where(linked.notna(), by_time).to_numpy(dtype=object)
    return orders


# ---------------------------------------------------------------------------- the report's rows


def _optional(values: pd.Series) -> list[Any]:
    """NaN as None (the report refuses NaN)."""
    array = values.to_numpy(dtype=object, copy=True)
    array[np.asarray(pd.isna(array), dtype=bool)] = None
    result: list[Any] = array.tolist()
    return result


def order_table(orders: pd.DataFrame) -> OrderTable:
    """The report's order table of an order frame."""
    filled = orders["filled"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(filled != 0, orders["value"].to_numpy(np.float64) / filled, np.nan)
    return OrderTable(
        order_id=orders["order_id"].astype(np.int64).tolist(),
        rebalance_date=_optional(orders["day"]),
        symbol=orders["symbol"].tolist(),
        direction=orders["direction"].tolist(),
        quantity=orders["quantity"].astype(np.float64).tolist(),
        status=orders["status"].tolist(),
        filled_quantity=filled.tolist(),
        average_fill_price=_optional(pd.Series(average)),
        fees=orders["fees"].astype(np.float64).tolist(),
        first_time=orders["first_time"].astype(np.float64).tolist(),
        last_fill_time=_optional(orders["fill_time"]),
        message=orders["message"].tolist(),
    )


class LeanOrder(NamedTuple):
    """One order of an :class:`OrderTable` (fields as its columns; a tuple: a page may list 10^5+)."""

    order_id: int
    rebalance_date: dt.date | None
    symbol: str
    direction: str
    quantity: float
    status: str
    filled_quantity: float
    average_fill_price: float | None
    fees: float
    first_time: float
    last_fill_time: float | None
    message: str

    @property
    def date(self) -> dt.date:
        """New York date of the order's first event."""
        return dt.datetime.fromtimestamp(self.first_time, NEW_YORK).date()


def lean_orders(table: OrderTable) -> list[LeanOrder]:
    columns = (getattr(table, name) for name in LeanOrder._fields)
    return [LeanOrder._make(values) for values in zip(*columns, strict=True)]


def orders_from_files(
    results_dir: str | os.PathLike[str], algorithm_id: str, intent: OrderIntent | None = None
) -> OrderTable:
    """The order table of a run's events files (those of ``algorithm_id`` in ``results_dir``)."""
    events, intent_days = read_event_files(order_event_files(results_dir, algorithm_id), intent)
    dates = [r.date for r in intent.rebalances] if intent is not None else []
    return order_table(order_frame(events, rebalance_dates=dates, intent_days=intent_days))
