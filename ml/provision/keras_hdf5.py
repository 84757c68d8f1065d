"""Keras HDF5 weight files (FaceNet's and fer's), read tensor by tensor."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def keras_tensors(h5_path: Path) -> dict[tuple[str, str], np.ndarray]:
    found = {}
    with h5py.File(h5_path, "r") as handle:
        root = handle["model_weights"]
        for layer in root:
            for inner in root[layer]:
                for variable, dataset in root[layer][inner].items():
                    found[(layer, variable.removesuffix(":0"))] = np.asarray(dataset)
    return found
