"""Small operator graphs run as PyTorch modules, on any device and batch.

Provisioning (`ml.provision.onnx_reader`, `ml.provision.tflite_reader`) turns an ONNX or TFLite
file into a plain description (ONNX-style nodes and attributes) and its tensors, saved as one
torch file; `GraphNetwork` runs that description with torch operators, so the server needs
neither the onnx or tflite packages nor a runtime for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

Node = dict[str, Any]  # {"op", "inputs", "outputs", "attributes"}
Graph = dict[str, Any]  # {"input", "output", "nodes"}


class UnsupportedGraphError(ValueError):
    """A graph uses an operator or form `GraphNetwork` does not run."""


class GraphNetwork(nn.Module):
    """Runs a graph description node by node; its tensors are buffers, so `.to(device)`
    moves them."""

    def __init__(self, graph: Graph, tensors: dict[str, Tensor]) -> None:
        super().__init__()
        self.graph = graph
        self._buffer_names = {name: f"tensor_{i}" for i, name in enumerate(sorted(tensors))}
        for name, tensor in tensors.items():
            self.register_buffer(self._buffer_names[name], tensor)

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, ...]:
        """The graph's output, or a tuple of its outputs when it names a list of them."""
        values: dict[str, Tensor] = {self.graph["input"]: images}
        for name, buffer_name in self._buffer_names.items():
            values[name] = getattr(self, buffer_name)
        for node in self.graph["nodes"]:
            inputs = [values[name] for name in node["inputs"] if name]
            values[node["outputs"][0]] = OPERATORS[node["op"]](inputs, node["attributes"])
        output = self.graph["output"]
        if isinstance(output, list):
            return tuple(values[name] for name in output)
        return values[output]


def _symmetric_padding(pads: list[int]) -> tuple[int, int]:
    top, left, bottom, right = pads
    if (top, left) != (bottom, right):
        raise UnsupportedGraphError(f"asymmetric padding {pads}")
    return top, left


def _conv(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    x, weight, *bias = inputs
    return functional.conv2d(
        x,
        weight,
        bias[0] if bias else None,
        stride=tuple(attributes.get("strides", [1, 1])),
        padding=_symmetric_padding(attributes.get("pads", [0, 0, 0, 0])),
        dilation=tuple(attributes.get("dilations", [1, 1])),
        groups=attributes.get("group", 1),
    )


def _pooling(attributes: dict[str, Any]) -> dict[str, Any]:
    """torch's pooling arguments from an ONNX MaxPool's or AveragePool's attributes."""
    return {
        "kernel_size": tuple(attributes["kernel_shape"]),
        "stride": tuple(attributes.get("strides", [1, 1])),
        "padding": _symmetric_padding(attributes.get("pads", [0, 0, 0, 0])),
        "ceil_mode": bool(attributes.get("ceil_mode", 0)),
    }


def _max_pool(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    pooled: Tensor = functional.max_pool2d(inputs[0], **_pooling(attributes))
    return pooled


def _average_pool(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    include_pad = bool(attributes.get("count_include_pad", 0))
    return functional.avg_pool2d(inputs[0], **_pooling(attributes), count_include_pad=include_pad)


def _pad(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    """ONNX Pad (constant mode): pads are all dims' starts, then all dims' ends."""
    if attributes.get("mode", "constant") != "constant" or len(inputs) > 3:
        raise UnsupportedGraphError("only constant Pad over every axis is supported")
    x, pads = inputs[0], [int(p) for p in inputs[1].tolist()]
    value = float(inputs[2].item()) if len(inputs) == 3 else 0.0
    rank = x.dim()
    starts, ends = pads[:rank], pads[rank:]
    torch_pads = [amount for axis in reversed(range(rank)) for amount in (starts[axis], ends[axis])]
    return functional.pad(x, torch_pads, value=value)


def _prelu(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    x, slope = inputs
    if x.dim() == 4 and slope.shape == (x.shape[1], 1, 1):
        # One slope per channel, as MediaPipe's networks have: torch's own kernel is one pass
        # where the general form below takes three, and gives the same values.
        return functional.prelu(x, slope.flatten())
    return torch.where(x >= 0, x, x * slope)


def _flatten(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    if attributes.get("axis", 1) != 1:
        raise UnsupportedGraphError("only Flatten with axis 1 is supported")
    return inputs[0].flatten(1)


def _gemm(inputs: list[Tensor], attributes: dict[str, Any]) -> Tensor:
    a, b, *c = inputs
    a = a.T if attributes.get("transA", 0) else a
    b = b.T if attributes.get("transB", 0) else b
    out: Tensor = float(attributes.get("alpha", 1.0)) * (a @ b)
    return out + float(attributes.get("beta", 1.0)) * c[0] if c else out


OPERATORS: dict[str, Callable[[list[Tensor], dict[str, Any]], Tensor]] = {
    "Conv": _conv,
    "Mul": lambda inputs, _: inputs[0] * inputs[1],
    "Add": lambda inputs, _: inputs[0] + inputs[1],
    "Relu": lambda inputs, _: torch.relu(inputs[0]),
    "PRelu": _prelu,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "Pad": _pad,
    "GlobalAveragePool": lambda inputs, _: inputs[0].mean(dim=(2, 3), keepdim=True),
    "Flatten": _flatten,
    "Gemm": _gemm,
    "Softmax": lambda inputs, a: torch.softmax(inputs[0], dim=a.get("axis", -1)),
}


def load_graph(path: Path) -> GraphNetwork:
    """A network that provisioning saved as a graph description and its tensors."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return GraphNetwork(json.loads(saved["graph"]), saved["tensors"]).eval()
