"""How the embedder runs on a CPU: torch in fp32, torch in bf16, or ONNX Runtime in fp32, chosen by
timing each on this machine.

bf16 is faster than fp32 where oneDNN has native kernels for it (AMX above all), and slower
where the CPU only reports AVX512-BF16 behind a hypervisor that hides AMX, or has AVX2 only: a
flag check cannot tell which (docs/performance.md has the figures per CPU). ONNX Runtime's fp32
kernels beat torch's on some CPUs and not on others. So the embedder is timed each way on a
small batch; bf16 is served only when it is clearly faster than the faster fp32 and its vectors
stay within the drift benchmarks.precision accepted, and ONNX Runtime only when it is clearly
faster than torch in fp32 (its vectors are fp32's). The measurement is cached in the data dir,
keyed by what it depends on (CPU model and flags, torch, threads, network, the graph), so a
machine measures once; a setting forces one way without measuring.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
from ml.onnx_embedder import OnnxRuntimeEmbedder, ProvisionedGraph

log = logging.getLogger("facebank.models")

Precision = Literal["fp32", "bf16", "fp16"]  # fp16: on CUDA, where nothing is measured
Runtime = Literal["torch", "onnxruntime"]
Setting = Literal["auto", "fp32", "bf16", "onnxruntime"]
# The least cosine between a crop's fp32 and bf16 vectors for bf16 to be served: the bound the
# model tests hold bf16 to on real faces (benchmarks.precision's worst face is above it).
ACCEPTED_MIN_COSINE = 0.999
# bf16 is served only when this much faster: within timing noise fp32 wins, since its vectors
# are the ones every other replica computes too. ONNX Runtime likewise against torch: within
# noise the one runtime the server always has.
REQUIRED_GAIN = 0.05
PROBE_BATCH = 8
CACHE_FILE = "cpu-precision.json"


@dataclass(frozen=True)
class PrecisionChoice:
    precision: Precision
    chosen_by: str  # "measured", "measured earlier on this machine", "setting", "device"
    fp32_ms: float | None = None  # the best of PROBE_REPEATS batches of PROBE_BATCH crops
    bf16_ms: float | None = None
    min_cosine: float | None = None  # between the probe's fp32 and bf16 vectors
    native_bf16: bool = False  # what oneDNN says of this CPU, for the record only
    runtime: Runtime = "torch"
    # ONNX Runtime's fp32 timing and least cosine to torch's fp32 vectors; None where its
    # graph is not provisioned.
    onnxruntime_ms: float | None = None
    onnxruntime_cosine: float | None = None

    def as_response(self) -> dict[str, Any]:
        """As /v1/models/current shows it."""
        found: dict[str, Any] = {
            "Precision": self.precision,
            "Runtime": self.runtime,
            "ChosenBy": self.chosen_by,
        }
        if self.fp32_ms is not None and self.bf16_ms is not None:
            found["BatchMillis"] = {"fp32": self.fp32_ms, "bf16": self.bf16_ms}
            if self.onnxruntime_ms is not None:
                found["BatchMillis"]["onnxruntime"] = self.onnxruntime_ms
            found["BatchSize"] = PROBE_BATCH
        if self.min_cosine is not None:
            found["MinCosineToFp32"] = self.min_cosine
        if self.onnxruntime_cosine is not None:
            found["OnnxRuntimeMinCosineToFp32"] = self.onnxruntime_cosine
        found["NativeBf16"] = self.native_bf16
        return found

    def summary(self) -> str:
        """For the start-up log."""
        text = f"embedder in {self.precision} on the CPU by {self.runtime} ({self.chosen_by}"
        if self.fp32_ms is not None and self.bf16_ms is not None:
            text += (
                f": {PROBE_BATCH} crops in {self.fp32_ms:.0f} ms in fp32, {self.bf16_ms:.0f} ms "
                f"in bf16, least cosine {self.min_cosine:.5f}"
            )
            if self.onnxruntime_ms is not None:
                text += f"; {self.onnxruntime_ms:.0f} ms by onnxruntime in fp32"
        return text + ")"


def faster_precision(fp32_ms: float, bf16_ms: float, min_cosine: float) -> Literal["fp32", "bf16"]:
    """bf16 when it is clearly faster and its vectors stay within the accepted drift."""
    clearly_faster = bf16_ms < fp32_ms * (1.0 - REQUIRED_GAIN)
    return "bf16" if clearly_faster and min_cosine >= ACCEPTED_MIN_COSINE else "fp32"


def fastest_way(
    fp32_ms: float,
    bf16_ms: float,
    min_cosine: float,
    onnxruntime_ms: float | None = None,
    onnxruntime_cosine: float | None = None,
) -> tuple[Literal["fp32", "bf16"], Runtime]:
    """The faster fp32 runtime (ONNX Runtime when clearly faster than torch and its vectors
    agree), then bf16 in torch when it is clearly faster than that and within the drift."""
    fp32_runtime: Runtime = "torch"
    if onnxruntime_ms is not None and onnxruntime_cosine is not None:
        agrees = onnxruntime_cosine >= ACCEPTED_MIN_COSINE
        if agrees and onnxruntime_ms < fp32_ms * (1.0 - REQUIRED_GAIN):
            fp32_runtime, fp32_ms = "onnxruntime", onnxruntime_ms
    if faster_precision(fp32_ms, bf16_ms, min_cosine) == "bf16":
        return "bf16", "torch"
    return "fp32", fp32_runtime


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


# bf16 is timed once after its warm-up; this much slower than fp32 already, it cannot win
# and is not timed again (emulated bf16 on an AVX2-only CPU is several times slower).
CLEARLY_SLOWER = 1.5


def least_cosine(vectors: np.ndarray, reference: np.ndarray) -> float:
    return round(float(np.min(np.sum(vectors * reference, axis=1))), 6)


def measure(spec: ModelSpec, network: nn.Module, graph: Path | None = None) -> PrecisionChoice:
    """Time the embedder on `network` (an fp32 one) in fp32 and in bf16 on the CPU, and by
    ONNX Runtime on `graph` (the same weights exported) when there is one."""
    cpu, crops = torch.device("cpu"), probe_crops()
    fp32 = TorchEmbedder(spec, copy.deepcopy(network), cpu, batch=PROBE_BATCH)
    fp32_ms, full = best_ms(fp32.embed, crops)
    del fp32
    bf16 = TorchEmbedder(spec, copy.deepcopy(network), cpu, batch=PROBE_BATCH, cpu_bf16=True)
    bf16_ms, reduced = best_ms(bf16.embed, crops, give_up_ms=fp32_ms * CLEARLY_SLOWER)
    del bf16
    cosine = least_cosine(reduced, full)
    onnxruntime_ms = onnxruntime_cosine = None
    if graph is not None:
        exported = OnnxRuntimeEmbedder(spec, graph, torch.get_num_threads(), batch=PROBE_BATCH)
        onnxruntime_ms, exported_vectors = best_ms(exported.embed, crops)
        onnxruntime_cosine = least_cosine(exported_vectors, full)
    precision, runtime = fastest_way(fp32_ms, bf16_ms, cosine, onnxruntime_ms, onnxruntime_cosine)
    return PrecisionChoice(
        precision,
        "measured",
        fp32_ms,
        bf16_ms,
        cosine,
        cpu_has_bf16(),
        runtime,
        onnxruntime_ms,
        onnxruntime_cosine,
    )


def served_embedder(
    spec: ModelSpec,
    network: nn.Module,
    choice: PrecisionChoice,
    graph: Path | None,
    threads: int | None = None,
    batch: int = 32,
) -> FaceEmbedder:
    """The CPU embedder that runs as `choice` says, on `network` or its exported `graph`, with
    `threads` of ONNX Runtime's (torch's count when None)."""
    if choice.runtime == "onnxruntime":
        if graph is None:
            raise WeightsError(
                f"the embedder's ONNX graph of {spec.network} is not provisioned; "
                "run `facebank models fetch` (or `make models`)"
            )
        return OnnxRuntimeEmbedder(spec, graph, threads or torch.get_num_threads(), batch)
    cpu_bf16 = choice.precision == "bf16"
    return TorchEmbedder(spec, network, torch.device("cpu"), batch=batch, cpu_bf16=cpu_bf16)


def machine_key(spec: ModelSpec, graph_sha256: str | None = None) -> dict[str, Any]:
    """What the measurement depends on: a change in any of these measures again."""
    return {
        **cpu.machine_key(),
        "network": spec.network,
        "onnx_graph": graph_sha256,
        "onnxruntime": _onnxruntime_version() if graph_sha256 else None,
    }


def _onnxruntime_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def from_setting(setting: Literal["fp32", "bf16", "onnxruntime"]) -> PrecisionChoice:
    if setting == "onnxruntime":
        return PrecisionChoice("fp32", "setting", native_bf16=cpu_has_bf16(), runtime=setting)
    return PrecisionChoice(setting, "setting", native_bf16=cpu_has_bf16())


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
