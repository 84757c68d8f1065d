"""Stream processors in the database: created STOPPED, started and stopped by the operations on
any replica, claimed while STARTING or RUNNING by one replica's worker under a lease (so a
processor runs exactly once, and is taken over when its replica dies), and read back page by
page."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from service import errors
from service.storage import leases
from service.storage.leases import Taken
from service.storage.schema import StreamProcessorRow

STOPPED, STARTING, RUNNING, STOPPING, FAILED = (
    "STOPPED",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "FAILED",
)
ACTIVE = (STARTING, RUNNING)


def _running() -> ColumnElement[bool]:
    return StreamProcessorRow.status.in_(ACTIVE)


def add(session: Session, name: str, request: dict[str, Any], tags: dict[str, str]) -> None:
    now = time.time()
    if session.scalar(select(StreamProcessorRow.pk).where(StreamProcessorRow.name == name)):
        raise errors.ResourceInUseError(f"A stream processor named {name} already exists")
    session.add(
        StreamProcessorRow(
            name=name,
            status=STOPPED,
            request=json.dumps(request),
            tags=json.dumps(tags),
            created_at=now,
            updated_at=now,
            generation=0,
            lease_until=0.0,
            attempts=0,
        )
    )
    session.flush()


def find(session: Session, name: str, *, lock: bool = False) -> StreamProcessorRow:
    query = select(StreamProcessorRow).where(StreamProcessorRow.name == name)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise errors.ResourceNotFoundError(f"The stream processor {name} does not exist")
    return row


def page(session: Session, after: int, limit: int) -> list[StreamProcessorRow]:
    """Up to `limit` processors whose pk is above `after`, in creation order."""
    query = (
        select(StreamProcessorRow)
        .where(StreamProcessorRow.pk > after)
        .order_by(StreamProcessorRow.pk)
        .limit(limit)
    )
    return list(session.scalars(query))


def active_count(session: Session) -> int:
    query = select(func.count()).select_from(StreamProcessorRow).where(_running())
    return int(session.scalar(query) or 0)


def start(row: StreamProcessorRow) -> str:
    """STARTING, free for any replica's worker to claim at once; the new session's id."""
    row.status, row.status_message = STARTING, None
    row.session_id = str(uuid.uuid4())
    row.lease_until, row.claimed_by, row.attempts = 0.0, None, 0
    row.updated_at = time.time()
    return row.session_id


def stop(row: StreamProcessorRow) -> None:
    """STOPPING while a worker holds it (it stops at its next heartbeat and writes STOPPED);
    STOPPED at once when none does."""
    held = row.claimed_by is not None and row.lease_until > time.time()
    row.status = STOPPING if held else STOPPED
    row.status_message = None
    row.generation += 1
    row.updated_at = time.time()


def claim_next(
    read: leases.Sessions,
    write: leases.Sessions,
    worker: str,
    lease_s: float,
    take: Callable[[StreamProcessorRow], Taken],
) -> Taken | None:
    """What `take` reads of the oldest running processor nobody holds, now leased to
    `worker`; None when none waits."""
    return leases.claim_next(read, write, StreamProcessorRow, _running, worker, lease_s, take)


def renew(session: Session, pk: int, worker: str, lease_s: float) -> StreamProcessorRow | None:
    """The row with its lease renewed, or None when it is no longer this worker's to run (it
    was stopped, deleted, or taken over)."""
    if not leases.renew(session, StreamProcessorRow, _running(), pk, worker, lease_s):
        return None
    return session.get(StreamProcessorRow, pk)


def fail(session: Session, pk: int, worker: str, message: str) -> None:
    """FAILED, saying why, and the claim given up; only by the processor's holder."""
    row = session.get(StreamProcessorRow, pk, with_for_update=True)
    if row is None or row.claimed_by != worker or row.status not in ACTIVE:
        return
    row.status, row.status_message = FAILED, message
    row.claimed_by, row.lease_until = None, 0.0


def release(session: Session, pk: int, worker: str) -> None:
    """The holder has stopped: a STOPPING processor is STOPPED; a running one (the server is
    shutting down) is given back for another replica to take at once."""
    row = session.get(StreamProcessorRow, pk, with_for_update=True)
    if row is None or row.claimed_by != worker:
        return
    if row.status == STOPPING:
        row.status = STOPPED
    row.claimed_by, row.lease_until = None, 0.0


def settle_abandoned(session: Session) -> int:
    """STOPPING processors whose holder died before it stopped them are STOPPED."""
    rows = session.scalars(
        select(StreamProcessorRow).where(
            StreamProcessorRow.status == STOPPING, StreamProcessorRow.lease_until < time.time()
        )
    ).all()
    for row in rows:
        row.status, row.claimed_by = STOPPED, None
    return len(rows)


def status_counts(session: Session) -> dict[str, int]:
    counts = session.execute(
        select(StreamProcessorRow.status, func.count()).group_by(StreamProcessorRow.status)
    ).all()
    return {str(status): int(count) for status, count in counts}
