"""The application factory: settings in, a FastAPI app with both surfaces out."""

from __future__ import annotations

import io
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from PIL import Image
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from ml.decode import ImageLimits
from ml.device_decode import TorchvisionDecoder
from ml.networks.runner import ChipRunner
from ml.pipeline import FacePipeline, MeshCheck, load_pipeline, resolve_device
from ml.types import Box, Detection
from service.access.keys import KeyRing
from service.background.notify import Notifier
from service.batching import (
    BatchedChips,
    BatchedDecoder,
    BatchedDetector,
    BatchedEmbedder,
    BatchQueue,
)
from service.context import OperationContext
from service.http import health, rest, wire
from service.http.observe import Observer, ServerState
from service.index.collection_index import IndexOptions
from service.index.device_vectors import warm_up as warm_up_search
from service.index.registry import IndexRegistry
from service.index.searcher import BatchedSearch
from service.operations.dispatch import Operations
from service.s3_objects import MAX_S3_IMAGE_BYTES, S3Objects
from service.settings import Settings
from service.storage import video_jobs as video_store
from service.storage.availability import StorageHealth
from service.storage.calibration_record import CalibrationMismatchError, record_or_check
from service.storage.database import open_database, session_factories
from service.storage.pagination import PageTokens, load_or_create_secret
from service.storage.queries import collection_stats
from service.storage.schema import CollectionRow
from service.stored_video.jobs import VideoJobs
from service.stored_video.options import VideoOptions

log = logging.getLogger("facebank")
DOCS_ASSETS = "/docs-assets"


def load_face_pipeline(settings: Settings, calibration_file: Path | None) -> FacePipeline:
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    # Inline images are held to 5 MB by validation; images read from S3 may be up to 15 MB.
    limits = ImageLimits(max_bytes=MAX_S3_IMAGE_BYTES, max_pixels=settings.max_image_pixels)
    return load_pipeline(
        settings.models_dir,
        settings.model_version,
        resolve_device(settings.device),
        calibration_path=calibration_file,
        limits=limits,
        detection_max_side=settings.detection_max_side,
        min_face_size=settings.min_face_size,
        cpu_bf16=settings.embed_cpu_bf16,
        mesh_check=mesh_check(settings),
    )


def mesh_check(settings: Settings) -> MeshCheck | None:
    if settings.landmarks == "five":
        return None
    return MeshCheck(settings.face_min_presence, settings.face_sure_probability)


def warm_up(pipeline: FacePipeline, settings: Settings) -> None:
    """Run each model once, and at the largest batch it will see, so the first requests do not
    pay for lazy initialisation."""
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    pipeline.detector.detect(noise)
    pipeline.detector.detect_many([noise] * settings.detect_batch_size)
    pipeline.embedder.embed(noise[None])
    pipeline.embedder.embed(np.repeat(noise[None], settings.embed_batch_size, axis=0))
    if pipeline.attributes is not None:
        marks = np.array([[50, 60], [110, 60], [80, 90], [55, 120], [105, 120]], dtype=float)
        pipeline.attributes.estimate(noise, [Detection(Box(20, 20, 140, 150), 1.0, marks)])


def warm_up_decoder(pipeline: FacePipeline) -> None:
    """Decode one JPEG through the server's decoder, so nvJPEG's set-up happens at start."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((160, 160, 3), 128, dtype=np.uint8)).save(buffer, format="JPEG")
    pipeline.decode(buffer.getvalue())


def batch_models(
    pipeline: FacePipeline, settings: Settings
) -> tuple[FacePipeline, list[BatchQueue[Any, Any]]]:
    """The pipeline with each model (and the device JPEG decoder) behind its own queue and
    worker, so concurrent requests share passes and one request's stage overlaps another's;
    and those queues, to close at shutdown."""
    detector = BatchedDetector(
        pipeline.detector,
        max_batch=settings.detect_batch_size,
        max_wait_s=settings.detect_batch_wait_ms / 1000.0,
        max_queue=settings.detect_queue_size,
    )
    embedder = BatchedEmbedder(
        pipeline.embedder,
        max_batch=settings.embed_batch_size,
        max_wait_s=settings.embed_batch_wait_ms / 1000.0,
        max_queue=settings.embed_queue_size,
    )
    queues: list[BatchQueue[Any, Any]] = [detector.queue, embedder.queue]
    batched = replace(pipeline, detector=detector, embedder=embedder)
    if pipeline.attributes is not None:
        attributes = pipeline.attributes.with_runners(
            lambda name, runner: _batched_chips(name, runner, settings, queues)
        )
        batched = replace(batched, attributes=attributes)
    device = resolve_device(settings.device)
    if settings.jpeg_decoder == "torchvision" and device.type == "cuda":
        decoder = BatchedDecoder(
            pipeline.limits,
            device,
            max_batch=settings.decode_batch_size,
            max_wait_s=settings.decode_batch_wait_ms / 1000.0,
            max_queue=settings.decode_queue_size,
        )
        queues.append(decoder.queue)
        return replace(batched, decoder=decoder), queues
    if settings.jpeg_decoder == "torchvision":
        return replace(batched, decoder=TorchvisionDecoder(pipeline.limits, device)), queues
    return batched, queues


def _batched_chips(
    name: str, runner: ChipRunner, settings: Settings, queues: list[BatchQueue[Any, Any]]
) -> BatchedChips:
    """An attribute network behind its own queue; face chips are batched like the embedder's
    crops, so they share its batch settings."""
    stage = BatchedChips(
        f"attributes-{name}",
        runner,
        max_batch=settings.embed_batch_size,
        max_wait_s=settings.embed_batch_wait_ms / 1000.0,
        max_queue=settings.embed_queue_size,
    )
    queues.append(stage.queue)
    return stage


def build_context(settings: Settings, pipeline: FacePipeline) -> tuple[OperationContext, Engine]:
    engine = open_database(settings.database_address(), settings.data_dir)
    reader, writer = session_factories(engine)
    # Refuses to start on a calibration other than the one the deployment records.
    record_or_check(writer, pipeline.calibration)
    secret = settings.token_secret.get_secret_value().encode() or load_or_create_secret(
        settings.data_dir / "token.key"
    )
    options = IndexOptions(
        settings.index_kind,
        settings.ivf_min_vectors,
        settings.ivf_nprobe,
        search_device(settings),
    )
    indexes = IndexRegistry(
        settings.data_dir / "indexes",
        pipeline.spec.embedding_dim,
        pipeline.spec.network,  # models on the same weights share one index format
        settings.snapshot_every,
        options,
    )
    context = OperationContext(
        pipeline=pipeline,
        reader=reader,
        writer=writer,
        indexes=indexes,
        tokens=PageTokens(secret),
        region=settings.region,
        account_id=settings.account_id,
        max_faces_per_collection=settings.max_faces_per_collection,
        searcher=BatchedSearch(
            max_batch=settings.search_batch_size,
            max_wait_s=settings.search_batch_wait_ms / 1000.0,
            max_queue=settings.search_queue_size,
        ),
        storage=StorageHealth(settings.data_dir),
        s3=S3Objects(settings.s3_endpoint_url, settings.s3_region or settings.region),
        video=video_options(settings),
        notifier=Notifier(settings.sns_endpoint_url, settings.sns_region or settings.region),
    )
    return context, engine


def video_options(settings: Settings) -> VideoOptions:
    return VideoOptions(
        sample_ms=settings.video_sample_ms,
        max_bytes=settings.video_max_bytes,
        max_duration_s=settings.video_max_duration_s,
        max_jobs=settings.video_max_jobs,
        workers=settings.video_workers,
        lease_s=settings.video_lease_s,
        max_attempts=settings.video_max_attempts,
        retention_s=settings.video_retention_s,
        decode_on_gpu=resolve_device(settings.device).type == "cuda",
    )


def search_device(settings: Settings) -> str:
    """The torch device exact searches run on, or "" for FAISS on the host."""
    device = resolve_device(settings.device)
    if settings.search_backend == "torch" or (
        settings.search_backend == "auto" and device.type == "cuda"
    ):
        return str(device)
    return ""


def server_state(
    operations: Operations,
    queues: list[BatchQueue[Any, Any]],
    settings: Settings,
    workers: VideoJobs,
    keyring: KeyRing,
) -> ServerState:
    """What /metrics reads from the running server at each scrape."""
    context = operations.context
    searcher = context.searcher
    stages = [*queues, searcher.queue] if isinstance(searcher, BatchedSearch) else list(queues)
    return ServerState(
        info={
            "face_model_version": context.pipeline.spec.face_model_version,
            "model": context.pipeline.spec.version,
            "device": str(resolve_device(settings.device)),
            "search": search_device(settings) or "faiss",
        },
        queues=lambda: stages,
        collections=lambda: _collection_stats(context),
        pixels_in_flight=lambda: operations.pixels.in_use,
        storage_full=lambda: context.storage.full_since() is not None,
        video_jobs=lambda: _video_stats(context),
        video_frames=lambda: workers.frames_done,
        keys_file_refused=keyring.file_refused,
    )


def _video_stats(context: OperationContext) -> tuple[dict[str, int], float | None]:
    with context.read() as session:
        return video_store.status_counts(session)


def _reload_keys_on_sighup(keyring: KeyRing) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda *_: keyring.reload())


def _collection_stats(context: OperationContext) -> list[tuple[str, int, int]]:
    with context.read() as session:
        return collection_stats(session, context.indexes.watermark)


def load_indexes(context: OperationContext) -> None:
    """Bring every collection's index up to date before readiness says yes."""
    with context.read() as session:
        pks = session.scalars(select(CollectionRow.pk)).all()
        for pk in pks:
            context.indexes.synced(session, pk)


def create_app(settings: Settings, pipeline: FacePipeline | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Resolved once: what is served is what was loaded, whatever appears on disk later.
        calibration_file = settings.calibration_in_use()
        app.state.calibration_source = str(calibration_file or "packaged")
        loaded = pipeline or load_face_pipeline(settings, calibration_file)
        warm_up(loaded, settings)
        loaded, queues = batch_models(loaded, settings)
        warm_up_decoder(loaded)
        try:
            context, engine = build_context(settings, loaded)
        except CalibrationMismatchError as exc:
            log.error("facebank cannot start: %s", exc)
            raise
        searching_on = search_device(settings)
        if searching_on:
            warm_up_search(loaded.spec.embedding_dim, torch.device(searching_on))
        load_indexes(context)
        app.state.operations = Operations(
            context, settings.max_inflight, settings.max_inflight_pixels
        )
        workers = VideoJobs(
            context, context.video, context.notifier, settings.data_dir / "video-spool"
        )
        state = server_state(app.state.operations, queues, settings, workers, app.state.keyring)
        app.state.metrics.register(state)
        app.state.ready = True
        workers.start()
        _reload_keys_on_sighup(app.state.keyring)
        log.info(
            "facebank ready: model %s on %s, exact search on %s, Similarity calibration %s (%s)",
            loaded.spec.version,
            resolve_device(settings.device),
            searching_on or "faiss (cpu)",
            loaded.calibration.calibration_version,
            app.state.calibration_source,
        )
        yield
        app.state.ready = False
        workers.close()  # a running job is given back for another replica to take
        context.indexes.close()
        for queue in queues:
            queue.close()
        context.searcher.close()
        engine.dispose()

    # Swagger UI and ReDoc from assets the server itself serves (fastapi-offline ships them): an
    # on-prem node without internet still shows its docs.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="facebank",
        summary="Self-hosted face detection, comparison and search with Rekognition's semantics",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    # A keys file that cannot be used stops the start here (KeyFileError).
    app.state.keyring = KeyRing(settings.keys, settings.access_keys_file)
    app.state.ready = False
    app.state.metrics = CollectorRegistry()
    app.state.observer = Observer(app.state.metrics)

    app.include_router(health.router)
    app.include_router(wire.router)
    rest.install(app)
    return app
