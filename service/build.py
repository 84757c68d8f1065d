"""One builder for what `serve` runs: the face pipeline, its batch queues and warm-up, and the
operation context over the database, the indexes and the outside endpoints, all from Settings.
The server, `facebank calibrate`, the benchmarks and the test helpers build through it, so
what they measure and fit is what is served."""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sqlalchemy import Engine

from ml import cpu_levers, cpu_precision
from ml.decode import ImageLimits
from ml.device_decode import TorchvisionDecoder
from ml.embedder import TorchEmbedder
from ml.networks import table as networks
from ml.networks.runner import ChipRunner
from ml.onnx_embedder import provisioned_graph
from ml.pipeline import FaceModels, FacePipeline, MeshCheck, load_pipeline, resolve_device
from ml.types import Box, Detection
from service.access.rates import RateLimits
from service.background.notify import Notifier
from service.background.priority import InteractiveActivity
from service.batching import (
    BatchedChips,
    BatchedDecoder,
    BatchedDetector,
    BatchedEmbedder,
    BatchQueue,
)
from service.context import OperationContext
from service.index.collection_index import IndexOptions
from service.index.registry import IndexRegistry
from service.index.searcher import BatchedSearch
from service.operations.dispatch import Operations
from service.s3_objects import MAX_S3_IMAGE_BYTES, S3Objects
from service.settings import Settings
from service.storage.availability import StorageHealth
from service.storage.calibration_record import record_or_check
from service.storage.database import open_database, session_factories
from service.storage.pagination import PageTokens, load_or_create_secret

log = logging.getLogger("facebank")


def build_pipeline(
    settings: Settings, calibration_file: Path | None, allow_uncalibrated: bool = False
) -> FacePipeline:
    """The face pipeline as the server runs it (minimum face size, the CPU embedder in the
    precision measured fastest here, the mesh's check on faces): what `serve`, `calibrate`,
    the benchmarks and the tests embed with, so a calibration is fitted on the embeddings and
    detections that are served."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    # Inline images are held to 5 MB by validation; images read from S3 may be up to 15 MB.
    limits = ImageLimits(max_bytes=MAX_S3_IMAGE_BYTES, max_pixels=settings.max_image_pixels)
    device = resolve_device(settings.device)
    pipeline = load_pipeline(
        settings.models_dir,
        settings.model_version,
        device,
        calibration_path=calibration_file,
        limits=limits,
        allow_uncalibrated=allow_uncalibrated,
        detection_max_side=settings.detection_max_side,
        min_face_size=settings.min_face_size,
        mesh_check=mesh_check(settings),
    )
    if device.type != "cpu":
        return replace(pipeline, embedder_precision=cpu_precision.PrecisionChoice("fp16", "device"))
    return with_detector_workers(with_cpu_precision(pipeline, settings), settings)


def with_detector_workers(pipeline: FacePipeline, settings: Settings) -> FacePipeline:
    """The pipeline with its CPU detector's batches split as chosen for this machine."""
    choice = cpu_levers.choose(
        settings.detect_workers, pipeline.detector, settings.detect_batch_size, settings.data_dir
    )
    log.info("%s", choice.summary())
    detector = pipeline.detector
    if choice.workers > 1:
        detector = cpu_levers.SplitDetector(detector, choice.workers)
    return replace(pipeline, detector=detector, detector_workers=choice)


def with_cpu_precision(pipeline: FacePipeline, settings: Settings) -> FacePipeline:
    """The pipeline with its CPU embedder run the way chosen for this machine."""
    if not isinstance(pipeline.embedder, TorchEmbedder):
        return pipeline
    spec, network = pipeline.spec, pipeline.embedder.network
    entry = networks.network(spec.network)
    # The graph (checked against its checksum) only where it may be timed or served.
    wanted = cpu_precision.needs_graph(settings.cpu_precision)
    graph = provisioned_graph(settings.models_dir, entry) if wanted else None
    choice = cpu_precision.choose(
        settings.cpu_precision, spec, network, settings.data_dir, graph=graph
    )
    log.info("%s", choice.summary())
    if (choice.precision, choice.runtime) == ("fp32", "torch"):
        return replace(pipeline, embedder_precision=choice)  # as loaded
    embedder = cpu_precision.served_embedder(
        spec, network, choice, None if graph is None else graph.path
    )
    choice = cpu_precision.as_compiled(choice, embedder)
    return replace(pipeline, embedder=embedder, embedder_precision=choice)


def mesh_check(settings: Settings) -> MeshCheck | None:
    if settings.landmarks == "five":
        return None
    return MeshCheck(settings.face_min_presence, settings.face_sure_probability)


def warm_up(pipeline: FacePipeline, settings: Settings) -> None:
    """Run each model once, alone and in a batch, so the first requests do not pay for lazy
    initialisation. On CUDA the batches are the largest the queues will form (cuDNN chooses
    kernels per shape and the allocator grows to the largest); on the CPU a batch of two: a
    first full batch after it is no slower there, and full batches would lengthen every start
    (measured: docs/performance.md, Start-up)."""
    on_cuda = resolve_device(settings.device).type == "cuda"
    detect_batch = settings.detect_batch_size if on_cuda else min(2, settings.detect_batch_size)
    embed_batch = settings.embed_batch_size if on_cuda else min(2, settings.embed_batch_size)
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    pipeline.detector.detect(noise)
    pipeline.detector.detect_many([noise] * detect_batch)
    pipeline.embedder.embed(noise[None])
    pipeline.embedder.embed(np.repeat(noise[None], embed_batch, axis=0))
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
    detector = BatchedDetector(pipeline.detector, **asdict(settings.queue("detect")))
    embedder = BatchedEmbedder(pipeline.embedder, **asdict(settings.queue("embed")))
    queues: list[BatchQueue[Any, Any]] = [detector.queue, embedder.queue]
    batched = replace(pipeline, detector=detector, embedder=embedder)
    if pipeline.attributes is not None:
        attributes = pipeline.attributes.with_runners(
            lambda name, runner: _batched_chips(name, runner, settings, queues)
        )
        batched = replace(batched, attributes=attributes)
    device = resolve_device(settings.device)
    if settings.jpeg_decoder == "torchvision" and device.type == "cuda":
        decoder = BatchedDecoder(pipeline.limits, device, **asdict(settings.queue("decode")))
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
    stage = BatchedChips(f"attributes-{name}", runner, **asdict(settings.queue("embed")))
    queues.append(stage.queue)
    return stage


def build_context(settings: Settings, pipeline: FaceModels) -> tuple[OperationContext, Engine]:
    """The operation context over the deployment's database (migrated to head, its recorded
    calibration checked), indexes and outside endpoints."""
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
        searcher=BatchedSearch(**asdict(settings.queue("search"))),
        storage=StorageHealth(settings.data_dir),
        s3=S3Objects(settings.s3_endpoint_url, settings.s3_region or settings.region),
        video=settings.video,
        streams=settings.streams,
        notifier=Notifier(settings.sns_endpoint_url, settings.sns_region or settings.region),
        interactive=InteractiveActivity(),
        rates=RateLimits(),
    )
    return context, engine


def build_operations(settings: Settings, context: OperationContext) -> Operations:
    """The one table both surfaces call, with the server's admission limits."""
    return Operations(context, settings.max_inflight, settings.max_inflight_pixels)


def search_device(settings: Settings) -> str:
    """The torch device exact searches run on, or "" for FAISS on the host."""
    device = resolve_device(settings.device)
    if settings.search_backend == "torch" or (
        settings.search_backend == "auto" and device.type == "cuda"
    ):
        return str(device)
    return ""
