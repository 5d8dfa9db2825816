"""Stream Lean's order-event files into the audit database, idempotently.

* Files: ``<id>-order-events.json`` (backtest) and every ``<id>-<yyyy-MM-dd>-order-events.json``
  (live, one per UTC day), in that order.
* Each file is streamed, never loaded whole. Lean's canonical form goes through the msgspec
  fast path (``include.audit.fast_events``, 4 MiB chunks); any file that is not canonical
  (legacy kebab-case names, extra fields, broken JSON) is re-read event by event with ijson and
  validated as :class:`LeanOrderEvent`, which also names every error.
* Rows are upserted in batches keyed by (run_id, order_id, order_event_id) with ``ON CONFLICT DO
  NOTHING``: sqlite3's executemany on SQLite, COPY into a staging table on PostgreSQL. A batch
  that did not insert every row is compared with what is stored: the same ids with other content
  raise ``OrderEventConflictError`` naming both versions (never a silent drop).
* ``run_id`` is the run's current **attempt**: a re-run whose inputs hash differently (see
  ``include.audit.manifest.inputs_sha256``) supersedes the attempt in the same transaction and
  gets a fresh row, so its intent and events replace the old ones; the superseded row keeps its
  own as history. Identical inputs ingest into the same attempt (a no-op).
* Everything happens in ONE transaction: a garbled or truncated file raises
  ``OrderEventsFileError`` (file and byte offset) and leaves the database untouched.
* Each event links to the intent order of its ticker whose rebalance date is the latest one on or
  before the event's New York date.
* A live run (Lean exited before ingestion) is ingested only with its ``done-<D>.json``
  (``include.audit.live.require_session_done``): without it the engine did not finish the session.
  Lean writes one events file per UTC day (``<id>-<yyyy-MM-dd>-order-events.json``, Lean
  ``Engine/Results/LiveTradingResultHandler.cs`` L463-476), each rewritten in full with the events
  since that UTC midnight (L481-484): an order submitted on one UTC day and filled on the next spans
  two files, and an event written into both is stored once (the upsert on the ids above). Lean's
  final state is its ``LiveResult`` ``<id>.json`` (no ``<id>-summary.json`` live).

"Non-zero target delta": some intent item has a weight != 0, or a current holding (quantity != 0)
is in a symbol the last rebalance targets at 0 or leaves out (it would be sold). With neither,
Lean places no order and writes no file. With one, a missing file is still a legitimate result
when Lean's final state says the run completed with no order (a weight below the lot, the
minimum or the cash buffer); the check then explains why nothing traded.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

import ijson
import psycopg
from msgspec.structs import astuple
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Insert

from include.audit.db import IntentOrderRow, OrderEventRow, RebalanceRun
from include.audit.fast_events import STRUCT_COLUMNS, NotCanonicalError, iter_fast_batches
from include.contracts.intent import OrderIntent
from include.contracts.lean_events import KNOWN_KEYS, LeanOrderEvent
from include.errors import (
    AuditDatabaseError,
    LeanOrderEventError,
    OrderEventConflictError,
    OrderEventsFileError,
    OrderEventsMissingError,
)
from include.run_folder import RunFolder, lean_algorithm_state, order_event_files

if TYPE_CHECKING:
    from include.launch.config import LauncherConfig

DEFAULT_DAG_ID = "manual"
DEFAULT_BATCH_SIZE = 10_000
READ_CHUNK = 1 << 20
NEW_YORK = ZoneInfo("America/New_York")


@dataclass
class IngestSummary:
    audit_run_id: int  # rebalance_runs.id, the audit DB's row of the run
    dag_id: str
    run_key: str
    algorithm_id: str
    files: list[str] = field(default_factory=list)
    events: int = 0
    inserted: int = 0
    already_present: int = 0
    linked: int = 0
    unlinked: int = 0
    batches: int = 0
    missing_file_ok: bool = False
    attempt: int = 1
    superseded_run_id: int | None = None  # the attempt this ingestion replaced, if any
    lean_status: str | None = None  # Lean's final Status, read when it wrote no events file
    live_done: str | None = None  # a live run: the reason of its done-<D>.json (terminal, deadline...)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def has_nonzero_target_delta(intent: OrderIntent | None, holdings: Mapping[str, float] | None = None) -> bool:
    """True when Lean is expected to place at least one order (see the module docstring)."""
    if intent is None:
        return False
    if any(item.weight != 0 for r in intent.rebalances for item in r.items):
        return True
    if holdings:
        last = intent.rebalances[-1]
        targets = {item.symbol: item.weight for item in last.items}
        return any(qty != 0 and targets.get(sym.upper(), 0.0) == 0 for sym, qty in holdings.items())
    return False


# ---------------------------------------------------------------------------- streaming reader


class _CountingReader:
    """A binary reader that counts bytes handed to the parser (optionally 1 byte at a time after ``slow_from``)."""

    def __init__(self, raw: BinaryIO, slow_from: int | None = None) -> None:
        self._raw = raw
        self.position = 0
        self.last_chunk = 0
        self.eof = False
        self._slow_from = slow_from

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to tell bytes from str
            return self._raw.read(0)
        if self._slow_from is not None:
            size = 1 if self.position >= self._slow_from else min(READ_CHUNK, self._slow_from - self.position)
        data = self._raw.read(size)
        self.last_chunk = len(data)
        self.position += len(data)
        if not data:
            self.eof = True
        return data


def _first_byte(handle: BinaryIO) -> bytes:
    while True:
        byte = handle.read(1)
        if not byte or not byte.isspace():
            return byte


def _locate_parse_error(path: Path, chunk_start: int) -> int:
    """Exact byte offset of the first JSON error: re-parse, feeding bytes one by one from ``chunk_start``."""
    with path.open("rb") as handle:
        reader = _CountingReader(handle, slow_from=max(0, chunk_start))
        try:
            for _ in ijson.basic_parse(reader, buf_size=READ_CHUNK):
                pass
        except ijson.JSONError:
            return reader.position if reader.eof else max(0, reader.position - 1)
    return reader.position


def iter_raw_events(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any], _CountingReader]]:
    """(index, decoded object, reader) for each array item; ``OrderEventsFileError`` on bad JSON."""
    source = Path(path)
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise OrderEventsFileError(str(source), None, f"cannot open ({exc.strerror})") from None
    with handle:
        first = _first_byte(handle)
        if first != b"[":
            what = "the file is empty" if not first else f"expected a JSON array, found {first!r}"
            raise OrderEventsFileError(str(source), max(0, handle.tell() - 1), what)
        handle.seek(0)
        reader = _CountingReader(handle)
        index = -1
        try:
            for index, obj in enumerate(_array_items(reader, source)):
                yield index, obj, reader
        except ijson.JSONError as exc:
            offset = _locate_parse_error(source, reader.position - reader.last_chunk)
            kind = "truncated JSON" if reader.eof and offset >= reader.position else "garbled JSON"
            raise OrderEventsFileError(
                str(source), offset, f"{kind} after {index + 1} complete events ({str(exc).splitlines()[0]})"
            ) from None


# A Lean order event is one flat object (depth 2 inside the file's array); a little room for
# the extras of other Lean versions. Deeper input is an attack, not an event: 100,000 nested
# arrays in 200 KB made ijson's item builder (its prefix strings) take gigabytes.
MAX_JSON_DEPTH = 8
MAX_STRING_CHARS = 1 << 20
MAX_OBJECT_KEYS = 1_000


def _array_items(reader: _CountingReader, source: Path) -> Iterator[Any]:
    """The items of the top-level array, built from ijson's basic events with bounds on depth,
    string length and keys per object (``OrderEventsFileError`` naming where)."""
    stack: list[Any] = []  # open containers inside the top-level array, innermost last
    keys: list[Any] = []  # the pending key of each open container (None for arrays)
    top: Any = None  # stack[-1], kept at hand: most events are a key or a scalar of the innermost object
    key: Any = None
    depth = 0

    def refuse(what: str) -> OrderEventsFileError:
        return OrderEventsFileError(str(source), None, f"{what}, within the first {reader.position} bytes")

    for event, value in ijson.basic_parse(reader, use_float=True, buf_size=READ_CHUNK):
        if event == "map_key":
            if len(top) >= MAX_OBJECT_KEYS:
                raise refuse(f"an object with more than {MAX_OBJECT_KEYS} keys")
            key = value
            continue
        if event == "start_map" or event == "start_array":
            depth += 1
            if depth == 1:
                continue
            if depth > MAX_JSON_DEPTH:
                raise refuse(f"JSON nested deeper than {MAX_JSON_DEPTH} levels (an order event is one flat object)")
            if top is not None:
                keys.append(key)
                stack.append(top)
            top, key = ({} if event == "start_map" else []), None
            continue
        if event == "end_map" or event == "end_array":
            depth -= 1
            if depth == 0:
                continue  # the array is closed; ijson still rejects anything after it
            value = top
            if stack:
                top, key = stack.pop(), keys.pop()
            else:
                top = None
        elif event == "string" and len(value) > MAX_STRING_CHARS:
            raise refuse(f"a string of {len(value)} characters (limit {MAX_STRING_CHARS})")
        if top is None:
            yield value
        elif key is None:
            top.append(value)
        else:
            top[key] = value


def iter_order_events(path: str | os.PathLike[str]) -> Iterator[LeanOrderEvent]:
    """Validated events of one file, streamed."""
    for index, raw, reader in iter_raw_events(path):
        yield _validate(path, index, raw, reader)


def _validate(path: str | os.PathLike[str], index: int, raw: Any, reader: _CountingReader) -> LeanOrderEvent:
    try:
        return LeanOrderEvent.parse(raw)
    except LeanOrderEventError as exc:
        start = reader.position - reader.last_chunk
        raise OrderEventsFileError(
            os.fspath(path), None, f"event #{index} (within bytes {start}..{reader.position}) is invalid: {exc}"
        ) from exc


# ---------------------------------------------------------------------------- database side


def dialect_insert(conn: Connection, table: Any) -> sqlite.Insert | postgresql.Insert:
    """The dialect's INSERT (it has ``on_conflict_do_nothing``); sqlite and postgresql only."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise AuditDatabaseError(f"dialect {name!r} is not supported (sqlite or postgresql)")


def insert_ignore(conn: Connection, table: Any, index_elements: list[str]) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` for the connection's dialect."""
    return dialect_insert(conn, table).on_conflict_do_nothing(index_elements=index_elements)


_CURRENT = RebalanceRun.superseded_at.is_(None)


def current_run_id(conn: Connection, dag_id: str, run_key: str) -> int | None:
    """The row id of the run's current attempt, if the run exists."""
    found = conn.execute(
        select(RebalanceRun.id).where(RebalanceRun.dag_id == dag_id, RebalanceRun.run_key == run_key, _CURRENT)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def ensure_run(
    conn: Connection,
    *,
    dag_id: str,
    run_key: str,
    mode: str = "backtest",
    runtime: str = "local",
    algorithm_id: str | None = None,
) -> int:
    """The id of the (dag_id, run_key) run's current attempt, created if absent (concurrency-safe upsert)."""
    now = dt.datetime.now(dt.UTC)
    stmt = dialect_insert(conn, RebalanceRun.__table__).values(
        dag_id=dag_id,
        run_key=run_key,
        mode=mode,
        runtime=runtime,
        status="created",
        algorithm_id=algorithm_id,
        created_at=now,
        updated_at=now,
    )
    # No conflict target: a racing ingestion's row may collide on the (dag_id, run_key, attempt) constraint
    # before the partial current-run index is checked, and PostgreSQL raises a UniqueViolation for a
    # constraint that is not the arbiter. Any collision means the run's row exists; it is read below.
    conn.execute(stmt.on_conflict_do_nothing())
    run_id = current_run_id(conn, dag_id, run_key)
    assert run_id is not None  # inserted, or there already
    return run_id


def _recorded_inputs(inputs: str | None, manifest: Mapping[str, Any] | None) -> str | None:
    """The inputs hash of an attempt: stored, or (rows from before attempts existed) from its manifest."""
    if inputs or not manifest:
        return inputs
    from include.audit.manifest import inputs_sha256
    from include.contracts.manifest import RunManifest

    return inputs_sha256(RunManifest.model_validate(manifest))


def _lock_run_row(conn: Connection, run_id: int) -> Any:
    table = RebalanceRun.__table__
    return conn.execute(select(table).where(table.c.id == run_id).with_for_update()).one()


def begin_attempt(conn: Connection, run_id: int, inputs: str) -> tuple[int, int | None]:
    """The row id to ingest into for inputs hashing to ``inputs``, and the id it superseded.

    Same inputs (or a run row that holds nothing yet): the same row. Other inputs: the row is
    marked superseded (its intent orders, events and check results stay with it, as history) and
    a new attempt row takes the run key, in the caller's transaction.
    """
    row = _lock_run_row(conn, run_id)
    while row.superseded_at is not None:  # a concurrent ingestion superseded it while we waited
        current = current_run_id(conn, row.dag_id, row.run_key)
        if current is None:
            raise AuditDatabaseError(f"run {row.dag_id}/{row.run_key} has no current attempt")
        run_id = current
        row = _lock_run_row(conn, run_id)
    known = _recorded_inputs(row.inputs_sha256, row.manifest)
    holds_rows = (
        _count_events(conn, run_id) > 0
        or conn.execute(select(IntentOrderRow.id).where(IntentOrderRow.run_id == run_id).limit(1)).first() is not None
    )
    if known == inputs or known is None or not holds_rows:
        if row.inputs_sha256 != inputs:
            conn.execute(update(RebalanceRun).where(RebalanceRun.id == run_id).values(inputs_sha256=inputs))
        return run_id, None
    now = dt.datetime.now(dt.UTC)
    conn.execute(
        update(RebalanceRun)
        .where(RebalanceRun.id == run_id)
        .values(superseded_at=now, status="superseded", inputs_sha256=known, updated_at=now)
    )
    new_id = conn.execute(
        insert(RebalanceRun)
        .values(
            dag_id=row.dag_id,
            run_key=row.run_key,
            attempt=row.attempt + 1,
            inputs_sha256=inputs,
            mode=row.mode,
            runtime=row.runtime,
            status="created",
            algorithm_id=row.algorithm_id,
            created_at=now,
            updated_at=now,
        )
        .returning(RebalanceRun.id)
    ).scalar_one()
    return int(new_id), run_id


def ensure_intent_orders(conn: Connection, run_id: int, intent: OrderIntent | None) -> dict[tuple[dt.date, str], int]:
    """Insert the intent orders of the run (idempotent); ``(rebalance_date, symbol) -> id``."""
    if intent is not None and intent.intent_orders:
        rows = [
            {
                "run_id": run_id,
                "rebalance_date": o.rebalance_date,
                "symbol": o.symbol,
                "side": o.side,
                "weight": o.weight,
            }
            for o in intent.intent_orders
        ]
        stmt = insert_ignore(conn, IntentOrderRow.__table__, ["run_id", "rebalance_date", "symbol"])
        conn.execute(stmt, rows)
    result = conn.execute(
        select(IntentOrderRow.rebalance_date, IntentOrderRow.symbol, IntentOrderRow.id).where(
            IntentOrderRow.run_id == run_id
        )
    )
    return {(day, symbol): int(row_id) for day, symbol, row_id in result}


class IntentLinker:
    """Maps (ticker, event time) to the intent order of the latest rebalance date <= the NY event date."""

    def __init__(self, intent_ids: Mapping[tuple[dt.date, str], int]) -> None:
        by_symbol: dict[str, list[tuple[float, int]]] = {}
        for (day, symbol), row_id in intent_ids.items():
            midnight = dt.datetime.combine(day, dt.time(0, 0), tzinfo=NEW_YORK).timestamp()
            by_symbol.setdefault(symbol, []).append((midnight, row_id))
        self._bounds: dict[str, list[float]] = {}
        self._ids: dict[str, list[int]] = {}
        for symbol, pairs in by_symbol.items():
            pairs.sort()
            self._bounds[symbol] = [p[0] for p in pairs]
            self._ids[symbol] = [p[1] for p in pairs]

    def link(self, symbol: str, unix_time: float) -> int | None:
        bounds = self._bounds.get(symbol)
        if bounds is None:
            return None
        pos = bisect.bisect_right(bounds, unix_time) - 1
        return self._ids[symbol][pos] if pos >= 0 else None


# A row is the struct's fields in order (``id`` last, not stored) followed by these four.
_ROW_TAIL = ("run_id", "extras", "intent_order_id", "source_file")
_ROW_KEYS = [*STRUCT_COLUMNS, *_ROW_TAIL]
_STORED = [key for key in _ROW_KEYS if key != "id"]
_MESSAGE = _ROW_KEYS.index("message")
_ID = _ROW_KEYS.index("id")


def event_row(event: LeanOrderEvent, run_id: int, intent_order_id: int | None, source_file: str) -> dict[str, Any]:
    extra = event.model_extra
    extras = {k: v for k, v in extra.items() if k not in KNOWN_KEYS} if extra else None
    return {
        "run_id": run_id,
        "algorithm_id": event.algorithm_id,
        "order_id": event.order_id,
        "order_event_id": event.order_event_id,
        "symbol": event.symbol,
        "symbol_value": event.symbol_value,
        "symbol_permtick": event.symbol_permtick,
        "time": event.time,
        "status": event.status.value,
        "direction": event.direction.value,
        "fill_price": event.fill_price,
        "fill_price_currency": event.fill_price_currency,
        "fill_quantity": event.fill_quantity,
        "fee_amount": event.order_fee_amount,
        "fee_currency": event.order_fee_currency,
        "quantity": event.quantity,
        "message": event.message or None,
        "is_assignment": event.is_assignment,
        "is_in_the_money": event.is_in_the_money,
        "limit_price": event.limit_price,
        "stop_price": event.stop_price,
        "extras": extras or None,
        "intent_order_id": intent_order_id,
        "source_file": source_file,
    }


def _row_tuple(event: LeanOrderEvent, run_id: int, intent_order_id: int | None, source_file: str) -> tuple[Any, ...]:
    """A validated model event as a row in ``_ROW_KEYS`` order (the same row the fast path makes)."""
    row = event_row(event, run_id, intent_order_id, source_file)
    row["id"] = event.id
    if row["extras"] is not None:
        row["extras"] = json.dumps(row["extras"], separators=(",", ":"))
    return tuple(row[key] for key in _ROW_KEYS)


class _BatchWriter:
    """Writes batches of row tuples (in ``_ROW_KEYS`` order) with ``ON CONFLICT DO NOTHING``.

    SQLite: the Core statement compiled once, straight to sqlite3's executemany (per-row
    SQLAlchemy bind processing would cost more than the write). PostgreSQL: ``COPY`` into a
    temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per batch;
    COPY is several times faster than any INSERT, and the staging step keeps the upsert idempotent.
    """

    def __init__(self, conn: Connection, *, fresh: bool = False) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        # A run with no events yet: COPY straight into the table (as fast as PostgreSQL loads),
        # under a savepoint; the first unique violation (a duplicate in the file, a racing
        # ingestion, a fallback re-read) rolls that batch back and switches to the staging merge.
        self._direct = fresh and self._postgres
        stored = ", ".join(_STORED)
        if self._postgres:
            # The staging table takes rows exactly as they come (``id`` lands in lean_id, unused).
            staged = ", ".join("NULL::varchar AS lean_id" if key == "id" else key for key in _ROW_KEYS)
            conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ON COMMIT DROP AS "
                f"SELECT {staged} FROM {OrderEventRow.__tablename__} WITH NO DATA"
            )
            copy_columns = ", ".join("lean_id" if key == "id" else key for key in _ROW_KEYS)
            self._copy_sql = f"COPY {_STAGING} ({copy_columns}) FROM STDIN"
            self._direct_copy_sql = f"COPY {OrderEventRow.__tablename__} ({stored}) FROM STDIN"
            self._merge_sql = (
                f"INSERT INTO {OrderEventRow.__tablename__} ({stored}) SELECT {stored} FROM {_STAGING} "
                "ON CONFLICT (run_id, order_id, order_event_id) DO NOTHING"
            )
            return
        stmt = insert_ignore(conn, OrderEventRow.__table__, ["run_id", "order_id", "order_event_id"])
        compiled = stmt.compile(dialect=conn.dialect, column_keys=_STORED)
        order = compiled.positiontup
        if order is None or sorted(order) != sorted(_STORED):
            raise AuditDatabaseError(f"unexpected bind parameters {order}")
        # Number the qmarks by their place in the row, so the row binds as it is (``id`` unused).
        numbered = iter(f"?{_ROW_KEYS.index(key) + 1}" for key in order)
        self._insert_sql = re.sub(r"\?", lambda _: next(numbered), str(compiled))

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        """Write a batch; returns how many rows were new (the rest had their ids stored already)."""
        if not rows:
            return 0
        if not self._postgres:
            return int(self._conn.exec_driver_sql(self._insert_sql, rows).rowcount)
        driver = self._conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            if self._direct:
                cursor.execute("SAVEPOINT ingest_batch")
                try:
                    with cursor.copy(self._direct_copy_sql) as copy:
                        for row in rows:
                            copy.write_row(row[:_ID] + row[_ID + 1 :])
                except psycopg.errors.UniqueViolation:
                    cursor.execute("ROLLBACK TO SAVEPOINT ingest_batch")
                    self._direct = False
                else:
                    cursor.execute("RELEASE SAVEPOINT ingest_batch")
                    return len(rows)
            with cursor.copy(self._copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(self._merge_sql)
            inserted = cursor.rowcount
            cursor.execute(f"TRUNCATE {_STAGING}")
            return inserted


_STAGING = "order_events_staging"


RowBatch = tuple[list[tuple[Any, ...]], int]  # (rows, how many of them link to an intent order)
Linker = Callable[[str, float], "int | None"]


def _fast_row_batches(path: Path, run_id: int, algorithm_id: str, link: Linker) -> Iterator[RowBatch]:
    """The canonical fast path; ``NotCanonicalError`` as soon as the file needs the model."""
    source = path.name
    links: dict[tuple[str, int], int | None] = {}
    for events in iter_fast_batches(path):
        rows = []
        linked = 0
        for e in events:
            if e.algorithm_id != algorithm_id:
                raise NotCanonicalError("foreign algorithmId")  # the model path names it
            # The link is constant within a UTC hour: rebalance bounds are NY midnights, whole hours.
            key = (e.symbol_value, int(e.time // 3600))
            if key in links:
                intent_order_id = links[key]
            else:
                intent_order_id = links[key] = link(e.symbol_value.upper(), e.time)
            if intent_order_id is not None:
                linked += 1
            row = (*astuple(e), run_id, None, intent_order_id, source)
            if e.message == "":
                row = (*row[:_MESSAGE], None, *row[_MESSAGE + 1 :])  # as the model path stores it
            rows.append(row)
        yield rows, linked


def _validated_row_batches(
    path: Path, run_id: int, algorithm_id: str, link: Linker, batch_size: int
) -> Iterator[RowBatch]:
    """Every event through :class:`LeanOrderEvent`: legacy names, extras, and the precise errors."""
    rows: list[tuple[Any, ...]] = []
    linked = 0
    for index, raw, reader in iter_raw_events(path):
        event = _validate(path, index, raw, reader)
        if event.algorithm_id != algorithm_id:
            raise OrderEventsFileError(
                str(path), None, f"event #{index} has algorithmId {event.algorithm_id!r}, expected {algorithm_id!r}"
            )
        intent_order_id = link(event.symbol_value.upper(), event.time)
        if intent_order_id is not None:
            linked += 1
        rows.append(_row_tuple(event, run_id, intent_order_id, path.name))
        if len(rows) >= batch_size:
            yield rows, linked
            rows, linked = [], 0
    if rows:
        yield rows, linked


# What two versions of one event are compared on: everything Lean wrote (not where we filed it).
_CONTENT = [key for key in _STORED if key not in ("run_id", "intent_order_id", "source_file")]
_CONTENT_AT = [_ROW_KEYS.index(key) for key in _CONTENT]
_KEY_AT = (_ROW_KEYS.index("order_id"), _ROW_KEYS.index("order_event_id"))


def _comparable(key: str, value: Any) -> Any:
    if key == "extras" and isinstance(value, str):
        return json.loads(value)
    if key in ("is_assignment", "is_in_the_money"):
        return bool(value)
    return value


def _describe_version(values: Mapping[str, Any], differing: list[str], source: str) -> str:
    return f"{source} has " + ", ".join(f"{key}={values[key]!r}" for key in differing)


def check_batch_conflicts(conn: Connection, run_id: int, rows: list[tuple[Any, ...]], path: Path) -> None:
    """Compare a batch whose ids were partly stored already with the stored versions.

    Only batches that did not insert every row come here (a retry, a duplicate in the file, a
    fallback re-read), so a first ingestion pays nothing for it.
    """
    order_ids = [row[_KEY_AT[0]] for row in rows]
    table = OrderEventRow.__table__
    stored_rows = conn.execute(
        select(table.c.order_id, table.c.order_event_id, table.c.source_file, *(table.c[k] for k in _CONTENT)).where(
            table.c.run_id == run_id, table.c.order_id.between(min(order_ids), max(order_ids))
        )
    )
    stored: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
    for found in stored_rows:
        mapping = found._mapping
        content = {key: _comparable(key, mapping[key]) for key in _CONTENT}
        stored[(int(mapping["order_id"]), int(mapping["order_event_id"]))] = (mapping["source_file"], content)
    for row in rows:
        key = (int(row[_KEY_AT[0]]), int(row[_KEY_AT[1]]))
        if key not in stored:
            continue
        source, kept = stored[key]
        incoming = {name: _comparable(name, row[at]) for name, at in zip(_CONTENT, _CONTENT_AT, strict=True)}
        differing = [name for name in _CONTENT if kept[name] != incoming[name]]
        if differing:
            raise OrderEventConflictError(
                str(path),
                key[0],
                key[1],
                _describe_version(kept, differing, f"the stored version (from {source})"),
                _describe_version(incoming, differing, "this file's version"),
            )


Verify = Callable[[list[tuple[Any, ...]]], None]


def _write_all(writer: _BatchWriter, batches: Iterator[RowBatch], summary: IngestSummary, verify: Verify) -> None:
    events = linked = written = 0
    for rows, batch_linked in batches:
        if writer.write(rows) < len(rows):
            verify(rows)
        events += len(rows)
        linked += batch_linked
        written += 1
    # Counted only once the whole file went through (a fallback re-reads it from the start).
    summary.events += events
    summary.linked += linked
    summary.unlinked += events - linked
    summary.batches += written


def _count_events(conn: Connection, run_id: int) -> int:
    return int(
        conn.execute(select(func.count()).select_from(OrderEventRow).where(OrderEventRow.run_id == run_id)).scalar_one()
    )


def ingest_order_events(
    *,
    engine: Engine,
    results_dir: str | os.PathLike[str],
    algorithm_id: str,
    intent: OrderIntent | None = None,
    audit_run_id: int | None = None,
    dag_id: str | None = None,
    run_key: str | None = None,
    mode: Literal["backtest", "live"] = "backtest",
    runtime: Literal["docker", "local"] = "local",
    holdings: Mapping[str, float] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    inputs_sha256: str | None = None,
) -> IngestSummary:
    """Ingest every order-events file of ``algorithm_id`` in ``results_dir`` for one run.

    The run is the audit DB row ``audit_run_id`` or the (``dag_id``, ``run_key``) pair (created if
    absent; ``run_key`` defaults to the intent's). Re-ingesting the same files inserts nothing.
    ``inputs_sha256`` identifies the attempt (see :func:`begin_attempt`); without it the current
    attempt is used as it is.
    """
    files = order_event_files(results_dir, algorithm_id)
    if audit_run_id is None:
        run_key = run_key or (intent.run_key if intent is not None else None)
        if not run_key:
            raise AuditDatabaseError("ingest needs audit_run_id, or run_key (or an intent to take it from)")
    dag = dag_id or DEFAULT_DAG_ID
    with engine.begin() as conn:
        if audit_run_id is None:
            assert run_key is not None
            audit_run_id = ensure_run(
                conn, dag_id=dag, run_key=run_key, mode=mode, runtime=runtime, algorithm_id=algorithm_id
            )
        else:
            found = conn.execute(
                select(RebalanceRun.dag_id, RebalanceRun.run_key).where(RebalanceRun.id == audit_run_id)
            ).one_or_none()
            if found is None:
                raise AuditDatabaseError(f"audit run row {audit_run_id} does not exist")
            dag, run_key = found
        assert run_key is not None
        superseded = None
        if inputs_sha256 is not None:
            audit_run_id, superseded = begin_attempt(conn, audit_run_id, inputs_sha256)
        summary = IngestSummary(
            audit_run_id=audit_run_id,
            dag_id=dag,
            run_key=run_key,
            algorithm_id=algorithm_id,
            superseded_run_id=superseded,
            attempt=int(conn.execute(select(RebalanceRun.attempt).where(RebalanceRun.id == audit_run_id)).scalar_one()),
        )
        linker = IntentLinker(ensure_intent_orders(conn, audit_run_id, intent))
        if not files:
            _accept_run_without_events(results_dir, algorithm_id, intent, holdings, summary)
        before = _count_events(conn, audit_run_id)
        writer = _BatchWriter(conn, fresh=before == 0)
        for path in files:
            summary.files.append(path.name)

            def verify(rows: list[tuple[Any, ...]], path: Path = path, run_id: int = audit_run_id) -> None:
                check_batch_conflicts(conn, run_id, rows, path)

            try:
                _write_all(writer, _fast_row_batches(path, audit_run_id, algorithm_id, linker.link), summary, verify)
            except NotCanonicalError:
                # Rows the fast path already wrote are re-sent and ignored (ON CONFLICT); a real
                # error rolls the whole transaction back.
                batches = _validated_row_batches(path, audit_run_id, algorithm_id, linker.link, batch_size)
                _write_all(writer, batches, summary, verify)
        summary.inserted = _count_events(conn, audit_run_id) - before
        summary.already_present = summary.events - summary.inserted
        conn.execute(
            update(RebalanceRun)
            .where(RebalanceRun.id == audit_run_id)
            .values(status="ingested", algorithm_id=algorithm_id, updated_at=dt.datetime.now(dt.UTC))
        )
    return summary


def _accept_run_without_events(
    results_dir: str | os.PathLike[str],
    algorithm_id: str,
    intent: OrderIntent | None,
    holdings: Mapping[str, float] | None,
    summary: IngestSummary,
) -> None:
    """No events file: fine when nothing was to trade, or when Lean says it completed with no order."""
    summary.missing_file_ok = True
    if not has_nonzero_target_delta(intent, holdings):
        return
    state = lean_algorithm_state(results_dir, algorithm_id)
    status = state.get("Status") if state else None
    orders = state.get("OrderCount", "0") if state else None
    summary.lean_status = status
    if status == "Completed" and orders == "0":
        return
    if state is None:
        why = (
            f"and no {algorithm_id}-summary.json (backtest) or {algorithm_id}.json (backtest or live) with Lean's "
            "final state (did Lean finish?)"
        )
    elif status != "Completed":
        why = f"and Lean's final state is {status!r}, not 'Completed'"
    else:
        why = f"although Lean's final state counts {orders} orders"
    raise OrderEventsMissingError(
        f"no {algorithm_id}-order-events.json (or live per-day file) in {results_dir}, {why}; "
        "the intent has a non-zero target delta"
    )


def run_folder_ingest_inputs(folder: RunFolder, config: LauncherConfig | None = None) -> dict[str, Any]:
    """``ingest_order_events`` keywords for a run folder: its results, intent, mode, runtime and the
    holdings it started from (every file confined to the folder)."""
    config = config or folder.read_config()
    if config.mode == "live":
        from include.audit.live import live_starting_state

        starting = live_starting_state(folder, config)
    else:
        starting = folder.starting_state(config)
    return {
        "results_dir": folder.inside(folder.results_dir),
        "algorithm_id": folder.algorithm_id,
        "intent": folder.load_intent() if folder.intent_path.exists() else None,
        "dag_id": folder.dag_id,
        "run_key": folder.run_key,
        "mode": config.mode,
        "runtime": "docker" if folder.engine_identity().get("runtime") == "docker" else "local",
        "holdings": starting.holdings,
    }


def ingest_run_folder(
    engine: Engine, folder: RunFolder, config: LauncherConfig | None = None, *, inputs_sha256: str | None = None
) -> IngestSummary:
    """Ingest a run folder's order events (idempotent): what the DAG's ``ingest_events`` task does.
    ``inputs_sha256`` (of the run's manifest) makes a re-run with changed inputs a new attempt.
    A live run needs its ``done-<D>.json`` (``LiveSessionNotDoneError`` before anything is stored)."""
    config = config or folder.read_config()
    inputs = run_folder_ingest_inputs(folder, config)
    done = None
    if config.mode == "live" and inputs["intent"] is not None:
        from include.audit.live import live_session, require_session_done

        done = require_session_done(folder, live_session(inputs["intent"]))
    summary = ingest_order_events(engine=engine, inputs_sha256=inputs_sha256, **inputs)
    summary.live_done = done.reason if done is not None else None
    return summary


def ingest_and_record_run(
    engine: Engine, folder: RunFolder, *, airflow_ids: Mapping[str, str] | None = None
) -> IngestSummary:
    """The ``ingest_events`` step on one run folder: hash its inputs into a manifest, ingest its
    events as the attempt those inputs name, store the manifest on the run's row, then write
    ``manifest.json`` (the DAG task and ``include.cli check`` both do exactly this)."""
    from include.atomic_io import atomic_write_json
    from include.audit.manifest import build_run_manifest, inputs_sha256, record_manifest

    config = folder.read_config()
    identity = folder.engine_identity()
    # Built now (it hashes the inputs), written only once the events are in: a failed ingestion
    # leaves neither a row nor a new manifest.json behind.
    manifest = build_run_manifest(
        folder,
        config,
        engine_identity=identity.get("engine") or "unknown",
        engine_details=identity,
        runtime="docker" if identity.get("runtime") == "docker" else "local",
        airflow=airflow_ids,
    )
    # Events first: a failed ingestion rolls back its one transaction and leaves the DB untouched
    # (no run row either); the manifest is then stored on the run's row. The inputs' hash names
    # the attempt: changed inputs supersede the previous attempt's rows.
    summary = ingest_run_folder(engine, folder, config, inputs_sha256=inputs_sha256(manifest))
    record_manifest(engine, manifest)
    atomic_write_json(folder.manifest_path, manifest.model_dump(mode="json"))
    return summary
