"""Weights for the GPU suite, in the served format (a state dict and its manifest entry).

    python -m ml.provision.gpu_weights random --models-dir DIR
    python -m ml.provision.gpu_weights fp16 --from ~/.cache/facebank/models --models-dir DIR

`random`: an untrained network, for speed measurements only (speed does not depend on weight
values; the manifest says where they came from, and tests that need real vectors skip them).
`fp16`: a half-precision copy of the real weights (46 MB instead of 92 MB), small enough to carry
to a GPU machine beside the photos; the embedder casts them back on load.
For the GPU suite and the tests that must tell such weights apart; a deployment provisions
its weights with `facebank models fetch`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ml.embedder import build_network
from ml.face_models import DEFAULT_MODEL_VERSION, model_spec
from ml.manifest import read_manifest
from ml.networks.table import network
from ml.provision.packaged import record_file

RANDOM_SOURCE = "random weights (ml.provision.gpu_weights): for speed measurements only"


def write_random(models_dir: Path, model_version: str = DEFAULT_MODEL_VERSION) -> Path:
    spec = model_spec(model_version)
    models_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    target = models_dir / network(spec.network).file
    torch.save(build_network(spec).state_dict(), target)
    record_file(models_dir, spec.network, target, RANDOM_SOURCE)
    return target


def write_fp16_copy(
    source_dir: Path, models_dir: Path, model_version: str = DEFAULT_MODEL_VERSION
) -> Path:
    spec = model_spec(model_version)
    weights = network(spec.network)
    state = torch.load(weights.verified_path(source_dir), map_location="cpu")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / weights.file
    torch.save(half, target)
    origin = read_manifest(source_dir)[spec.network].source
    record_file(models_dir, spec.network, target, f"fp16 copy of {origin}")
    return target


def are_random(models_dir: Path, model_version: str = DEFAULT_MODEL_VERSION) -> bool:
    entry = read_manifest(models_dir).get(model_spec(model_version).network)
    return entry is not None and entry.source == RANDOM_SOURCE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["random", "fp16"])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--from", dest="source", type=Path, help="real weights, for fp16")
    args = parser.parse_args()
    if args.kind == "random":
        print(write_random(args.models_dir))
    else:
        print(write_fp16_copy(args.source, args.models_dir))


if __name__ == "__main__":
    main()
