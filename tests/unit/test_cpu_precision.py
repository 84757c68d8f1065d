"""How the CPU embedder runs is chosen by timing: with the timings faked, the fastest way is
served (a way replaces the one served so far only when clearly faster and within the accepted
drift; bf16 must beat the fastest fp32 way), a setting forces any way without measuring, and a
machine measures once (cached in the data dir, measured again when what the timing depends on
changes, a newly provisioned graph included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import torch
from torch import nn

from ml import cpu_precision
from ml.cpu_precision import (
    ACCEPTED_MIN_COSINE,
    CACHE_FILE,
    WAYS,
    PrecisionChoice,
    Setting,
    Way,
    as_compiled,
    choose,
    fastest_way,
    measure,
    served_embedder,
)
from ml.embedder import TorchEmbedder
from ml.face_models import DEFAULT_MODEL_VERSION, ModelSpec, model_spec
from ml.onnx_embedder import OnnxRuntimeEmbedder, OpenVinoEmbedder, ProvisionedGraph
from ml.provision.embedder_graph import export_graph
from service.settings import EmbedCpuPrecision

SPEC = model_spec(DEFAULT_MODEL_VERSION)


def tiny_network(spec: ModelSpec) -> nn.Module:
    """Crops in, vectors of the spec's size out: fast, and real enough to run in bf16."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 4, stride=4),  # 40 x 40: a whole number of pooling cells (ONNX)
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(64, spec.embedding_dim),
    )


SAME = 0.999999  # an fp32 runtime's vectors: torch fp32's to rounding
NEAR = 0.9999  # bf16's on faces, within the accepted drift
DRIFTING = ACCEPTED_MIN_COSINE - 0.001


@pytest.mark.parametrize(
    ("batch_ms", "min_cosines", "served"),
    [
        ({"fp32": 100, "bf16": 60}, {"bf16": NEAR}, "bf16"),  # AMX: bf16 well ahead
        ({"fp32": 100, "bf16": 117}, {"bf16": NEAR}, "fp32"),  # AVX512-BF16, no AMX
        ({"fp32": 100, "bf16": 400}, {"bf16": NEAR}, "fp32"),  # AVX2 only: bf16 emulated
        ({"fp32": 100, "bf16": 97}, {"bf16": NEAR}, "fp32"),  # within noise: fp32
        ({"fp32": 100, "bf16": 60}, {"bf16": DRIFTING}, "fp32"),  # faster, but drifting
        # AVX2: MLAS ahead of oneDNN
        (
            {"fp32": 100, "bf16": 117, "onnxruntime": 70},
            {"bf16": NEAR, "onnxruntime": SAME},
            "onnxruntime",
        ),
        # bf16 within noise of the faster fp32 runtime
        (
            {"fp32": 100, "bf16": 68, "onnxruntime": 70},
            {"bf16": NEAR, "onnxruntime": SAME},
            "onnxruntime",
        ),
        ({"fp32": 100, "onnxruntime": 97}, {"onnxruntime": SAME}, "fp32"),  # within noise
        ({"fp32": 100, "onnxruntime": 70}, {"onnxruntime": 0.99}, "fp32"),  # other vectors
        ({"fp32": 100, "onnxruntime": 70}, {}, "fp32"),  # never compared: not served
        # OpenVINO's bf16 ahead of torch's: served
        (
            {"fp32": 100, "bf16": 50, "onnxruntime": 70, "openvino": 68, "openvino-bf16": 36},
            {"bf16": NEAR, "onnxruntime": SAME, "openvino": SAME, "openvino-bf16": NEAR},
            "openvino-bf16",
        ),
        # bf16 slower in torch, faster in OpenVINO than every fp32 way
        (
            {"fp32": 100, "bf16": 117, "onnxruntime": 80, "openvino": 75, "openvino-bf16": 45},
            {"bf16": NEAR, "onnxruntime": SAME, "openvino": SAME, "openvino-bf16": NEAR},
            "openvino-bf16",
        ),
        # OpenVINO's fp32 clearly ahead of ONNX Runtime's; its bf16 drifting
        (
            {"fp32": 100, "onnxruntime": 80, "openvino": 60, "openvino-bf16": 30},
            {"onnxruntime": SAME, "openvino": SAME, "openvino-bf16": DRIFTING},
            "openvino",
        ),
        # AVX512-FP16 without AMX: bf16 slower in torch, OpenVINO's fp16 well ahead of fp32 and
        # its bf16 only within noise of fp16 (fp16 rounds less: it stays)
        (
            {"fp32": 100, "bf16": 117, "onnxruntime": 80, "openvino": 78, "openvino-fp16": 45},
            {"bf16": NEAR, "onnxruntime": SAME, "openvino": SAME, "openvino-fp16": NEAR},
            "openvino-fp16",
        ),
        (
            {"fp32": 100, "openvino": 78, "openvino-fp16": 45, "openvino-bf16": 44},
            {"openvino": SAME, "openvino-fp16": NEAR, "openvino-bf16": NEAR},
            "openvino-fp16",
        ),
        # bf16 clearly ahead of fp16: served; fp16 drifting (overflow, say): not served
        (
            {"fp32": 100, "openvino": 78, "openvino-fp16": 60, "openvino-bf16": 40},
            {"openvino": SAME, "openvino-fp16": NEAR, "openvino-bf16": NEAR},
            "openvino-bf16",
        ),
        (
            {"fp32": 100, "openvino": 78, "openvino-fp16": 40},
            {"openvino": SAME, "openvino-fp16": DRIFTING},
            "openvino",
        ),
        # OpenVINO's fp32 within noise of ONNX Runtime's: the earlier way stays
        (
            {"fp32": 100, "onnxruntime": 80, "openvino": 78},
            {"onnxruntime": SAME, "openvino": SAME},
            "onnxruntime",
        ),
    ],
)
def test_the_fastest_way_is_served(
    batch_ms: dict[Way, float], min_cosines: dict[Way, float], served: Way
) -> None:
    assert fastest_way(batch_ms, min_cosines) == served


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    """tiny_network and its exported ONNX graph, as provisioning exports the embedder."""
    torch.manual_seed(0)
    network = tiny_network(SPEC).eval()
    graph = tmp_path_factory.mktemp("graph") / "tiny.onnx"
    export_graph(network, graph)
    return network, graph


def way_of(embedder: Any) -> Way:
    if isinstance(embedder, TorchEmbedder):
        return "bf16" if embedder.bf16 else "fp32"
    if isinstance(embedder, OpenVinoEmbedder):
        compiled: dict[str, Way] = {"bf16": "openvino-bf16", "fp16": "openvino-fp16"}
        return compiled.get(embedder.executes_in, "openvino")
    assert isinstance(embedder, OnnxRuntimeEmbedder)
    return "onnxruntime"


# Every way timed, none of them clearly faster than torch's fp32 at 90 ms.
SLOWER: dict[Way, float] = {
    "fp32": 90,
    "bf16": 95,
    "onnxruntime": 88,
    "openvino": 89,
    "openvino-fp16": 91,
    "openvino-bf16": 92,
}


@pytest.mark.parametrize(
    ("timings", "served"),
    [
        ({**SLOWER, "bf16": 50}, "bf16"),
        ({**SLOWER, "fp32": 50}, "fp32"),
        ({**SLOWER, "onnxruntime": 40}, "onnxruntime"),
        ({**SLOWER, "openvino": 50}, "openvino"),
    ],
)
def test_measuring_times_every_way_and_serves_the_fastest(
    monkeypatch: pytest.MonkeyPatch,
    tiny_graph: tuple[nn.Module, Path],
    timings: dict[Way, float],
    served: Way,
) -> None:
    def faked(embed: Any, crops: np.ndarray, give_up_ms: float = 0.0) -> tuple[float, Any]:
        # The vectors are real, the timings are not.
        return timings[way_of(embed.__self__)], embed(crops)

    monkeypatch.setattr(cpu_precision, "best_ms", faked)
    network, graph = tiny_graph
    choice = measure(SPEC, network, graph)
    assert (choice.way, choice.chosen_by) == (served, "measured")
    # Every runtime timed; OpenVINO's bf16 only where this CPU has it (it says so).
    assert {"fp32", "bf16", "onnxruntime", "openvino"} <= set(choice.batch_ms)
    assert choice.batch_ms == {way: timings[way] for way in choice.batch_ms}
    assert 0.9 < choice.min_cosines["bf16"] <= 1.0
    # The exported graph gives torch fp32's vectors, to rounding, in either fp32 runtime.
    assert min(choice.min_cosines["onnxruntime"], choice.min_cosines["openvino"]) > 0.99999
    assert way_of(served_embedder(SPEC, network, choice, graph)) == served


def test_openvino_is_timed_only_in_the_precisions_it_compiles_here(
    monkeypatch: pytest.MonkeyPatch, tiny_graph: tuple[nn.Module, Path]
) -> None:
    """Not at all in a precision its CPU plugin does not list, and not under the name of a
    precision it lists but compiles as another (a plugin that would run bf16 as fp16)."""

    def faked(embed: Any, crops: np.ndarray, give_up_ms: float = 0.0) -> tuple[float, Any]:
        return SLOWER[way_of(embed.__self__)], embed(crops)

    monkeypatch.setattr(cpu_precision, "best_ms", faked)
    network, graph = tiny_graph
    monkeypatch.setattr(cpu_precision, "openvino_precisions", lambda: {"fp32"})
    assert set(measure(SPEC, network, graph).batch_ms) == {
        "fp32",
        "bf16",
        "onnxruntime",
        "openvino",
    }
    monkeypatch.setattr(cpu_precision, "openvino_precisions", lambda: {"fp32", "fp16", "bf16"})
    timed = measure(SPEC, network, graph).batch_ms
    for way in ("openvino-fp16", "openvino-bf16"):
        precision = WAYS[way][0]
        compiled = OpenVinoEmbedder(SPEC, graph, 1, precision).executes_in
        assert (way in timed) == (compiled == precision)


def test_a_forced_precision_openvino_compiles_otherwise_is_shown_as_compiled(
    tiny_graph: tuple[nn.Module, Path],
) -> None:
    network, graph = tiny_graph
    forced = cpu_precision.from_setting("openvino-fp16")
    embedder = served_embedder(SPEC, network, forced, graph)
    assert isinstance(embedder, OpenVinoEmbedder)
    shown = as_compiled(forced, embedder)
    assert shown.precision == embedder.executes_in
    assert (shown.chosen_by == "setting") == (embedder.executes_in == "fp16")
    assert shown.as_response()["Precision"] == embedder.executes_in


def test_the_log_names_every_way_timed() -> None:
    choice = PrecisionChoice(
        "bf16",
        "measured",
        "openvino",
        {"fp32": 98.4, "bf16": 51.0, "openvino-bf16": 36.2},
        {"bf16": 0.99991, "openvino-bf16": 0.99986},
    )
    assert choice.summary() == (
        "embedder in bf16 on the CPU by openvino (measured: 8 crops in 98 ms by torch in fp32, "
        "51 ms by torch in bf16 (least cosine 0.99991), 36 ms by openvino in bf16 "
        "(least cosine 0.99986))"
    )
    shown = choice.as_response()
    assert shown["BatchMillis"]["openvino-bf16"] == 36.2
    assert (shown["MinCosineToFp32"], shown["MinCosinesToFp32"]["openvino-bf16"]) == (
        0.99991,
        0.99986,
    )


def test_the_settings_offer_every_way() -> None:
    assert set(get_args(EmbedCpuPrecision)) == set(get_args(Setting)) == {"auto", *WAYS}


class FakeMeasurement:
    def __init__(self, precision: str) -> None:
        self.precision, self.calls = precision, 0

    def __call__(self, spec: ModelSpec, network: nn.Module, graph: Path | None) -> PrecisionChoice:
        self.calls += 1
        batch_ms: dict[Way, float] = {
            "fp32": 100.0,
            "bf16": 40.0 if self.precision == "bf16" else 140.0,
        }
        min_cosines: dict[Way, float] = {"bf16": 0.9999}
        way = fastest_way(batch_ms, min_cosines)
        return PrecisionChoice(WAYS[way][0], "measured", "torch", batch_ms, min_cosines)


@pytest.mark.parametrize(
    ("setting", "way"),
    [
        ("fp32", ("fp32", "torch")),
        ("bf16", ("bf16", "torch")),
        ("onnxruntime", ("fp32", "onnxruntime")),
        ("openvino", ("fp32", "openvino")),
        ("openvino-fp16", ("fp16", "openvino")),
        ("openvino-bf16", ("bf16", "openvino")),
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


def test_a_way_added_by_a_later_version_measures_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMeasurement("fp32")
    earlier = {way: taken for way, taken in WAYS.items() if way != "openvino-fp16"}
    monkeypatch.setattr(cpu_precision, "WAYS", earlier)
    choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    monkeypatch.undo()
    choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    assert fake.calls == 2


def test_a_machine_measures_once(tmp_path: Path) -> None:
    fake = FakeMeasurement("bf16")
    first = choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    again = choose("auto", SPEC, nn.Identity(), tmp_path, fake)
    assert fake.calls == 1
    assert (first.precision, first.chosen_by) == ("bf16", "measured")
    assert (again.precision, again.chosen_by) == ("bf16", "measured earlier on this machine")
    assert again.batch_ms == first.batch_ms


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
