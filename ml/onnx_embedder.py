"""The embedder's network run by ONNX Runtime on the CPU, in fp32.

On some CPUs ONNX Runtime's kernels run FaceNet faster than torch's oneDNN ones in fp32, and on
others they do not; whether they do here is measured with the other ways to run the embedder
(ml/cpu_precision.py). The graph is exported from the same weights at provisioning
(`ml.provision.embedder_graph`) and checked against the manifest like the weights; its vectors
are torch fp32's to within rounding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

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
        log.warning("ONNX Runtime is not a way to run the embedder here: %s", exc)
        return None


class OnnxRuntimeEmbedder:
    """FaceNet in fp32 through ONNX Runtime's CPU kernels, `threads` intra-op threads, in
    batches of `batch`; vectors normalised as TorchEmbedder's are."""

    def __init__(self, spec: ModelSpec, graph: Path, threads: int, batch: int = 32):
        import onnxruntime

        self.spec, self.dim, self.batch = spec, spec.embedding_dim, batch
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

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return embed_in_batches(crops, self.batch, self.dim, self._embed_chunk)

    def graph_input(self, crops: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 crops as the graph takes them: N x 3 x H x W, standardised."""
        batch = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        return np.ascontiguousarray(standardise(batch, self.spec.standardisation).numpy())

    def _embed_chunk(self, crops: np.ndarray) -> np.ndarray:
        x = self.graph_input(crops)
        (vectors,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})
        normalised = torch.nn.functional.normalize(torch.from_numpy(vectors), dim=1)
        return np.asarray(normalised.numpy(), dtype=np.float32)
