"""ONNX graphs run as torch modules give what ONNX Runtime gives, operator by operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ml.networks.graph import GraphNetwork, UnsupportedGraphError
from ml.provision.onnx_reader import read_onnx

RNG = np.random.default_rng(0)


def _tensor(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.normal(0, 0.2, shape).astype(np.float32), name)


def _residual_graph() -> onnx.ModelProto:
    """Every operator the dlib networks use, in their shapes: a conv stem, pooling, an
    affine (Mul, Add) layer, a residual join whose shortcut is widened by Pad, a head."""
    pads_left = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 4, 0, 0], np.int64), "pads")
    nodes = [
        helper.make_node(
            "Conv",
            ["images", "w1", "b1"],
            ["c1"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
        ),
        helper.make_node("Mul", ["c1", "scale"], ["m1"]),
        helper.make_node("Add", ["m1", "offset"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node(
            "MaxPool",
            ["r1"],
            ["p1"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[0, 0, 0, 0],
            ceil_mode=0,
        ),
        helper.make_node(
            "Conv",
            ["p1", "w2", "b2"],
            ["c2"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
        ),
        helper.make_node(
            "AveragePool",
            ["p1"],
            ["short"],
            kernel_shape=[1, 1],
            strides=[1, 1],
            count_include_pad=0,
        ),
        helper.make_node("Pad", ["short", "pads"], ["wide"], mode="constant"),
        helper.make_node("Add", ["c2", "wide"], ["joined"]),
        helper.make_node("GlobalAveragePool", ["joined"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initialisers = [
        _tensor("w1", (4, 3, 3, 3)),
        _tensor("b1", (4,)),
        _tensor("scale", (1, 4, 1, 1)),
        _tensor("offset", (1, 4, 1, 1)),
        _tensor("w2", (8, 4, 3, 3)),
        _tensor("b2", (8,)),
        _tensor("w3", (8, 5)),
        _tensor("b3", (5,)),
        pads_left,
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 17, 17])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 5])],
        initialisers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_graph_network_matches_onnx_runtime(tmp_path: Path) -> None:
    path = tmp_path / "residual.onnx"
    onnx.save(_residual_graph(), str(path))
    images = RNG.normal(0, 1, (3, 3, 17, 17)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"images": images})[0]
    network = GraphNetwork(*read_onnx(path)).eval()
    with torch.inference_mode():
        found = network(torch.from_numpy(images)).numpy()
    assert found.shape == (3, 5)
    assert np.allclose(found, expected, atol=1e-5)


def test_unknown_operators_are_refused_at_provisioning(tmp_path: Path) -> None:
    node = helper.make_node("Sigmoid", ["images"], ["out"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])],
    )
    path = tmp_path / "sigmoid.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedGraphError, match="Sigmoid"):
        read_onnx(path)


@pytest.mark.parametrize(
    "slopes",
    [[[[-0.5]], [[0.25]], [[1.5]], [[-0.1]]], [0.3]],
    ids=["per channel", "one slope"],
)
def test_prelu_matches_onnx_runtime(tmp_path: Path, slopes: list[object]) -> None:
    """MediaPipe's networks have one PReLU slope per channel, which runs on torch's own kernel;
    other slope shapes take the general form. Both give ONNX Runtime's values, negative
    slopes included."""
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("PRelu", ["c", "slope"], ["out"]),
    ]
    slope = numpy_helper.from_array(np.array(slopes, dtype=np.float32), "slope")
    graph = helper.make_graph(
        nodes,
        "prelu",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 9, 9])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4, 9, 9])],
        [_tensor("w", (4, 3, 3, 3)), _tensor("b", (4,)), slope],
    )
    path = tmp_path / "prelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    images = RNG.normal(0, 1, (2, 3, 9, 9)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"images": images})[0]
    with torch.inference_mode():
        found = GraphNetwork(*read_onnx(path)).eval()(torch.from_numpy(images)).numpy()
    assert (found < 0).any() and (found > 0).any()
    assert np.allclose(found, expected, atol=1e-5)
