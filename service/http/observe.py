"""What each request did, for operators: Prometheus metrics and one log line per request.

Both surfaces report every request here once it is answered: its operation, its outcome (`ok`
or the Rekognition error name), its HTTP status and duration, who called (access key id and
client address). The log line never holds image bytes, secrets or signatures. Metrics about the
server's state (queues, batches, collections, index lag, the pixel budget, storage) are read
when `/metrics` is scraped (`ServerState`), so nothing is counted twice or goes stale.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from service import errors
from service.streaming.processors import LATENCY_BUCKETS as STREAM_LATENCY_BUCKETS
from service.streaming.processors import ProcessorStats

access_log = logging.getLogger("facebank.access")
auth_log = logging.getLogger("facebank.auth")
# What a caller is refused with: bad or missing credentials, its policy, its rate.
REFUSALS = frozenset(
    {
        "AccessDeniedException",
        "IncompleteSignatureException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "ProvisionedThroughputExceededException",
        "UnrecognizedClientException",
    }
)
server_log = logging.getLogger("facebank.http")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Exchange:
    """One request, as far as it got."""

    surface: str  # "wire" or "rest"
    operation: str
    client: str
    request_id: str = field(default_factory=new_request_id)
    key_id: str | None = None  # once verified
    claimed_key_id: str | None = None  # what the request claimed, verified or not
    refusal: str | None = None  # why the caller was refused
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def begin(cls, surface: str, operation: str, request: Request) -> Exchange:
        client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        return cls(surface, operation, client)


async def answer(
    observer: Observer,
    exchange: Exchange,
    run: Callable[[], Awaitable[Any]],
    ok: Callable[[Any], Response],
    failed: Callable[[errors.ServiceError], Response],
) -> Response:
    """Run a request's work and render its result or its error the surface's way; every
    unexpected failure is a bare InternalServerError (logged here, with its request id). Then
    report the request."""
    try:
        response, outcome = ok(await run()), "ok"
    except errors.ServiceError as error:
        response, outcome = failed(error), error.code
        if outcome in REFUSALS:  # logged under the key tried, with why
            exchange.key_id = exchange.key_id or exchange.claimed_key_id
            exchange.refusal = error.message
    except Exception:
        server_log.exception("request %s failed", exchange.request_id)
        internal = errors.InternalServerError("Internal server error")
        response, outcome = failed(internal), internal.code
    observer.finish(exchange, outcome, response.status_code)
    return response


class Observer:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["surface", "operation"]
        self.requests = Counter(
            "facebank_requests",
            "Requests answered, by outcome: ok or the Rekognition error name",
            [*labels, "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "facebank_request_seconds",
            "Time from a request's arrival to its answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def finish(self, exchange: Exchange, outcome: str, status: int) -> None:
        seconds = time.perf_counter() - exchange.started
        self.requests.labels(exchange.surface, exchange.operation, outcome).inc()
        self.latency.labels(exchange.surface, exchange.operation).observe(seconds)
        fields = {} if exchange.refusal is None else {"reason": exchange.refusal}
        # A refusal's text line names the key tried and why, as its JSON line does.
        refused = "" if exchange.refusal is None else " key %s refused: %s"
        access_log.log(
            logging.INFO if exchange.refusal is None else logging.WARNING,
            "%s %s %s %d %.1f ms" + refused,
            exchange.surface,
            exchange.operation,
            outcome,
            status,
            seconds * 1000,
            *(() if exchange.refusal is None else (exchange.key_id, exchange.refusal)),
            extra={
                "request": {
                    "request_id": exchange.request_id,
                    "surface": exchange.surface,
                    "operation": exchange.operation,
                    "outcome": outcome,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "access_key_id": exchange.key_id,
                    "client": exchange.client,
                    **fields,
                }
            },
        )


def log_refusal(
    request_id: str, route: str, key_id: str | None, error: errors.ServiceError
) -> None:
    """A refused caller of a route that carries no operation (/metrics), at warning: the key
    id tried, the route, and why; never a secret or a signature."""
    refusal = {"request_id": request_id, "route": route, "access_key_id": key_id}
    auth_log.warning(
        "refused %s for key %s: %s",
        route,
        key_id,
        error.message,
        extra={"request": {**refusal, "outcome": error.code, "reason": error.message}},
    )


@dataclass(eq=False)  # the registry keys its collectors by identity
class ServerState(Collector):
    """Gauges and counters read from the running server at each scrape."""

    info: dict[str, str]
    queues: Callable[[], list[Any]]  # the batch queues (name, depth, batches, items)
    collections: Callable[[], list[tuple[str, int, int]]]  # (id, faces, index lag in events)
    pixels_in_flight: Callable[[], int]
    storage_full: Callable[[], bool]
    # (jobs by status, creation time of the oldest job nobody runs), all replicas
    video_jobs: Callable[[], tuple[dict[str, int], float | None]]
    video_frames: Callable[[], int]  # frames this replica's video workers analysed
    # Why the keys file on disk is refused and since when (epoch seconds); None: it is in use
    keys_file_refused: Callable[[], tuple[str, float] | None]
    stream_processors: Callable[[], dict[str, int]]  # by status, all replicas
    streams: Callable[[], list[ProcessorStats]]  # the processors this replica runs
    webhook_drops: Callable[[], dict[str, int]]  # by output stream, this replica

    def collect(self) -> Iterator[Any]:
        yield InfoMetricFamily("facebank", "Model, device and search backend", value=self.info)
        depth = GaugeMetricFamily("facebank_queue_depth", "Items waiting", labels=["stage"])
        batches = CounterMetricFamily("facebank_batches", "Batches run", labels=["stage"])
        items = CounterMetricFamily(
            "facebank_batched_items",
            "Items run in batches (divided by batches: the mean batch size)",
            labels=["stage"],
        )
        for queue in self.queues():
            depth.add_metric([queue.name], queue.depth())
            batches.add_metric([queue.name], queue.batches_run)
            items.add_metric([queue.name], queue.items_run)
        yield from (depth, batches, items)
        yield from self._collection_metrics()
        yield GaugeMetricFamily(
            "facebank_pixels_in_flight", "Image pixels admitted now", value=self.pixels_in_flight()
        )
        yield GaugeMetricFamily(
            "facebank_storage_full", "1 while writes fail on a full disk", value=self.storage_full()
        )
        yield from self._video_metrics()
        yield from self._stream_metrics()
        refused = self.keys_file_refused()
        yield GaugeMetricFamily(
            "facebank_access_keys_file_refused_since_seconds",
            "When the keys file on disk was refused (epoch seconds; the keys loaded before stay "
            "in use and the log says why); 0 while the file in use is the one on disk",
            value=0.0 if refused is None else refused[1],
        )

    def _stream_metrics(self) -> Iterator[Any]:
        statuses = GaugeMetricFamily(
            "facebank_stream_processors", "Stream processors by status", labels=["status"]
        )
        for status, count in sorted(self.stream_processors().items()):
            statuses.add_metric([status], count)
        yield statuses
        running = self.streams()
        yield _per_processor(
            GaugeMetricFamily,
            "facebank_stream_connected",
            "1 while this replica reads the processor's camera",
            [(s.name, float(s.camera.connected)) for s in running],
        )
        yield _per_processor(
            GaugeMetricFamily,
            "facebank_stream_camera_clock",
            "1 while capture times come from the camera's RTCP sender reports, 0 while from "
            "arrival times",
            [(s.name, float(s.camera.camera_clock)) for s in running],
        )
        counters: dict[str, tuple[str, Callable[[ProcessorStats], int]]] = {
            "frames_read": ("Camera frames decoded", lambda s: s.camera.frames_read),
            "frames_analysed": ("Frames analysed", lambda s: s.frames_analysed),
            "frames_dropped": ("Sampling slots passed while behind", lambda s: s.frames_dropped),
            "records": ("Records written to the output", lambda s: s.records_written),
            "sink_errors": ("Records the output refused", lambda s: s.sink_errors),
        }
        for name, (text, read) in counters.items():
            values = [(s.name, float(read(s))) for s in running]
            yield _per_processor(CounterMetricFamily, f"facebank_stream_{name}", text, values)
        latency = HistogramMetricFamily(
            "facebank_stream_capture_to_record_seconds",
            "From a frame's capture to its record's write",
            labels=["processor"],
        )
        for stats in running:
            cumulative = list(zip(STREAM_LATENCY_BUCKETS, stats.latency_buckets, strict=True))
            buckets = [(str(bound), float(count)) for bound, count in cumulative]
            latency.add_metric(
                [stats.name], [*buckets, ("+Inf", float(stats.latency_count))], stats.latency_sum
            )
        yield latency
        dropped = CounterMetricFamily(
            "facebank_stream_webhook_dropped",
            "Records a webhook dropped (its buffer full while the receiver was down, or refused)",
            labels=["output"],
        )
        for output, count in sorted(self.webhook_drops().items()):
            dropped.add_metric([output], count)
        yield dropped

    def _video_metrics(self) -> Iterator[Any]:
        counts, oldest = self.video_jobs()
        jobs = GaugeMetricFamily("facebank_video_jobs", "Video jobs by status", labels=["status"])
        for status in ("IN_PROGRESS", "SUCCEEDED", "FAILED"):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        yield CounterMetricFamily(
            "facebank_video_frames",
            "Sampled video frames analysed by this replica (its rate: frames per second)",
            value=self.video_frames(),
        )
        waited = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        yield GaugeMetricFamily(
            "facebank_video_oldest_waiting_seconds",
            "Age of the oldest video job no worker is running (0: none waits)",
            value=waited,
        )

    def _collection_metrics(self) -> Iterator[Any]:
        faces = GaugeMetricFamily("facebank_collection_faces", "Faces", labels=["collection"])
        lag = GaugeMetricFamily(
            "facebank_index_lag_events",
            "Committed changes the collection's loaded index has not applied yet",
            labels=["collection"],
        )
        for collection_id, face_count, behind in self.collections():
            faces.add_metric([collection_id], face_count)
            lag.add_metric([collection_id], behind)
        yield from (faces, lag)


def _per_processor(kind: Any, name: str, text: str, values: list[tuple[str, float]]) -> Any:
    family = kind(name, text, labels=["processor"])
    for processor, value in values:
        family.add_metric([processor], value)
    return family


class JsonLines(logging.Formatter):
    """One JSON object per log record (the access log's fields when it is a request)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            body |= request
        else:
            body["message"] = record.getMessage()
        if record.exc_info:
            body["error"] = self.formatException(record.exc_info)
        return json.dumps(body)
