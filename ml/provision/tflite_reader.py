"""TensorFlow Lite files read into the graph description `ml.networks.graph.GraphNetwork` runs.

MediaPipe's face mesh and iris networks ship as .tflite flatbuffers. `read_tflite` reads one
with the `tflite` package (the flatbuffer schema's generated readers), resolves its float16
weights to float32 once, moves every tensor from TFLite's NHWC layout to torch's NCHW, and
writes each operator as the ONNX-style node GraphNetwork already runs: CONV_2D and
DEPTHWISE_CONV_2D become Conv (TF's SAME padding, which may put the extra pixel after, becomes an
explicit Pad), PRELU becomes PRelu, a fused activation becomes its own node. The server needs
neither the tflite package nor a TFLite runtime.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ml.networks.graph import Graph, Node, UnsupportedGraphError

_NUMPY_TYPES = {0: np.float32, 1: np.float16, 2: np.int32}  # tflite.TensorType values
_SAME, _VALID = 0, 1  # tflite.Padding values
_FUSED = {0: None, 1: "Relu"}  # tflite.ActivationFunctionType values served here


def read_tflite(path: Path) -> tuple[Graph, dict[str, Tensor]]:
    """The graph's description (outputs in the file's order) and its constant tensors."""
    import tflite  # provisioning only

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    if model.SubgraphsLength() != 1:
        raise UnsupportedGraphError(f"{path.name} has {model.SubgraphsLength()} subgraphs")
    reader = _Reader(model, model.Subgraphs(0))
    for index in range(reader.subgraph.OperatorsLength()):
        reader.convert(reader.subgraph.Operators(index))
    graph = {
        "input": reader.name(int(reader.subgraph.InputsAsNumpy()[0])),
        "output": [reader.name(int(i)) for i in reader.subgraph.OutputsAsNumpy()],
        "nodes": reader.nodes,
    }
    # Weights read in TFLite's layout were stored again in torch's; only what nodes read stays.
    used = {name for node in reader.nodes for name in node["inputs"]}
    return graph, {
        name: torch.from_numpy(array) for name, array in reader.constants.items() if name in used
    }


@dataclass
class _Reader:
    model: Any  # tflite.Model
    subgraph: Any  # tflite.SubGraph
    nodes: list[Node] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # NHWC until consumed

    def name(self, index: int) -> str:
        return f"t{index}"

    def shape(self, index: int) -> list[int]:
        return [int(d) for d in self.subgraph.Tensors(index).ShapeAsNumpy()]

    def constant(self, index: int) -> np.ndarray | None:
        """A tensor's stored value (float16 read as float32), or None for an activation."""
        if self.name(index) in self.constants:
            return self.constants[self.name(index)]
        tensor = self.subgraph.Tensors(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        array = np.frombuffer(data.tobytes(), dtype=_NUMPY_TYPES[tensor.Type()])
        return array.reshape(self.shape(index)).astype(
            np.float32 if tensor.Type() in (0, 1) else np.int32
        )

    def convert(self, operator: Any) -> None:

        code = self.model.OperatorCodes(operator.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _operator_names().get(builtin, str(builtin))
        handler = _HANDLERS.get(name)
        if handler is None:
            raise UnsupportedGraphError(f"unsupported TFLite operator {name}")
        inputs = [int(i) for i in operator.InputsAsNumpy()]
        outputs = [int(i) for i in operator.OutputsAsNumpy()]
        handler(self, operator, inputs, outputs)

    def emit(self, op: str, inputs: list[str], output: str, **attributes: Any) -> None:
        self.nodes.append(
            {"op": op, "inputs": inputs, "outputs": [output], "attributes": attributes}
        )

    def store(self, name: str, array: np.ndarray) -> str:
        self.constants[name] = np.ascontiguousarray(array)
        return name

    def activated(self, op: str, inputs: list[str], output: int, fused: int, **attrs: Any) -> None:
        """`op`, then its fused activation as a node of its own."""
        if fused not in _FUSED:
            raise UnsupportedGraphError(f"unsupported fused activation {fused}")
        activation = _FUSED[fused]
        target = self.name(output) if activation is None else f"{self.name(output)}_linear"
        self.emit(op, inputs, target, **attrs)
        if activation is not None:
            self.emit(activation, [target], self.name(output))


@functools.cache
def _operator_names() -> dict[int, str]:
    """TFLite's builtin operator codes by name, from the schema's generated enum."""
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _options(operator: Any, options_class: str) -> Any:
    """The operator's options table, read as the schema's `options_class`."""
    import tflite

    table = operator.BuiltinOptions()
    options = getattr(tflite, options_class)()
    options.Init(table.Bytes, table.Pos)
    return options


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's SAME: the output is ceil(size / stride); the odd pixel of padding goes after."""
    reach = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + reach - size, 0)
    return total // 2, total - total // 2


def _padded_input(
    reader: _Reader, source: int, padding: int, kernel: tuple[int, int], strides: tuple[int, int]
) -> tuple[str, list[int]]:
    """The input's name and the symmetric pads left for the operator; an asymmetric SAME
    padding becomes a Pad node first."""
    if padding == _VALID:
        return reader.name(source), [0, 0, 0, 0]
    _, height, width, _ = reader.shape(source)
    top, bottom = _same_padding(height, kernel[0], strides[0])
    left, right = _same_padding(width, kernel[1], strides[1])
    if (top, left) == (bottom, right):
        return reader.name(source), [top, left, bottom, right]
    pads = reader.store(
        f"{reader.name(source)}_pads_{top}{left}{bottom}{right}",
        np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64),
    )
    padded = f"{reader.name(source)}_padded_{top}{left}{bottom}{right}"
    reader.emit("Pad", [reader.name(source), pads], padded)
    return padded, [0, 0, 0, 0]


def _conv(reader: _Reader, operator: Any, inputs: list[int], outputs: list[int]) -> None:
    options = _options(operator, "Conv2DOptions")
    _emit_conv(reader, options, inputs, outputs, depthwise=False)


def _depthwise(reader: _Reader, operator: Any, inputs: list[int], outputs: list[int]) -> None:
    options = _options(operator, "DepthwiseConv2DOptions")
    _emit_conv(reader, options, inputs, outputs, depthwise=True)


def _emit_conv(
    reader: _Reader, options: Any, inputs: list[int], outputs: list[int], depthwise: bool
) -> None:
    """A Conv node. TFLite stores a convolution's weights O x H x W x I and a depthwise one's
    1 x H x W x (channels * multiplier); torch wants O x I/groups x H x W."""
    weight = reader.constant(inputs[1])
    if weight is None or options.DilationHFactor() != 1 or options.DilationWFactor() != 1:
        raise UnsupportedGraphError("a convolution needs constant weights and no dilation")
    kernel = (weight.shape[1], weight.shape[2])
    strides = (options.StrideH(), options.StrideW())
    source, pads = _padded_input(reader, inputs[0], options.Padding(), kernel, strides)
    layout = (3, 0, 1, 2) if depthwise else (0, 3, 1, 2)
    weight_name = reader.store(f"{reader.name(inputs[1])}_oihw", weight.transpose(layout))
    reader.activated(
        "Conv",
        [source, weight_name, *_bias(reader, inputs)],
        outputs[0],
        options.FusedActivationFunction(),
        strides=list(strides),
        pads=pads,
        group=reader.shape(inputs[0])[3] if depthwise else 1,
    )


def _bias(reader: _Reader, inputs: list[int]) -> list[str]:
    if len(inputs) < 3 or inputs[2] < 0:
        return []
    bias = reader.constant(inputs[2])
    if bias is None:
        raise UnsupportedGraphError("a bias that is not constant")
    return [reader.store(reader.name(inputs[2]), bias)]


def _max_pool(reader: _Reader, operator: Any, inputs: list[int], outputs: list[int]) -> None:
    options = _options(operator, "Pool2DOptions")
    kernel = (options.FilterHeight(), options.FilterWidth())
    strides = (options.StrideH(), options.StrideW())
    _, height, width, _ = reader.shape(inputs[0])
    if options.Padding() == _SAME and any(
        _same_padding(size, k, s) != (0, 0)
        for size, k, s in ((height, kernel[0], strides[0]), (width, kernel[1], strides[1]))
    ):
        raise UnsupportedGraphError("MaxPool2D with SAME padding that pads")
    reader.activated(
        "MaxPool",
        [reader.name(inputs[0])],
        outputs[0],
        options.FusedActivationFunction(),
        kernel_shape=list(kernel),
        strides=list(strides),
    )


def _add(reader: _Reader, operator: Any, inputs: list[int], outputs: list[int]) -> None:
    options = _options(operator, "AddOptions")
    operands = [reader.name(inputs[0]), reader.name(inputs[1])]
    reader.activated("Add", operands, outputs[0], options.FusedActivationFunction())


def _prelu(reader: _Reader, _operator: Any, inputs: list[int], outputs: list[int]) -> None:
    slope = reader.constant(inputs[1])  # ... x channels, NHWC
    if slope is None:
        raise UnsupportedGraphError("PRelu with a slope that is not constant")
    channels = slope.shape[-1]
    name = reader.store(f"{reader.name(inputs[1])}_c11", slope.reshape(channels, 1, 1))
    reader.emit("PRelu", [reader.name(inputs[0]), name], reader.name(outputs[0]))


def _pad(reader: _Reader, _operator: Any, inputs: list[int], outputs: list[int]) -> None:
    paddings = reader.constant(inputs[1])  # [[before, after]] per NHWC axis
    if paddings is None:
        raise UnsupportedGraphError("Pad with paddings that are not constant")
    nchw = paddings[[0, 3, 1, 2]]
    pads = reader.store(
        f"{reader.name(inputs[1])}_nchw", np.concatenate([nchw[:, 0], nchw[:, 1]]).astype(np.int64)
    )
    reader.emit("Pad", [reader.name(inputs[0]), pads], reader.name(outputs[0]))


def _reshape(reader: _Reader, _operator: Any, inputs: list[int], outputs: list[int]) -> None:
    """Only the flattening of a 1 x 1 x 1 x C tensor, where NHWC and NCHW orders agree."""
    source, target = reader.shape(inputs[0]), reader.shape(outputs[0])
    if len(source) != 4 or source[1:3] != [1, 1] or target != [source[0], source[3]]:
        raise UnsupportedGraphError(f"Reshape from {source} to {target}")
    reader.emit("Flatten", [reader.name(inputs[0])], reader.name(outputs[0]))


def _dequantize(reader: _Reader, _operator: Any, inputs: list[int], outputs: list[int]) -> None:
    """float16 weights: stored as float32 under the dequantised tensor's name."""
    value = reader.constant(inputs[0])
    if value is None:
        raise UnsupportedGraphError("Dequantize of a tensor that is not constant")
    reader.constants[reader.name(outputs[0])] = value


_HANDLERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "MAX_POOL_2D": _max_pool,
    "ADD": _add,
    "PRELU": _prelu,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "DEQUANTIZE": _dequantize,
}
