"""The application factory: settings in, a FastAPI app with both surfaces out."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from ml.pipeline import FacePipeline, resolve_device
from service.access.keys import KeyRing
from service.batching import (
    BatchQueue,
)
from service.build import (
    batch_models,
    build_context,
    build_operations,
    build_pipeline,
    search_device,
    warm_up,
    warm_up_decoder,
)
from service.context import OperationContext
from service.http import console, health, rest, wire
from service.http.observe import Observer, ServerState
from service.http.state import AppState, attach
from service.index.device_vectors import warm_up as warm_up_search
from service.index.searcher import BatchedSearch
from service.operations.dispatch import Operations
from service.settings import Settings
from service.storage import stream_processors as stream_store
from service.storage import video_jobs as video_store
from service.storage.calibration_record import CalibrationMismatchError
from service.storage.queries import collection_stats
from service.storage.schema import CollectionRow
from service.stored_video.jobs import VideoJobs
from service.streaming.cameras import Cameras
from service.streaming.processors import StreamProcessors
from service.streaming.sinks import KinesisSink, Sinks

log = logging.getLogger("facebank")
DOCS_ASSETS = "/docs-assets"


def server_state(
    operations: Operations,
    queues: list[BatchQueue[Any, Any]],
    settings: Settings,
    workers: VideoJobs,
    processors: StreamProcessors,
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
        stream_processors=lambda: _processor_stats(context),
        streams=processors.stats,
        webhook_drops=processors.sinks.webhook_drops,
    )


def _processor_stats(context: OperationContext) -> dict[str, int]:
    with context.read() as session:
        return stream_store.status_counts(session)


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
        state.calibration_source = str(calibration_file or "packaged")
        loaded = pipeline or build_pipeline(settings, calibration_file)
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
        operations = build_operations(settings, context)
        state.operations = operations
        on_gpu = resolve_device(settings.device).type == "cuda"
        spool = settings.data_dir / "video-spool"
        workers = VideoJobs(context, context.video, context.notifier, spool, on_gpu)
        kinesis = KinesisSink(
            settings.kinesis_endpoint_url, settings.kinesis_region or settings.region
        )
        sinks = Sinks(kinesis)
        processors = StreamProcessors(context, settings.streams, state.cameras, sinks, on_gpu)
        state.processors = processors
        state.metrics.register(
            server_state(operations, queues, settings, workers, processors, state.keyring)
        )
        state.ready = True
        workers.start()
        processors.start()
        _reload_keys_on_sighup(state.keyring)
        log.info(
            "facebank ready: model %s on %s, exact search on %s, Similarity calibration %s (%s)",
            loaded.spec.version,
            resolve_device(settings.device),
            searching_on or "faiss (cpu)",
            loaded.calibration.calibration_version,
            state.calibration_source,
        )
        yield
        state.ready = False
        workers.close()  # a running job is given back for another replica to take
        processors.close()  # running processors too: they run again wherever claimed next
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
    metrics = CollectorRegistry()
    # A keys file that cannot be used stops the start here (KeyFileError).
    keyring = KeyRing(settings.keys, settings.access_keys_file)
    # So does a streams file that cannot be used (StreamsFileError).
    cameras = Cameras(settings.video_streams_file)
    state = AppState(settings, keyring, cameras, metrics, Observer(metrics))
    attach(app, state)

    app.include_router(health.router)
    app.include_router(wire.router)
    rest.install(app)
    console.install(app, settings)
    return app
