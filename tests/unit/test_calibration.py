from __future__ import annotations

import json

import numpy as np
import pytest

from ml.evaluation.calibration_fit import fit_knots
from ml.evaluation.statistics import pair_scores, roc_auc, tar_at_far, threshold_at_far
from ml.face_models import MODEL_SPECS
from ml.similarity import (
    Calibration,
    CalibrationError,
    bundled_calibration_path,
    calibration_from_json,
    load_calibration,
)


def test_bundled_calibration_is_monotone_and_spans_the_scale() -> None:
    calibration = load_calibration("facenet-20170512")
    cosines = np.linspace(-1, 1, 2001)
    scores = calibration.similarity(cosines)
    assert np.all(np.diff(scores) > 0)
    assert scores[0] == pytest.approx(0.0)
    assert scores[-1] == pytest.approx(100.0)


def test_every_bundled_calibration_matches_its_model() -> None:
    files = sorted(bundled_calibration_path("x").parent.glob("*.json"))
    assert files, "no calibration files are bundled"
    for path in files:
        calibration = calibration_from_json(json.loads(path.read_text()))
        assert calibration.model_version in MODEL_SPECS, path
        assert path.stem == calibration.model_version, path  # the server finds it by name


def test_similarity_clips_out_of_range_cosines() -> None:
    calibration = Calibration("m", "v", (-1.0, 0.5, 1.0), (0.0, 80.0, 100.0))
    assert calibration.similarity(1.0000001) == pytest.approx(100.0)
    assert calibration.similarity(-3.0) == pytest.approx(0.0)
    assert calibration.similarity(0.75) == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("cosines", "similarities"),
    [
        ((-1.0, 0.5, 0.4, 1.0), (0.0, 50.0, 60.0, 100.0)),  # cosines not increasing
        ((-1.0, 0.2, 1.0), (0.0, 90.0, 80.0)),  # similarities not increasing
        ((-0.5, 1.0), (0.0, 100.0)),  # does not start at -1
        ((-1.0, 1.0), (0.0, 120.0)),  # beyond 100
    ],
)
def test_invalid_calibrations_are_refused(
    cosines: tuple[float, ...], similarities: tuple[float, ...]
) -> None:
    with pytest.raises(CalibrationError):
        Calibration("m", "v", cosines, similarities)


def test_roc_auc_known_answers() -> None:
    assert roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert roc_auc(np.array([0.1, 0.2]), np.array([0.9, 0.8])) == 0.0
    assert roc_auc(np.array([0.5]), np.array([0.5])) == 0.5
    # genuine 0.3 beats impostor 0.2 only; genuine 0.6 beats both: 3 wins of 4
    assert roc_auc(np.array([0.3, 0.6]), np.array([0.2, 0.4])) == 0.75


def test_threshold_and_tar_at_far() -> None:
    impostor = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    threshold = threshold_at_far(impostor, 1e-2)
    assert np.mean(impostor >= threshold) == pytest.approx(0.01)
    assert np.mean(impostor >= np.nextafter(threshold, -np.inf)) > 0.01
    genuine = np.array([0.5, 0.991, 0.995, 1.0])
    assert tar_at_far(genuine, impostor, 1e-2) == 0.75


def test_pair_scores_splits_by_label() -> None:
    vectors = np.eye(3, dtype=np.float32)
    genuine, impostor = pair_scores(vectors, ["a", "a", "b"])
    assert len(genuine) == 1 and len(impostor) == 2


def test_fitted_knots_meet_the_false_match_targets() -> None:
    rng = np.random.default_rng(7)
    impostor = np.clip(rng.normal(0.0, 0.12, 20_000), -1, 1)
    genuine = np.clip(rng.normal(0.7, 0.1, 2_000), -1, 1)
    knots = fit_knots(genuine, impostor)
    calibration = Calibration("m", "v", tuple(k[0] for k in knots), tuple(k[1] for k in knots))
    assert np.mean(calibration.similarity(impostor) >= 80) <= 1e-3
    assert np.mean(calibration.similarity(impostor) >= 99) == 0.0
    assert np.mean(calibration.similarity(genuine) >= 80) > 0.9
