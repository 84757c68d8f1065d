"""The embedder's network run from its exported ONNX graph on the CPU: by ONNX Runtime in fp32,
or by OpenVINO in fp32, fp16 or bf16.

On some CPUs these runtimes' kernels run FaceNet faster than torch's oneDNN ones, and on others
they do not; whether they do here is measured with the other ways to run the embedder
(ml/cpu_precision.py). The graph is exported from the same weights at provisioning
(`ml.provision.embedder_graph`) and checked against the manifest like the weights; its fp32
vectors are torch fp32's to within rounding.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ml.embedder import embed_in_batches, standardise
from ml.face_models import ModelSpec
from ml.manifest import WeightsError, read_manifest, verified_file
from ml.networks.base import NetworkEntry

log = logging.getLogger("facebank.models")
INPUT_NAME = "crops"
OUTPUT_NAME = "vectors"


def graph_entry(network: NetworkEntry) -> tuple[str, str]:
    """The manifest key and file name of the ONNX graph exported from `network`'s weights."""
    return f"{network.name}.onnx", Path(network.file).with_suffix(".onnx").name


@dataclass(frozen=True)
class ProvisionedGraph:
    """A graph checked against the manifest, with the checksum the manifest records for it."""

    path: Path
    sha256: str


def provisioned_graph(models_dir: Path, network: NetworkEntry) -> ProvisionedGraph | None:
    """The graph, checked against the manifest, or None when it is not provisioned (said in
    the log when the manifest names it but the file is missing or altered)."""
    name, file = graph_entry(network)
    entry = read_manifest(models_dir).get(name)
    if entry is None:
        return None
    try:
        return ProvisionedGraph(verified_file(models_dir, name, file), entry.sha256)
    except WeightsError as exc:
        log.warning("ONNX Runtime and OpenVINO are not ways to run the embedder here: %s", exc)
        return None


class GraphEmbedder:
    """The graph's vectors for N x H x W x 3 uint8 crops, `batch` at a time, normalised as
    TorchEmbedder's are; a runtime supplies `_vectors` (standardised crops -> raw vectors)."""

    def __init__(self, spec: ModelSpec, batch: int) -> None:
        self.spec, self.dim, self.batch = spec, spec.embedding_dim, batch

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return embed_in_batches(crops, self.batch, self.dim, self._embed_chunk)

    def graph_input(self, crops: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 crops as the graph takes them: N x 3 x H x W, standardised."""
        batch = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        return np.ascontiguousarray(standardise(batch, self.spec.standardisation).numpy())

    def _embed_chunk(self, crops: np.ndarray) -> np.ndarray:
        vectors = torch.from_numpy(self._vectors(self.graph_input(crops)))
        normalised = torch.nn.functional.normalize(vectors, dim=1)
        return np.asarray(normalised.numpy(), dtype=np.float32)

    def _vectors(self, standardised: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxRuntimeEmbedder(GraphEmbedder):
    """FaceNet in fp32 through ONNX Runtime's CPU kernels, `threads` intra-op threads, in
    batches of `batch`."""

    def __init__(self, spec: ModelSpec, graph: Path, threads: int, batch: int = 32):
        import onnxruntime

        super().__init__(spec, batch)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads would otherwise spin on the cores the detector needs next.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad graph
            raise WeightsError(f"ONNX Runtime cannot load the embedder's graph: {exc}") from exc

    def _vectors(self, standardised: np.ndarray) -> np.ndarray:
        (vectors,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: standardised})
        return np.asarray(vectors)


GraphPrecision = Literal["fp32", "fp16", "bf16"]
_OPENVINO_PRECISION: dict[GraphPrecision, str] = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


def openvino_available() -> bool:
    """Whether OpenVINO is installed, without importing it (the server imports it only where
    it times or serves it)."""
    return importlib.util.find_spec("openvino") is not None


def openvino_precisions() -> set[GraphPrecision]:
    """The precisions OpenVINO's CPU plugin has kernels for on this CPU (fp16: AVX512-FP16, as
    on Sapphire Rapids, or AVX-VNNI-INT8's conversions; bf16: any AVX-512), as it lists them."""
    import openvino

    listed = set(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return {precision for precision in _OPENVINO_PRECISION if precision.upper() in listed}


class OpenVinoEmbedder(GraphEmbedder):
    """FaceNet through OpenVINO's CPU plugin in fp32, fp16 or bf16, compiled once for `streams`
    calls that may run at once on `threads` threads each (each calling thread has its own
    request: a request is not safe to share between threads; calls beyond `streams` wait their
    turn)."""

    def __init__(
        self,
        spec: ModelSpec,
        graph: Path,
        threads: int,
        precision: GraphPrecision,
        batch: int = 32,
        streams: int = 1,
    ) -> None:
        try:
            import openvino
        except ImportError as exc:
            raise WeightsError("OpenVINO is not installed: `pip install openvino`") from exc

        super().__init__(spec, batch)
        config = {
            "INFERENCE_NUM_THREADS": threads * streams,
            "NUM_STREAMS": streams,
            "INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision],
            # Pinned, two compiled models' threads landed on one core: the 2-worker benchmark
            # ran slower than torch's (docs/performance.md).
            "ENABLE_CPU_PINNING": False,
        }
        try:
            core = openvino.Core()
            self._compiled = core.compile_model(core.read_model(str(graph)), "CPU", config)
        except Exception as exc:  # OpenVINO raises its own types for a bad graph
            raise WeightsError(f"OpenVINO cannot load the embedder's graph: {exc}") from exc
        self._requests = threading.local()

    @property
    def executes_in(self) -> GraphPrecision:
        """The precision OpenVINO compiled for. Asked for one this CPU has no kernels for, the
        plugin falls back without saying so: bf16 to fp32, fp16 to bf16 or fp32."""
        import openvino

        compiled_for = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        named: list[tuple[Any, GraphPrecision]] = [
            (openvino.Type.bf16, "bf16"),
            (openvino.Type.f16, "fp16"),
        ]
        return next((name for type_, name in named if compiled_for == type_), "fp32")

    def _vectors(self, standardised: np.ndarray) -> np.ndarray:
        request: Any = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        return np.asarray(request.infer({0: standardised})[0])
