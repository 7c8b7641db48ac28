"""Inference logs and feedback written off the request path, in batches, by one thread.

Requests only append to a deque (thread-safe, no I/O); the writer thread inserts batches every
``interval`` seconds and drains everything on ``close()``, which the app's shutdown calls, so a
SIGTERM loses no row. A failed batch is retried; rows are dropped only when the database
refuses that very row (reported in the ``dropped`` counter), never silently.

An optional ``observer`` (the gateway's ``OpsMetrics``) is told of every dropped or refused
row and refreshed once per writer tick, so backlog gauges stay current in every worker without
any work on the request path beyond one uncontended lock per submit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from paramstack.attest.chain import AuditChain
from paramstack.errors import Unavailable
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.tables import Base

log = logging.getLogger(__name__)

Row = tuple[type[Base], dict[str, Any]]
RETRY_DELAYS_S = (0.05, 0.2, 1.0, 2.0, 5.0)


class WriterObserver(Protocol):
    def rows_dropped(self, kind: str, reason: str, n: int) -> None: ...

    def refresh(self, writer: LogWriter) -> None: ...


def kind_of(table: type[Base]) -> str:
    """The queue "kind" is the target table (inference_logs, usage_ledger, audit_entries...)."""
    return str(table.__tablename__)


# SQLite's smallest bound on the ``?`` of one statement (SQLITE_MAX_VARIABLE_NUMBER < 3.32)
SQLITE_VARIABLES = 999


def _insert(session: Session, table: type[Base], rows: list[dict[str, Any]]) -> None:
    """Rows that all have the same keys (every ledger row does) skip the ORM's bulk path
    (~5 µs more Python per row sorting them, on the writer thread that shares the GIL with the
    event loop). On SQLite, when they give every column: SQLAlchemy's compiled statement and
    bind processors (``_plain_insert``) sent as multi-row ``INSERT … VALUES (…), (…)``, one
    statement per ~66 ledger rows. An executemany steps once per row, and the sqlite3 module
    releases the GIL around every step, so a batch of a thousand rows passed the GIL to and
    from the event loop a thousand times (server CPU per request, bench, one worker: 0.264 →
    0.243 ms median). Other uniform rows get a Core insert; mixed rows keep the ORM's bulk
    insert, which groups them by keys."""
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        session.execute(insert(table), rows)
        return
    connection = session.connection()
    plain = _plain_insert(table, frozenset(keys), connection.dialect)
    if plain is not None:
        plain.run(connection, rows)
        return
    renamed = _renamed_columns(table)  # attribute name -> column key, where they differ
    if renamed.keys() & keys:
        rows = [{renamed.get(k, k): v for k, v in row.items()} for row in rows]
    session.execute(insert(cast(Table, table.__table__)), rows)


@dataclass(frozen=True)
class PlainInsert:
    """One table's INSERT as SQLAlchemy compiles it, split for multi-row statements."""

    head: str  # "INSERT INTO t (a, b) VALUES"
    row: str  # "(?, ?)"
    attrs: tuple[str, ...]  # the rows' keys in parameter order
    bind: Callable[[list[Any]], tuple[Any, ...]]

    def run(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        values = [self.bind([row[a] for a in self.attrs]) for row in rows]
        per = max(1, SQLITE_VARIABLES // len(self.attrs))
        for start in range(0, len(values), per):
            chunk = values[start : start + per]
            sql = f"{self.head} {', '.join([self.row] * len(chunk))}"
            connection.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))


def _plain_insert(table: type[Base], keys: frozenset[str], dialect: Dialect) -> PlainInsert | None:
    """SQLAlchemy's own compiled INSERT and bind processors, applied without its per-row
    parameter machinery: the same values at ~7.5 instead of ~14 µs a ledger row on SQLite,
    on the thread that shares the GIL with the event loop. Only for SQLite (qmark) rows that
    give every column but the autoincrement key, so no Python-side default is skipped; other
    rows keep the Core insert (None)."""
    cache_key = (dialect.name, table, keys)
    if cache_key not in _PLAIN:
        core = cast(Table, table.__table__)
        renamed = _renamed_columns(table)
        attr_of = {column: attr for attr, column in renamed.items()}
        columns = frozenset(renamed.get(k, k) for k in keys)
        needed = {c.key for c in core.c if c is not core.autoincrement_column}
        plain = None
        if dialect.name == "sqlite" and columns == needed:
            compiled = insert(core).compile(dialect=dialect, column_keys=sorted(columns))
            order = tuple(compiled.positiontup or ())
            procs = [core.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in order]
            head, row = compiled.string.rsplit(" VALUES ", 1)
            attrs = tuple(attr_of.get(k, k) for k in order)
            plain = PlainInsert(f"{head} VALUES", row, attrs, _binder(procs))
        _PLAIN[cache_key] = plain
    return _PLAIN[cache_key]


def _binder(procs: Sequence[Callable[[Any], Any] | None]) -> Callable[[list[Any]], tuple[Any, ...]]:
    pairs = [(i, proc) for i, proc in enumerate(procs) if proc is not None]

    def bind(values: list[Any]) -> tuple[Any, ...]:
        for i, proc in pairs:
            values[i] = proc(values[i])
        return tuple(values)

    return bind


_PLAIN: dict[tuple[str, type[Base], frozenset[str]], PlainInsert | None] = {}


def _renamed_columns(table: type[Base]) -> dict[str, str]:
    if table not in _RENAMED:
        mapper = sa_inspect(table)
        _RENAMED[table] = {
            attr.key: attr.columns[0].key
            for attr in mapper.column_attrs
            if attr.key != attr.columns[0].key
        }
    return _RENAMED[table]


_RENAMED: dict[type[Base], dict[str, str]] = {}


class LogWriter:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        interval_s: float = 0.25,
        batch_size: int = 1000,
        max_pending: int = 200_000,
        on_written: Callable[[int], None] | None = None,
        audit: AuditChain | None = None,
        observer: WriterObserver | None = None,
    ) -> None:
        self._factory = factory
        self._audit = audit
        self._interval = interval_s
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._on_written = on_written
        self._observer = observer
        self._pending: deque[Row] = deque()
        self._by_kind: dict[str, int] = {}  # queued rows per kind, guarded by _lock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._loop, name="paramstack-logs", daemon=True)
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._worker.start()

    def submit(self, table: type[Base], row: dict[str, Any]) -> None:
        kind = kind_of(table)
        if len(self._pending) >= self._max_pending:
            self._dropped(kind, "queue_full", 1)
            raise Unavailable("the inference log queue is full; retry shortly", code="log_backlog")
        with self._lock:
            self._by_kind[kind] = self._by_kind.get(kind, 0) + 1
            self._pending.append((table, row))

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def audit(self) -> AuditChain | None:
        return self._audit

    def pending_by_kind(self) -> dict[str, int]:
        """Rows queued per kind (a copy: the counts move while the caller reads them)."""
        with self._lock:
            return dict(self._by_kind)

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop the thread after it has written everything submitted so far."""
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout_s)
        self.flush()  # whatever arrived after the thread's last drain (or if it never started)

    def flush(self) -> None:
        while self._pending:
            with self._lock:
                batch = [
                    self._pending.popleft()
                    for _ in range(min(self._batch_size, len(self._pending)))
                ]
                for table, _ in batch:
                    self._by_kind[kind_of(table)] -= 1
            self._write_with_retry(batch)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._observer is not None:
                    self._observer.refresh(self)
                self.flush()
            except Exception:  # never let one bad batch stop all logging; close() retries
                log.exception("inference log flush failed")
        self.flush()

    def _write_with_retry(self, batch: list[Row]) -> None:
        for delay in (*RETRY_DELAYS_S, None):
            try:
                self._write(batch)
                return
            except OperationalError as exc:  # locked or unreachable database: try again
                if delay is None:
                    log.error("giving up on %d log rows after retries: %s", len(batch), exc)
                    for table, _ in batch:
                        self._dropped(kind_of(table), "database_unavailable", 1)
                    return
                time.sleep(delay)

    def _write(self, batch: list[Row]) -> None:
        by_table: dict[type[Base], list[dict[str, Any]]] = {}
        for table, row in batch:
            by_table.setdefault(table, []).append(row)
        try:
            with self._factory() as session, session.begin():
                for table, rows in by_table.items():
                    if table is AuditEntry:
                        self._chain().append_many(session, rows)
                    else:
                        _insert(session, table, rows)
        except OperationalError:
            self._forget_audit_head()
            raise
        except DBAPIError:  # a row the database refuses (duplicate key, bad text): isolate it
            self._forget_audit_head()
            self._write_one_by_one(batch)
            return
        self._count(len(batch))

    def _write_one_by_one(self, batch: list[Row]) -> None:
        """A batch with one bad row: merge rows singly (a repeated key updates, e.g. feedback)."""
        for table, row in batch:
            try:
                with self._factory() as session, session.begin():
                    if table is AuditEntry:
                        self._chain().append_many(session, [row])
                    else:
                        session.merge(table(**row))
                self._count(1)
            except SQLAlchemyError as exc:
                self._forget_audit_head()
                # the driver's own message only: the SQL parameters may hold user data
                reason = getattr(exc, "orig", None) or type(exc).__name__
                log.error("dropping one %s row the database refused: %s", table.__name__, reason)
                self._dropped(kind_of(table), "database_refused", 1)

    def _chain(self) -> AuditChain:
        """Audit rows are chained (each carries the previous hash): they go through the chain,
        in the same transaction as the rest of the batch."""
        if self._audit is None:
            raise RuntimeError("audit rows submitted to a log writer without an audit chain")
        return self._audit

    def _forget_audit_head(self) -> None:
        if self._audit is not None:  # the cached head may belong to a rolled-back transaction
            self._audit.forget_head()

    def _dropped(self, kind: str, reason: str, n: int) -> None:
        """Queue-full refusals count too: they are rows the caller could not log."""
        if reason != "queue_full":
            self.dropped += n
        if self._observer is not None:
            self._observer.rows_dropped(kind, reason, n)

    def _count(self, n: int) -> None:
        self.written += n
        if self._on_written is not None:
            self._on_written(n)
