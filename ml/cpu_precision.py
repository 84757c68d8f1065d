"""How the embedder runs on a CPU: torch in fp32 or bf16, ONNX Runtime in fp32, or OpenVINO in
fp32, fp16 or bf16, chosen by timing each on this machine.

bf16 is faster than fp32 where the runtime has native kernels for it (AMX above all), and slower
where the CPU only reports AVX512-BF16 behind a hypervisor that hides AMX, or has AVX2 only: a
flag check cannot tell which (docs/performance.md has the figures per CPU). Each runtime's
kernels beat the others' on some CPUs and not on others. So the embedder is timed each way on a
small batch, and a way replaces the one served so far only when it is clearly faster and its
vectors stay within the drift benchmarks.precision accepted; the fp32 ways come first, then
fp16 (where OpenVINO has kernels for it: AVX512-FP16), then bf16, so a way that rounds more
must beat every way that rounds less. The measurement is cached in the data dir, keyed by
what it depends on (CPU model and flags, torch, threads, network, the graph, the runtimes'
versions, the ways there are), so a machine measures once; a setting forces one way without
measuring.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ml import cpu
from ml.cpu import best_ms
from ml.embedder import FaceEmbedder, TorchEmbedder, cpu_has_bf16
from ml.face_models import ModelSpec
from ml.manifest import WeightsError
from ml.onnx_embedder import (
    GraphPrecision,
    OnnxRuntimeEmbedder,
    OpenVinoEmbedder,
    ProvisionedGraph,
    openvino_available,
    openvino_precisions,
)

log = logging.getLogger("facebank.models")

Precision = Literal["fp32", "bf16", "fp16"]  # fp16: OpenVINO's, or on CUDA (not measured)
Runtime = Literal["torch", "onnxruntime", "openvino"]
Way = Literal["fp32", "bf16", "onnxruntime", "openvino", "openvino-fp16", "openvino-bf16"]
Setting = Literal[
    "auto", "fp32", "bf16", "onnxruntime", "openvino", "openvino-fp16", "openvino-bf16"
]
# Each way's precision and runtime ("fp32" and "bf16": torch's), in the order each is tried
# against the one served so far: torch's fp32 first, then the other fp32 ways, then fp16 (a
# 10-bit mantissa), then bf16 (7 bits).
WAYS: dict[Way, tuple[GraphPrecision, Runtime]] = {
    "fp32": ("fp32", "torch"),
    "onnxruntime": ("fp32", "onnxruntime"),
    "openvino": ("fp32", "openvino"),
    "openvino-fp16": ("fp16", "openvino"),
    "bf16": ("bf16", "torch"),
    "openvino-bf16": ("bf16", "openvino"),
}
# The least cosine between a crop's torch fp32 vector and another way's for that way to be
# served: the bound the model tests hold bf16 to on real faces (benchmarks.precision's worst
# face is above it); the fp32 ways give fp32's vectors to rounding.
ACCEPTED_MIN_COSINE = 0.999
# A way replaces the one served so far only when this much faster: within timing noise the
# earlier way wins, since torch's fp32 vectors are the ones every other replica computes too
# and torch is the one runtime the server always runs.
REQUIRED_GAIN = 0.05
PROBE_BATCH = 8
CACHE_FILE = "cpu-precision.json"


@dataclass(frozen=True)
class PrecisionChoice:
    precision: Precision
    chosen_by: str  # "measured", "measured earlier on this machine", "setting", "device"
    runtime: Runtime = "torch"
    # Per way timed: the best of PROBE_REPEATS batches of PROBE_BATCH crops, and the least
    # cosine between its vectors and torch fp32's. A way not timed here is absent (its runtime
    # is not installed, the graph is not provisioned, or OpenVINO has no kernels for its
    # precision on this CPU).
    batch_ms: dict[Way, float] = field(default_factory=dict)
    min_cosines: dict[Way, float] = field(default_factory=dict)
    native_bf16: bool = False  # what oneDNN says of this CPU, for the record only

    @property
    def way(self) -> Way:
        """The way of WAYS this choice runs (a CPU choice: CUDA's fp16 is none of them)."""
        return next(way for way, taken in WAYS.items() if taken == (self.precision, self.runtime))

    def as_response(self) -> dict[str, Any]:
        """As /v1/models/current shows it (MinCosineToFp32 and OnnxRuntimeMinCosineToFp32:
        the bf16 and ONNX Runtime entries of MinCosinesToFp32, as earlier versions showed them)."""
        found: dict[str, Any] = {
            "Precision": self.precision,
            "Runtime": self.runtime,
            "ChosenBy": self.chosen_by,
        }
        if self.batch_ms:
            found["BatchMillis"] = dict(self.batch_ms)
            found["BatchSize"] = PROBE_BATCH
        if self.min_cosines:
            found["MinCosinesToFp32"] = dict(self.min_cosines)
        for way, key in (
            ("bf16", "MinCosineToFp32"),
            ("onnxruntime", "OnnxRuntimeMinCosineToFp32"),
        ):
            if way in self.min_cosines:
                found[key] = self.min_cosines[way]
        found["NativeBf16"] = self.native_bf16
        return found

    def summary(self) -> str:
        """For the start-up log."""
        text = f"embedder in {self.precision} on the CPU by {self.runtime} ({self.chosen_by}"
        if self.batch_ms:
            timed = [self._timed(way, ms) for way, ms in self.batch_ms.items()]
            text += f": {PROBE_BATCH} crops in " + ", ".join(timed)
        return text + ")"

    def _timed(self, way: Way, ms: float) -> str:
        precision, runtime = WAYS[way]
        text = f"{ms:.0f} ms by {runtime} in {precision}"
        if precision != "fp32" and way in self.min_cosines:
            text += f" (least cosine {self.min_cosines[way]:.5f})"
        return text


def fastest_way(batch_ms: dict[Way, float], min_cosines: dict[Way, float]) -> Way:
    """Torch's fp32, replaced by each timed way in WAYS's order that is clearly faster than the
    way served so far and whose vectors agree with fp32's within the accepted drift."""
    served: Way = "fp32"
    for way in WAYS:
        if way == "fp32" or way not in batch_ms:
            continue
        agrees = min_cosines.get(way, -1.0) >= ACCEPTED_MIN_COSINE
        if agrees and batch_ms[way] < batch_ms[served] * (1.0 - REQUIRED_GAIN):
            served = way
    return served


def probe_crops() -> np.ndarray:
    """PROBE_BATCH smooth, face-sized crops (speed does not depend on the pixels; smooth ones
    give vectors as stable as a face's, which noise does not)."""
    rows, cols = np.mgrid[0:160, 0:160] / 160.0
    crops = []
    for index in range(PROBE_BATCH):
        phase = index * 0.7
        channels = [np.sin(3 * rows + phase + c) * np.cos(2 * cols - phase) for c in range(3)]
        crops.append(np.stack(channels, axis=-1) * 100 + 128)
    return np.asarray(crops).astype(np.uint8)


# A way is timed once after its warm-up when it is this much slower than torch's fp32 already:
# it cannot win (emulated bf16 on an AVX2-only CPU is several times slower).
CLEARLY_SLOWER = 1.5


def least_cosine(vectors: np.ndarray, reference: np.ndarray) -> float:
    return round(float(np.min(np.sum(vectors * reference, axis=1))), 6)


def measure(spec: ModelSpec, network: nn.Module, graph: Path | None = None) -> PrecisionChoice:
    """Time the embedder on `network` (an fp32 one) each way this machine can run it: torch in
    fp32 and bf16, and ONNX Runtime and OpenVINO on `graph` (the same weights exported) when
    there is one."""
    crops, threads = probe_crops(), torch.get_num_threads()
    reference = way_embedder(spec, copy.deepcopy(network), "fp32", None, threads)
    fp32_ms, full = best_ms(reference.embed, crops)
    del reference
    batch_ms: dict[Way, float] = {"fp32": fp32_ms}
    min_cosines: dict[Way, float] = {}
    for way in ways_to_time(graph):
        # torch converts its network in place (bf16); the graph runtimes do not use it.
        source = copy.deepcopy(network) if WAYS[way][1] == "torch" else network
        embedder = way_embedder(spec, source, way, graph, threads)
        if isinstance(embedder, OpenVinoEmbedder) and embedder.executes_in != WAYS[way][0]:
            continue  # OpenVINO would run another precision under this one's name
        ms, vectors = best_ms(embedder.embed, crops, give_up_ms=fp32_ms * CLEARLY_SLOWER)
        batch_ms[way], min_cosines[way] = ms, least_cosine(vectors, full)
        del embedder
    precision, runtime = WAYS[fastest_way(batch_ms, min_cosines)]
    return PrecisionChoice(precision, "measured", runtime, batch_ms, min_cosines, cpu_has_bf16())


def ways_to_time(graph: Path | None) -> list[Way]:
    """Every way but torch's fp32 (the reference) that this machine can run, in WAYS's order:
    OpenVINO's only in the precisions its CPU plugin has kernels for here."""
    runnable: set[tuple[GraphPrecision, Runtime]] = {("fp32", "torch"), ("bf16", "torch")}
    if graph is not None:
        runnable.add(("fp32", "onnxruntime"))
        if openvino_available():
            runnable |= {(precision, "openvino") for precision in openvino_precisions()}
    return [way for way, taken in WAYS.items() if way != "fp32" and taken in runnable]


def way_embedder(
    spec: ModelSpec,
    network: nn.Module,
    way: Way,
    graph: Path | None,
    threads: int,
    batch: int = PROBE_BATCH,
    streams: int = 1,
) -> FaceEmbedder:
    """The embedder that runs `way`: on `network`, or on its exported `graph` with `threads`
    threads a call (OpenVINO: compiled for `streams` calls at once)."""
    precision, runtime = WAYS[way]
    if runtime == "torch":
        cpu_bf16 = precision == "bf16"
        return TorchEmbedder(spec, network, torch.device("cpu"), batch=batch, cpu_bf16=cpu_bf16)
    if graph is None:
        raise WeightsError(
            f"the embedder's ONNX graph of {spec.network} is not provisioned; "
            "run `facebank models fetch` (or `make models`)"
        )
    if runtime == "onnxruntime":
        return OnnxRuntimeEmbedder(spec, graph, threads, batch)
    return OpenVinoEmbedder(spec, graph, threads, precision, batch, streams)


def served_embedder(
    spec: ModelSpec,
    network: nn.Module,
    choice: PrecisionChoice,
    graph: Path | None,
    threads: int | None = None,
    batch: int = 32,
    streams: int = 1,
) -> FaceEmbedder:
    """The CPU embedder that runs as `choice` says, on `network` or its exported `graph`, with
    `threads` of the graph runtime's (torch's count when None)."""
    count = threads or torch.get_num_threads()
    return way_embedder(spec, network, choice.way, graph, count, batch, streams)


def as_compiled(choice: PrecisionChoice, embedder: FaceEmbedder) -> PrecisionChoice:
    """`choice` as `embedder` runs it: OpenVINO forced by a setting into a precision this CPU
    has no kernels for compiles another one without saying so, and the log and
    /v1/models/current say which it runs."""
    if not isinstance(embedder, OpenVinoEmbedder) or embedder.executes_in == choice.precision:
        return choice
    log.warning(
        "OpenVINO has no %s kernels on this CPU: the embedder runs in %s",
        choice.precision,
        embedder.executes_in,
    )
    compiled = f"{choice.chosen_by}; OpenVINO compiled {embedder.executes_in} here"
    return replace(choice, precision=embedder.executes_in, chosen_by=compiled)


def machine_key(spec: ModelSpec, graph_sha256: str | None = None) -> dict[str, Any]:
    """What the measurement depends on: a change in any of these measures again (a way added
    in a later version included)."""
    return {
        **cpu.machine_key(),
        "ways": list(WAYS),
        "network": spec.network,
        "onnx_graph": graph_sha256,
        "onnxruntime": _version("onnxruntime") if graph_sha256 else None,
        "openvino": _version("openvino") if graph_sha256 and openvino_available() else None,
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def from_setting(setting: Way) -> PrecisionChoice:
    precision, runtime = WAYS[setting]
    return PrecisionChoice(precision, "setting", runtime, native_bf16=cpu_has_bf16())


def needs_graph(setting: Setting) -> bool:
    """Whether `setting` may time or serve a way that runs the exported graph."""
    return setting == "auto" or WAYS[setting][1] != "torch"


def choose(
    setting: Setting,
    spec: ModelSpec,
    network: nn.Module,
    cache_dir: Path | None,
    measure_on: Callable[[ModelSpec, nn.Module, Path | None], PrecisionChoice] = measure,
    graph: ProvisionedGraph | None = None,
) -> PrecisionChoice:
    """How to serve: the setting's way when it names one, else the cached measurement for this
    machine, else a fresh one (then cached). `graph`: the network's provisioned ONNX graph."""
    if setting != "auto":
        return from_setting(setting)
    key = machine_key(spec, None if graph is None else graph.sha256)
    cache = None if cache_dir is None else cache_dir / CACHE_FILE
    cached = cpu.read_cached(cache, key)
    if cached is not None:
        try:
            return PrecisionChoice(**{**cached, "chosen_by": "measured earlier on this machine"})
        except TypeError:
            pass  # written by another version: measure again
    choice = measure_on(spec, network, None if graph is None else graph.path)
    if cache is not None:
        cpu.store_cached(cache, key, asdict(choice))
    return choice
