"""Video jobs in the database: created by the Start operations, claimed under a lease by any
replica's worker, finished in one transaction with all their results, read back page by page,
and deleted when their results expire."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from service import errors
from service.storage import leases
from service.storage.leases import Taken
from service.storage.schema import VideoJobRow, VideoResultRow

IN_PROGRESS, SUCCEEDED, FAILED = "IN_PROGRESS", "SUCCEEDED", "FAILED"


@dataclass(frozen=True)
class Outcome:
    """How a job ended: its status, why it failed, what the container said, its results in
    time order with each one's person index (None for face detection)."""

    status: str
    message: str | None
    metadata: dict[str, Any] | None
    results: Sequence[tuple[dict[str, Any], int | None]]


def add_job(session: Session, job_id: str, api: str, request: dict[str, Any]) -> None:
    session.add(
        VideoJobRow(
            job_id=job_id,
            api=api,
            status=IN_PROGRESS,
            request=json.dumps(request),
            created_at=time.time(),
            lease_until=0.0,
            attempts=0,
            frames_done=0,
            notified="NotificationChannel" not in request,  # no message owed
        )
    )


def jobs_in_progress(session: Session) -> int:
    query = select(func.count()).select_from(VideoJobRow).where(VideoJobRow.status == IN_PROGRESS)
    return int(session.scalar(query) or 0)


def find_job(session: Session, job_id: str, api: str) -> VideoJobRow:
    """The job of that id started by `api`; ResourceNotFoundException otherwise (as for an
    expired job, whose results are gone)."""
    job = session.scalars(
        select(VideoJobRow).where(VideoJobRow.job_id == job_id, VideoJobRow.api == api)
    ).one_or_none()
    if job is None:
        raise errors.ResourceNotFoundError(f"The job {job_id} of {api} was not found")
    return job


def _running() -> ColumnElement[bool]:
    return VideoJobRow.status == IN_PROGRESS


def claim(session: Session, worker: str, lease_s: float) -> VideoJobRow | None:
    """The oldest job in progress whose lease is free, now leased to `worker`."""
    return leases.claim(session, VideoJobRow, _running(), worker, lease_s)


def claim_next(
    read: leases.Sessions,
    write: leases.Sessions,
    worker: str,
    lease_s: float,
    take: Callable[[VideoJobRow], Taken],
) -> Taken | None:
    """What `take` reads of the oldest job in progress whose lease is free, now leased to
    `worker`; None when no job waits."""
    return leases.claim_next(read, write, VideoJobRow, _running, worker, lease_s, take)


def renew(session: Session, job_pk: int, worker: str, lease_s: float, frames: int) -> bool:
    """Extend the lease (and record progress); False when the job is no longer this worker's."""
    return leases.renew(
        session, VideoJobRow, _running(), job_pk, worker, lease_s, frames_done=frames
    )


def finish(session: Session, job_pk: int, worker: str, outcome: Outcome) -> bool:
    """Write the outcome and every result at once, if the job is still this worker's."""
    job = session.get(VideoJobRow, job_pk, with_for_update=True)
    if job is None or job.claimed_by != worker or job.status != IN_PROGRESS:
        return False
    job.status, job.status_message = outcome.status, outcome.message
    job.video_metadata = None if outcome.metadata is None else json.dumps(outcome.metadata)
    job.completed_at, job.claimed_by, job.lease_until = time.time(), None, 0.0
    session.execute(delete(VideoResultRow).where(VideoResultRow.job_pk == job_pk))
    session.add_all(_result_rows(job_pk, outcome.results))
    return True


def _result_rows(
    job_pk: int, results: Sequence[tuple[dict[str, Any], int | None]]
) -> list[VideoResultRow]:
    by_index = sorted(range(len(results)), key=lambda i: (results[i][1] or 0, i))
    rank_by_index = {position: rank for rank, position in enumerate(by_index)}
    return [
        VideoResultRow(job_pk=job_pk, by_time=i, by_index=rank_by_index[i], body=json.dumps(body))
        for i, (body, _) in enumerate(results)
    ]


def result_page(
    session: Session, job_pk: int, order: str, after: int, limit: int
) -> list[VideoResultRow]:
    """Up to `limit` results after rank `after` (-1: from the start), by time or by index."""
    rank = VideoResultRow.by_index if order == "INDEX" else VideoResultRow.by_time
    return list(
        session.scalars(
            select(VideoResultRow)
            .where(VideoResultRow.job_pk == job_pk, rank > after)
            .order_by(rank)
            .limit(limit)
        )
    )


def unnotified(session: Session) -> list[VideoJobRow]:
    """Finished jobs whose completion message is still owed, locked for this transaction (on
    PostgreSQL another replica skips them)."""
    return list(
        session.scalars(select(VideoJobRow).where(_owed()).with_for_update(skip_locked=True))
    )


def _expired(retention_s: float) -> Any:
    cutoff = time.time() - retention_s
    return (VideoJobRow.status != IN_PROGRESS) & (VideoJobRow.completed_at < cutoff)


def _owed() -> Any:
    return (VideoJobRow.status != IN_PROGRESS) & VideoJobRow.notified.is_(False)


def housekeeping_due(session: Session, retention_s: float, notifying: bool) -> bool:
    """Whether results expired or completion messages are owed (read only)."""
    due = _expired(retention_s) | _owed() if notifying else _expired(retention_s)
    return session.scalar(select(VideoJobRow.pk).where(due).limit(1)) is not None


def expire(session: Session, retention_s: float) -> int:
    """Delete the jobs (and their results) finished more than `retention_s` ago."""
    result = session.execute(delete(VideoJobRow).where(_expired(retention_s)))
    return int(getattr(result, "rowcount", 0))


def status_counts(session: Session) -> tuple[dict[str, int], float | None]:
    """Jobs by status, and when the oldest job nobody is running was created (None if none)."""
    counts = dict(
        session.execute(select(VideoJobRow.status, func.count()).group_by(VideoJobRow.status)).all()
    )
    oldest = session.scalar(
        select(func.min(VideoJobRow.created_at)).where(
            VideoJobRow.status == IN_PROGRESS, VideoJobRow.lease_until < time.time()
        )
    )
    return {str(k): int(v) for k, v in counts.items()}, oldest
