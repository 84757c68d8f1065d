"""The embedder's weights exported as an ONNX graph for ONNX Runtime (ml/onnx_embedder.py),
beside the weights, entered in the manifest with the checksum of the weights it came from.
Provisioning only: torch.onnx loads the onnx package, which the server never imports."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ml.embedder import fold_batch_norms, load_network
from ml.face_models import MODEL_SPECS
from ml.manifest import ManifestEntry, WeightsError, is_provisioned, read_manifest
from ml.networks.base import NetworkEntry
from ml.onnx_embedder import INPUT_NAME, OUTPUT_NAME, graph_entry
from ml.provision.packaged import record_file

# The newest opset that torch's TorchScript exporter writes and onnxruntime>=1.18 reads.
OPSET = 17
CROP_SIDE = 160


def export_graph(network: nn.Module, target: Path) -> None:
    """`network` (fp32, any batch of 160x160 crops) written to `target` whole or not at all,
    with its batch norms folded as TorchEmbedder folds them."""
    folded = fold_batch_norms(copy.deepcopy(network).eval()).float()
    sample = torch.zeros(2, 3, CROP_SIDE, CROP_SIDE)
    partial = target.with_suffix(".partial")
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; what it writes for these plain convolutions is the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            folded,
            (sample,),
            str(partial),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    os.replace(partial, target)


def provision_graph(models_dir: Path, network: NetworkEntry, force: bool = False) -> ManifestEntry:
    """Export the graph of a provisioned embedder network (idempotent: done again when its
    weights changed, or when forced)."""
    weights = network.verified_path(models_dir)  # its checksum is the manifest's from here on
    manifest = read_manifest(models_dir)
    name, file = graph_entry(network)
    origin = f"exported from {weights.name} (sha256 {manifest[network.name].sha256}) by torch.onnx"
    recorded = manifest.get(name)
    current = recorded is not None and recorded.source.startswith(origin)
    if recorded and current and is_provisioned(models_dir, name, file) and not force:
        return recorded
    spec = next((s for s in MODEL_SPECS.values() if s.network == network.name), None)
    if spec is None:
        raise WeightsError(f"{network.name} is not an embedder network")
    target = models_dir / file
    export_graph(load_network(spec, weights), target)
    return record_file(models_dir, name, target, f"{origin} {torch.__version__}, opset {OPSET}")
