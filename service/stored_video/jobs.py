"""Stored-video jobs as a kind of long-running work (service/background/): a worker claims a
job under a lease, its heartbeat renews the lease while the frames run, and the outcome is
written with all results in one transaction; between jobs the workers delete expired results
and publish the completion messages still owed. A job whose server dies is taken over once its
lease lapses."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ml.video_frames import VideoError, probe
from service import errors
from service.background.notify import Notifier, completion_message
from service.background.workers import Heartbeat, Workers
from service.s3_objects import S3Objects
from service.settings import VideoSettings
from service.storage import video_jobs as store
from service.storage.schema import VideoJobRow
from service.stored_video.frame_analysis import (
    Entry,
    FrameAnalysisContext,
    VideoRun,
    detect_faces_in_video,
    search_faces_in_video,
)

log = logging.getLogger("facebank.video")


class JobStoppedError(Exception):
    """The job is no longer this worker's (its lease was taken over) or the server stops."""


class VideoWorkContext(FrameAnalysisContext, Protocol):
    """What running a job uses beyond its frames' analysis: the store the video is read from."""

    @property
    def s3(self) -> S3Objects: ...


class VideoJobs:
    """Stored-video jobs as a kind of long-running work, run by this replica's workers."""

    def __init__(
        self,
        context: VideoWorkContext,
        options: VideoSettings,
        notifier: Notifier,
        spool_dir: Path,
        decode_on_gpu: bool,  # NVDEC, where FFmpeg reaches a CUDA device
    ) -> None:
        self.context = context
        self.options = options
        self.notifier = notifier
        self.spool_dir = spool_dir
        self.decode_on_gpu = decode_on_gpu
        self.frames_done = 0  # frames analysed by this replica since it started
        self.workers = Workers("video", self, options.workers)

    def start(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.workers.start()

    def close(self) -> None:
        self.workers.close()

    def run_one(self, worker: str) -> bool:
        claimed = store.claim_next(
            self.context.read,
            self.context.write,
            worker,
            self.options.lease_s,
            lambda job: (job.pk, job.job_id, job.api, job.attempts, json.loads(job.request)),
        )
        if claimed is None:
            return False
        job_pk, job_id, api, attempts, request = claimed
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
            VideoRun(self.context, spool, request, options.sample_ms, on_frame, self.decode_on_gpu)
        )

    def _release(self, job_pk: int, worker: str) -> None:
        """Give a job back at shutdown, so another replica takes it at once (its lease set
        in the past)."""
        with self.context.write() as session:
            store.renew(session, job_pk, worker, -self.options.lease_s, 0)

    def housekeeping(self) -> None:
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
    """A running job's heartbeat and progress; the job stops at its next frame once the lease
    is lost or the server stops."""

    def __init__(self, jobs: VideoJobs, job_pk: int, worker: str) -> None:
        self.jobs, self.job_pk, self.worker = jobs, job_pk, worker
        self.frames = 0
        self.heartbeat = Heartbeat(self._renew, jobs.options.lease_s, f"video job {job_pk}")

    def on_frame(self, frames: int) -> None:
        self.jobs.frames_done += frames - self.frames
        self.frames = frames
        if self.heartbeat.lost or self.jobs.workers.stopping:
            raise JobStoppedError

    def stop(self) -> None:
        self.heartbeat.stop()

    def _renew(self) -> bool:
        with self.jobs.context.write() as session:
            lease_s = self.jobs.options.lease_s
            return store.renew(session, self.job_pk, self.worker, lease_s, self.frames)
