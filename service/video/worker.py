"""The video workers of one replica: each claims a job under a lease, renews it while it runs,
and writes the outcome with all results in one transaction; between jobs they delete expired
results and publish the completion messages still owed. Every replica runs them on the same
database, so N replicas share one queue, and a job whose server dies is taken over once its
lease lapses."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ml.video import VideoError, probe
from service import errors
from service.context import OperationContext
from service.storage.schema import VideoJobRow
from service.video import store
from service.video.analysis import (
    Entry,
    VideoRun,
    detect_faces_in_video,
    search_faces_in_video,
)
from service.video.notify import Notifier, completion_message
from service.video.options import VideoOptions

log = logging.getLogger("facebank.video")
IDLE_POLL_S = 0.5  # how often an idle worker looks for a job
HOUSEKEEPING_S = 10.0


class JobStoppedError(Exception):
    """The job is no longer this worker's (its lease was taken over) or the server stops."""


class VideoWorkers:
    def __init__(
        self,
        context: OperationContext,
        options: VideoOptions,
        notifier: Notifier,
        spool_dir: Path,
    ) -> None:
        self.context = context
        self.options = options
        self.notifier = notifier
        self.spool_dir = spool_dir
        self.frames_done = 0  # frames analysed by this replica since it started
        self._stop = threading.Event()
        self._name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._threads = [
            threading.Thread(target=self._loop, args=(f"{self._name}:{i}",), daemon=True)
            for i in range(options.workers)
        ]

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self, worker: str) -> None:
        next_housekeeping = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_housekeeping:
                    self._housekeeping()
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_S
                if not self._run_one(worker):
                    self._stop.wait(IDLE_POLL_S)
            except Exception:  # the database away, say: the lease lapses, the job is retried
                log.exception("video worker %s: retrying shortly", worker)
                self._stop.wait(HOUSEKEEPING_S)

    def _run_one(self, worker: str) -> bool:
        with self.context.read() as session:
            if not store.any_claimable(session):
                return False
        with self.context.write() as session:
            job = store.claim(session, worker, self.options.lease_s)
            if job is None:
                return False
            job_pk, job_id, api, attempts = job.pk, job.job_id, job.api, job.attempts
            request = json.loads(job.request)
        log.info("video job %s (%s): attempt %d on %s", job_id, api, attempts, worker)
        if attempts > self.options.max_attempts:
            message = (
                f"Gave up after {attempts - 1} attempts: the server stopped or failed each "
                "time (its log says why)"
            )
            outcome = store.Outcome(store.FAILED, message, None, [])
        else:
            try:
                outcome = self._analyse(job_pk, job_id, api, request, worker)
            except JobStoppedError:
                self._release(job_pk, worker)
                return True
        with self.context.write() as session:
            store.finish(session, job_pk, worker, outcome)
        log.info("video job %s: %s %s", job_id, outcome.status, outcome.message or "")
        self._publish_owed()
        return True

    def _analyse(
        self, job_pk: int, job_id: str, api: str, request: dict[str, Any], worker: str
    ) -> store.Outcome:
        spool = self.spool_dir / f"{job_id}.video"
        lease = _Lease(self, job_pk, worker)
        try:
            self.context.s3.download(request["Video"]["S3Object"], spool, self.options.max_bytes)
            metadata = probe(spool)
            limit = self.options.max_duration_s
            if metadata.duration_ms > limit * 1000:
                message = (
                    f"The video lasts {metadata.duration_ms / 1000:.0f} s; this server takes "
                    f"videos up to {limit:.0f} s (FACEBANK_VIDEO_MAX_DURATION_S)"
                )
                return store.Outcome(store.FAILED, message, metadata.as_rekognition(), [])
            results = self._results(api, spool, request, lease.on_frame)
            return store.Outcome(store.SUCCEEDED, None, metadata.as_rekognition(), results)
        except VideoError as exc:
            return store.Outcome(store.FAILED, f"The video cannot be read: {exc}", None, [])
        except errors.ServiceError as exc:
            return store.Outcome(store.FAILED, f"{exc.code}: {exc.message}", None, [])
        finally:
            lease.stop()
            spool.unlink(missing_ok=True)

    def _results(
        self, api: str, spool: Path, request: dict[str, Any], on_frame: Any
    ) -> list[Entry]:
        analyse = search_faces_in_video if api == "StartFaceSearch" else detect_faces_in_video
        options = self.options
        return analyse(
            VideoRun(
                self.context, spool, request, options.sample_ms, on_frame, options.decode_on_gpu
            )
        )

    def _release(self, job_pk: int, worker: str) -> None:
        """Give a job back at shutdown, so another replica takes it at once (its lease set
        in the past)."""
        with self.context.write() as session:
            store.renew(session, job_pk, worker, -self.options.lease_s, 0)

    def _housekeeping(self) -> None:
        with self.context.read() as session:
            notifying = self.notifier.configured
            if not store.housekeeping_due(session, self.options.retention_s, notifying):
                return
        with self.context.write() as session:
            expired = store.expire(session, self.options.retention_s)
        if expired:
            log.info("deleted %d video jobs whose results expired", expired)
        self._publish_owed()

    def _publish_owed(self) -> None:
        """Completion messages owed, each published once it is locked by this replica."""
        if not self.notifier.configured:
            return
        with self.context.write() as session:
            for job in store.unnotified(session):
                self._publish(job)

    def _publish(self, job: VideoJobRow) -> None:
        request = json.loads(job.request)
        channel = request["NotificationChannel"]
        message = completion_message(
            job.job_id, job.status, job.api, request, job.completed_at or time.time()
        )
        try:
            self.notifier.publish(channel["SNSTopicArn"], message)
        except (BotoCoreError, ClientError) as exc:
            log.warning("completion message of %s not published yet: %s", job.job_id, exc)
            return
        job.notified = True


class _Lease:
    """Renews a running job's lease in its own thread; the job stops at its next frame once
    the lease is lost or the server stops."""

    def __init__(self, workers: VideoWorkers, job_pk: int, worker: str) -> None:
        self.workers, self.job_pk, self.worker = workers, job_pk, worker
        self.frames = 0
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()

    def on_frame(self, frames: int) -> None:
        self.workers.frames_done += frames - self.frames
        self.frames = frames
        if self.lost or self.workers.stopping:
            raise JobStoppedError

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _renew(self) -> None:
        lease_s = self.workers.options.lease_s
        while not self._done.wait(lease_s / 3):
            try:
                with self.workers.context.write() as session:
                    kept = store.renew(session, self.job_pk, self.worker, lease_s, self.frames)
            except Exception:  # a missed renewal is retried; the lease lasts three of them
                log.warning("lease of video job %d not renewed", self.job_pk, exc_info=True)
                continue
            if not kept:
                self.lost = True
                return
