"""Video jobs in the database, on SQLite and PostgreSQL: one claim at a time under a lease,
an outcome written with all its results or not at all, results expiring with their job."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.storage import video_jobs as store
from service.storage.database import make_engine, session_factories, upgrade_schema
from service.storage.schema import VideoJobRow, VideoResultRow

REQUEST = {"Video": {"S3Object": {"Bucket": "b", "Name": "v.mp4"}}}


def _sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    return session_factories(engine)[1]


def test_a_leased_job_is_nobody_elses_until_its_lease_lapses(database_url: str) -> None:
    writer = _sessions(database_url)
    with writer.begin() as session:
        store.add_job(session, "job-1", "StartFaceDetection", REQUEST)
    with writer.begin() as session:
        claimed = store.claim(session, "worker-a", lease_s=60)
        assert claimed is not None and claimed.attempts == 1
    with writer.begin() as session:
        assert store.claim(session, "worker-b", lease_s=60) is None  # leased to worker-a
    with writer.begin() as session:  # worker-a's server dies: its lease is made to lapse
        assert store.renew(session, claimed.pk, "worker-a", -1, 0)
    with writer.begin() as session:
        taken = store.claim(session, "worker-b", lease_s=60)
        assert taken is not None and taken.attempts == 2
    outcome = store.Outcome(store.SUCCEEDED, None, {"Codec": "h264"}, [({"Timestamp": 0}, None)])
    with writer.begin() as session:
        assert not store.finish(session, claimed.pk, "worker-a", outcome)  # no longer its job
        assert not store.renew(session, claimed.pk, "worker-a", 60, 3)
    with writer.begin() as session:
        assert store.finish(session, claimed.pk, "worker-b", outcome)
    with writer.begin() as session:
        job = store.find_job(session, "job-1", "StartFaceDetection")
        assert job.status == store.SUCCEEDED and job.claimed_by is None
        assert len(store.result_page(session, job.pk, "TIMESTAMP", -1, 10)) == 1


def test_results_expire_with_their_job(database_url: str) -> None:
    writer = _sessions(database_url)
    with writer.begin() as session:
        store.add_job(session, "old", "StartFaceSearch", REQUEST)
        store.add_job(session, "running", "StartFaceSearch", REQUEST)
    with writer.begin() as session:
        job = store.claim(session, "w", 60)
        assert job is not None and job.job_id == "old"
    entries = [({"Timestamp": t}, t % 2) for t in range(5)]
    with writer.begin() as session:
        store.finish(session, job.pk, "w", store.Outcome(store.SUCCEEDED, None, None, entries))
    with writer.begin() as session:
        assert store.expire(session, retention_s=3600) == 0  # finished just now
    time.sleep(0.05)
    with writer.begin() as session:
        assert store.expire(session, retention_s=0.01) == 1  # a job in progress never expires
    with writer.begin() as session:
        assert session.scalar(select(func.count()).select_from(VideoResultRow)) == 0
        assert session.scalars(select(VideoJobRow.job_id)).all() == ["running"]
