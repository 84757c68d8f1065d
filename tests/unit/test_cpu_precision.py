"""The CPU embedder's precision is chosen by timing: with both timings faked, the faster one is
served (bf16 only when clearly faster and within the accepted drift), a setting forces either
without measuring, and a machine measures once (cached in the data dir, measured again when
what the timing depends on changes)."""

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
    measure,
)
from ml.face_models import DEFAULT_MODEL_VERSION, ModelSpec, model_spec

SPEC = model_spec(DEFAULT_MODEL_VERSION)


def tiny_network(spec: ModelSpec) -> nn.Module:
    """Crops in, vectors of the spec's size out: fast, and real enough to run in bf16."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 5, stride=4),
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


@pytest.mark.parametrize(("fp32_ms", "bf16_ms", "served"), [(90.0, 50.0, "bf16"), (50, 90, "fp32")])
def test_measuring_times_both_and_serves_the_faster(
    monkeypatch: pytest.MonkeyPatch, fp32_ms: float, bf16_ms: float, served: str
) -> None:
    timings = iter([fp32_ms, bf16_ms])

    def faked(embed: Any, crops: np.ndarray, give_up_ms: float = 0.0) -> tuple[float, Any]:
        return next(timings), embed(crops)  # the vectors are real, the timings are not

    monkeypatch.setattr(cpu_precision, "best_ms", faked)
    choice = measure(SPEC, tiny_network(SPEC))
    assert (choice.precision, choice.chosen_by) == (served, "measured")
    assert (choice.fp32_ms, choice.bf16_ms) == (fp32_ms, bf16_ms)
    assert choice.min_cosine is not None and 0.9 < choice.min_cosine <= 1.0


class FakeMeasurement:
    def __init__(self, precision: str) -> None:
        self.precision, self.calls = precision, 0

    def __call__(self, spec: ModelSpec, network: nn.Module) -> PrecisionChoice:
        self.calls += 1
        bf16_ms = 40.0 if self.precision == "bf16" else 140.0
        return PrecisionChoice(
            faster_precision(100.0, bf16_ms, 0.9999), "measured", 100.0, bf16_ms, 0.9999
        )


@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_a_setting_forces_either_without_measuring(tmp_path: Path, setting: str) -> None:
    fake = FakeMeasurement("bf16")
    choice = choose(setting, SPEC, nn.Identity(), tmp_path, fake)  # type: ignore[arg-type]
    assert (choice.precision, choice.chosen_by, fake.calls) == (setting, "setting", 0)
    assert not (tmp_path / CACHE_FILE).exists()


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
