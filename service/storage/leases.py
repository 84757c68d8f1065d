"""Claims and leases on rows of long-running work (LeasedRow): the oldest row that is running
and whose lease lapsed goes to one worker, which renews the lease (its heartbeat) while it
runs; a worker whose server dies stops renewing, and any replica claims the row again. Which
rows are running is the caller's predicate (a video job IN_PROGRESS, say)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from service.storage.schema import LeasedRow

Row = TypeVar("Row", bound=LeasedRow)
Taken = TypeVar("Taken")
Sessions = Callable[[], AbstractContextManager[Session]]


def claimable(table: type[LeasedRow], running: ColumnElement[bool]) -> ColumnElement[bool]:
    return running & (table.lease_until < time.time())


def any_claimable(session: Session, table: type[LeasedRow], running: ColumnElement[bool]) -> bool:
    """Whether a row waits for a worker: read first, so that idle workers never write (an
    empty write would tell storage health that a full disk takes writes again)."""
    found = session.scalar(select(table.pk).where(claimable(table, running)).limit(1))
    return found is not None


def claim(
    session: Session, table: type[Row], running: ColumnElement[bool], worker: str, lease_s: float
) -> Row | None:
    """The oldest claimable row, now leased to `worker`. On PostgreSQL concurrent claimers
    skip each other's locked rows; SQLite has one writer at a time."""
    now = time.time()
    row = session.scalars(
        select(table)
        .where(claimable(table, running))
        .order_by(table.pk)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is not None:
        row.claimed_by, row.lease_until, row.attempts = worker, now + lease_s, row.attempts + 1
    return row


def renew(
    session: Session,
    table: type[LeasedRow],
    running: ColumnElement[bool],
    pk: int,
    worker: str,
    lease_s: float,
    **progress: Any,
) -> bool:
    """Extend the lease by `lease_s` from now (negative: give the row back at once), with
    `progress` columns; False when the row is no longer this worker's or no longer running."""
    result = session.execute(
        update(table)
        .where(table.pk == pk, table.claimed_by == worker, running)
        .values(lease_until=time.time() + lease_s, **progress)
    )
    return bool(getattr(result, "rowcount", 0))


def claim_next(
    read: Sessions,
    write: Sessions,
    table: type[Row],
    running: Callable[[], ColumnElement[bool]],
    worker: str,
    lease_s: float,
    take: Callable[[Row], Taken],
) -> Taken | None:
    """What `take` reads of the oldest claimable row, now leased to `worker`, inside the
    claim's transaction; None when no row waits. Read first, so that idle workers never
    write."""
    with read() as session:
        if not any_claimable(session, table, running()):
            return None
    with write() as session:
        row = claim(session, table, running(), worker, lease_s)
        return None if row is None else take(row)
