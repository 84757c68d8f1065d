"""The expression network's Keras-to-torch mapping and TensorFlow's 'same' max pooling."""

from __future__ import annotations

import numpy as np
import torch

from ml.networks.expressions import MiniXception, _max_pool_same
from ml.provision.fer_keras import _keras_names, convert_keras_emotions


def test_same_max_pool_halves_rounding_up_as_tensorflow_does() -> None:
    for size, expected in ((60, 30), (15, 8), (8, 4)):
        assert _max_pool_same(torch.zeros(1, 1, size, size)).shape[-1] == expected
    # TensorFlow pads the odd pixel at the end: the last window of a 4-wide row sees only
    # its last two values, and the first window starts at the first value.
    row = torch.tensor([[[[1.0, 5.0, 2.0, 7.0]]]])
    assert _max_pool_same(row).flatten().tolist() == [5.0, 7.0]


def _as_keras(state: dict[str, torch.Tensor]) -> dict[tuple[str, str], np.ndarray]:
    """The Keras layout (names and axis orders) of a torch state dict."""
    torch_to_keras = {
        "weight": "kernel",
        "bias": "bias",
        "running_mean": "moving_mean",
        "running_var": "moving_variance",
    }
    tensors: dict[tuple[str, str], np.ndarray] = {}
    for layer, prefix in _keras_names():
        for key, value in state.items():
            if not key.startswith(prefix + ".") or key.endswith("num_batches_tracked"):
                continue
            rest = key[len(prefix) + 1 :]
            array = value.numpy()
            if rest == "depthwise.weight":
                tensors[(layer, "depthwise_kernel")] = array.transpose(2, 3, 0, 1)
            elif rest == "pointwise.weight":
                tensors[(layer, "pointwise_kernel")] = array.transpose(2, 3, 1, 0)
            elif array.ndim == 4:
                tensors[(layer, "kernel")] = array.transpose(2, 3, 1, 0)
            elif layer.startswith("batch_normalization"):
                name = {"weight": "gamma", "bias": "beta"}.get(rest, torch_to_keras[rest])
                tensors[(layer, name)] = array
            else:
                tensors[(layer, torch_to_keras[rest])] = array
    return tensors


def test_keras_tensors_map_back_onto_every_parameter() -> None:
    torch.manual_seed(0)
    original = MiniXception()
    for module in original.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    converted = convert_keras_emotions(_as_keras(original.state_dict()))
    for key, value in original.state_dict().items():
        assert torch.equal(converted[key], value), key
