"""How the CPU embedder runs is chosen by timing: with the timings faked, the fastest way is
served (bf16 only when clearly faster and within the accepted drift, ONNX Runtime only when
clearly faster than torch in fp32), a setting forces any way without measuring, and a machine
measures once (cached in the data dir, measured again when what the timing depends on
changes, a newly provisioned graph included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ml import cpu_precision
from ml.cpu_precision import (
    ACCEPTED_MIN_COSINE,
    CACHE_FILE,
    PrecisionChoice,
    choose,
    faster_precision,
    fastest_way,
    measure,
    served_embedder,
)
from ml.face_models import DEFAULT_MODEL_VERSION, ModelSpec, model_spec
from ml.onnx_embedder import OnnxRuntimeEmbedder, ProvisionedGraph
from ml.provision.embedder_graph import export_graph

SPEC = model_spec(DEFAULT_MODEL_VERSION)


def tiny_network(spec: ModelSpec) -> nn.Module:
    """Crops in, vectors of the spec's size out: fast, and real enough to run in bf16."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 4, stride=4),  # 40 x 40: a whole number of pooling cells (ONNX)
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(64, spec.embedding_dim),
    )


@pytest.mark.parametrize(
    ("fp32_ms", "bf16_ms", "cosine", "served"),
    [
        (100.0, 60.0, 0.9999, "bf16"),  # AMX: bf16 well ahead
        (100.0, 117.0, 0.9999, "fp32"),  # AVX512-BF16 without AMX: bf16 behind
        (100.0, 400.0, 0.9999, "fp32"),  # AVX2 only: bf16 emulated
        (100.0, 97.0, 0.9999, "fp32"),  # within noise: fp32 keeps every replica's vectors
        (100.0, 60.0, ACCEPTED_MIN_COSINE - 0.001, "fp32"),  # faster, but drifting
    ],
)
def test_the_faster_precision_is_served(
    fp32_ms: float, bf16_ms: float, cosine: float, served: str
) -> None:
    assert faster_precision(fp32_ms, bf16_ms, cosine) == served


@pytest.mark.parametrize(
    ("fp32_ms", "bf16_ms", "onnxruntime_ms", "onnxruntime_cosine", "served"),
    [
        (100.0, 117.0, 70.0, 0.999999, ("fp32", "onnxruntime")),  # AVX2: MLAS ahead of oneDNN
        (100.0, 60.0, 70.0, 0.999999, ("bf16", "torch")),  # native bf16 ahead of both
        (100.0, 68.0, 70.0, 0.999999, ("fp32", "onnxruntime")),  # bf16 within noise of it
        (100.0, 117.0, 97.0, 0.999999, ("fp32", "torch")),  # within noise: torch
        (100.0, 117.0, 70.0, 0.99, ("fp32", "torch")),  # faster, but not the same vectors
        (100.0, 117.0, None, None, ("fp32", "torch")),  # no graph provisioned
    ],
)
def test_the_fastest_way_is_served(
    fp32_ms: float,
    bf16_ms: float,
    onnxruntime_ms: float | None,
    onnxruntime_cosine: float | None,
    served: tuple[str, str],
) -> None:
    assert fastest_way(fp32_ms, bf16_ms, 0.9999, onnxruntime_ms, onnxruntime_cosine) == served


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    """tiny_network and its exported ONNX graph, as provisioning exports the embedder."""
    torch.manual_seed(0)
    network = tiny_network(SPEC).eval()
    graph = tmp_path_factory.mktemp("graph") / "tiny.onnx"
    export_graph(network, graph)
    return network, graph


@pytest.mark.parametrize(
    ("timings", "served"),
    [
        ((90.0, 50.0, 80.0), ("bf16", "torch")),
        ((50.0, 90.0, 80.0), ("fp32", "torch")),
        ((90.0, 95.0, 40.0), ("fp32", "onnxruntime")),
    ],
)
def test_measuring_times_every_way_and_serves_the_fastest(
    monkeypatch: pytest.MonkeyPatch,
    tiny_graph: tuple[nn.Module, Path],
    timings: tuple[float, float, float],
    served: tuple[str, str],
) -> None:
    faked_timings = iter(timings)

    def faked(embed: Any, crops: np.ndarray, give_up_ms: float = 0.0) -> tuple[float, Any]:
        return next(faked_timings), embed(crops)  # the vectors are real, the timings are not

    monkeypatch.setattr(cpu_precision, "best_ms", faked)
    network, graph = tiny_graph
    choice = measure(SPEC, network, graph)
    assert (choice.precision, choice.runtime, choice.chosen_by) == (*served, "measured")
    assert (choice.fp32_ms, choice.bf16_ms, choice.onnxruntime_ms) == timings
    assert choice.min_cosine is not None and 0.9 < choice.min_cosine <= 1.0
    # The exported graph gives torch fp32's vectors, to rounding.
    assert choice.onnxruntime_cosine is not None and choice.onnxruntime_cosine > 0.99999
    embedder = served_embedder(SPEC, network, choice, graph)
    assert isinstance(embedder, OnnxRuntimeEmbedder) == (served[1] == "onnxruntime")


class FakeMeasurement:
    def __init__(self, precision: str) -> None:
        self.precision, self.calls = precision, 0

    def __call__(self, spec: ModelSpec, network: nn.Module, graph: Path | None) -> PrecisionChoice:
        self.calls += 1
        bf16_ms = 40.0 if self.precision == "bf16" else 140.0
        return PrecisionChoice(
            faster_precision(100.0, bf16_ms, 0.9999), "measured", 100.0, bf16_ms, 0.9999
        )


@pytest.mark.parametrize(
    ("setting", "way"),
    [
        ("fp32", ("fp32", "torch")),
        ("bf16", ("bf16", "torch")),
        ("onnxruntime", ("fp32", "onnxruntime")),
    ],
)
def test_a_setting_forces_any_way_without_measuring(
    tmp_path: Path, setting: str, way: tuple[str, str]
) -> None:
    fake = FakeMeasurement("bf16")
    choice = choose(setting, SPEC, nn.Identity(), tmp_path, fake)  # type: ignore[arg-type]
    assert (choice.precision, choice.runtime) == way
    assert (choice.chosen_by, fake.calls) == ("setting", 0)
    assert not (tmp_path / CACHE_FILE).exists()


def test_a_graph_provisioned_later_measures_again(tmp_path: Path) -> None:
    fake = FakeMeasurement("fp32")
    choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    graph = ProvisionedGraph(tmp_path / "g.onnx", "0" * 64)
    choose("auto", SPEC, nn.Identity(), tmp_path, fake, graph)
    assert fake.calls == 2


def test_a_machine_measures_once(tmp_path: Path) -> None:
    fake = FakeMeasurement("bf16")
    first = choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    again = choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    assert fake.calls == 1
    assert (first.precision, first.chosen_by) == ("bf16", "measured")
    assert (again.precision, again.chosen_by) == ("bf16", "measured earlier on this machine")
    assert (again.fp32_ms, again.bf16_ms) == (first.fp32_ms, first.bf16_ms)


def test_another_thread_count_or_a_damaged_cache_measures_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMeasurement("fp32")
    choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    assert fake.calls == 2
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert choose("auto", SPEC, nn.Identity(), tmp_path, fake).chosen_by == "measured"
    assert fake.calls == 3
    assert json.loads((tmp_path / CACHE_FILE).read_text())["choice"]["precision"] == "fp32"
