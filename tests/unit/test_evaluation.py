from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.evaluation import refit
from ml.evaluation.splits import collect
from ml.evaluation.statistics import (
    bootstrap_interval,
    capped_pairs,
    error_rates,
    grouped_warnings,
    interpolated_tar,
    labelled_images,
    labelled_pairs,
    lfw_pairs,
    min_claimable_far,
    roc_auc,
    roc_curve,
    split_by_identity,
    wilson_interval,
)


def test_roc_curve_known_points() -> None:
    far, tar = roc_curve(np.array([0.9, 0.7]), np.array([0.8, 0.1]))
    # thresholds 0.9, 0.8, 0.7, 0.1 -> (FAR, TAR) = (0,.5), (.5,.5), (.5,1), (1,1)
    assert far.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tar.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert np.trapezoid(tar, far) == pytest.approx(
        roc_auc(np.array([0.9, 0.7]), np.array([0.8, 0.1]))
    )


def test_interpolated_tar_between_roc_points() -> None:
    genuine = np.array([0.9, 0.7])
    impostor = np.array([0.8, 0.1])
    assert interpolated_tar(genuine, impostor, 0.0) == pytest.approx(0.5)
    assert interpolated_tar(genuine, impostor, 0.75) == pytest.approx(1.0)
    separable = interpolated_tar(np.array([0.9, 0.8]), np.array([0.1, 0.2]), 0.01)
    assert separable == pytest.approx(1.0)


def test_error_rates_count_ties_as_matches() -> None:
    rows = error_rates(
        np.array([50.0, 80.0, 99.0]), np.array([10.0, 80.0, 85.0, 20.0]), [80.0, 90.0]
    )
    counts = ("threshold", "fmr", "false_matches", "fnmr", "false_non_matches")
    assert {key: rows[0][key] for key in counts} == {
        "threshold": 80.0,
        "fmr": 0.5,
        "false_matches": 2.0,
        "fnmr": 1 / 3,
        "false_non_matches": 1.0,
    }
    assert (rows[0]["impostor_pairs"], rows[0]["genuine_pairs"]) == (4, 3)
    assert rows[1]["fmr"] == 0.0 and rows[1]["fnmr"] == pytest.approx(2 / 3)
    assert rows[1]["fmr_warning"] is not None and "no false match among" in rows[1]["fmr_warning"]


def test_wilson_interval_brackets_the_share_and_is_sound_at_zero() -> None:
    low, high = wilson_interval(0, 1000)
    assert low == 0.0
    assert 0.002 < high < 0.005  # about the rule of three's 3/1000
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(2 * 0.0962, abs=2e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_error_rates_warn_only_where_false_matches_are_too_few() -> None:
    impostor = np.linspace(0.0, 100.0, 1001)
    rows = error_rates(np.array([99.5]), impostor, [99.0, 99.9])
    assert rows[0]["false_matches"] == 11.0 and rows[0]["fmr_warning"] is None
    assert rows[1]["false_matches"] == 2.0 and "too few" in rows[1]["fmr_warning"]


def test_capped_pairs_are_repeatable_and_capped() -> None:
    labels = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    genuine, impostor = labelled_pairs(labels)
    assert (len(genuine), len(impostor)) == (30, 75)
    first = capped_pairs(labels, 10, 20, seed=3)
    assert first == capped_pairs(labels, 10, 20, seed=3)
    assert first != capped_pairs(labels, 10, 20, seed=4)
    assert (len(first[0]), len(first[1])) == (10, 20)
    assert set(first[0]) <= set(genuine) and set(first[1]) <= set(impostor)
    assert capped_pairs(labels, 100, 100) == (genuine, impostor)


def test_bootstrap_interval_brackets_the_statistic_and_narrows_with_data() -> None:
    rng = np.random.default_rng(0)
    small = bootstrap_interval(roc_auc, rng.normal(1, 1, 50), rng.normal(0, 1, 50), rounds=300)
    large = bootstrap_interval(roc_auc, rng.normal(1, 1, 5000), rng.normal(0, 1, 5000), rounds=100)
    true_auc = 0.7602  # P(N(1,1) > N(0,1)) = Phi(1 / sqrt(2))
    assert small[0] < true_auc < small[1]
    assert large[0] < true_auc < large[1]
    assert large[1] - large[0] < small[1] - small[0]


def test_bootstrap_of_a_perfect_separation_is_degenerate() -> None:
    low, high = bootstrap_interval(roc_auc, np.array([0.9, 0.95]), np.array([0.1, 0.2]))
    assert low == high == 1.0


def test_min_claimable_far() -> None:
    assert min_claimable_far(5549) == pytest.approx(1.8e-4, rel=0.01)
    assert min_claimable_far(0) == 1.0


def test_split_by_identity_never_shares_a_person() -> None:
    labels = ["a", "b", "a", "c", "b"]
    fit, held = split_by_identity(labels, {"a", "c"})
    assert fit.tolist() == [True, False, True, True, False]
    assert not set(np.array(labels)[fit]) & set(np.array(labels)[held])


def test_lfw_pairs_protocol(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t1\nAlice\t1\t3\nAlice\t2\tBob\t12\n")
    parsed = lfw_pairs(pairs, tmp_path / "lfw")
    assert parsed == [
        (tmp_path / "lfw/Alice/Alice_0001.jpg", tmp_path / "lfw/Alice/Alice_0003.jpg", True),
        (tmp_path / "lfw/Alice/Alice_0002.jpg", tmp_path / "lfw/Bob/Bob_0012.jpg", False),
    ]


def test_labelled_images_use_folder_names(tmp_path: Path) -> None:
    for name in ("x/alice/1.jpg", "x/alice/2.png", "x/bob/1.jpeg", "x/bob/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [label for label, _ in labelled_images(tmp_path / "x")] == ["alice", "alice", "bob"]


def test_verification_benchmark_split_shares_no_person(tmp_path: Path) -> None:
    layout = [
        "five-celebrities/train/alice/1.jpg",
        "five-celebrities/val/alice/2.jpg",
        "five-celebrities/train/bob/1.jpg",
        "lfw-george-w-bush/george_w_bush_0001.jpg",
        "facenet-pytorch/test_images/carol/1.jpg",
        "face-recognition-examples/train/dave/1.jpg",
        "extra/erin/1.jpg",
        "extra/alice/3.jpg",  # named like a person of the other split: a separate identity
    ]
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    for fit_on_celebrities in (False, True):
        items = collect(tmp_path, [tmp_path / "extra"], "largest", fit_on_celebrities)
        fit_people = {item.label for item in items if item.fit}
        held_people = {item.label for item in items if not item.fit}
        assert not fit_people & held_people
        celebrities = {"alice", "bob"}
        others = {"lfw-george-w-bush", "carol", "dave", "extra/erin", "extra/alice"}
        assert (held_people, fit_people) == (
            (others, celebrities) if fit_on_celebrities else (celebrities, others)
        )


def test_a_warning_shared_by_several_thresholds_is_said_once() -> None:
    genuine = np.linspace(0, 100, 50)
    impostor = np.concatenate([np.zeros(998), [85.0, 92.0]])
    rows = error_rates(genuine, impostor, [80.0, 90.0, 95.0, 99.0])
    assert grouped_warnings(rows) == [
        "at 80: only 2 false matches among 1000 impostor pairs: too few to support the FMR "
        f"measured, which could be as high as {rows[0]['fmr_ci95'][1]:.2g} (95%)",
        "at 90: only 1 false match among 1000 impostor pairs: too few to support the FMR "
        f"measured, which could be as high as {rows[1]['fmr_ci95'][1]:.2g} (95%)",
        "at 95, 99: no false match among 1000 impostor pairs: too few to support the FMR "
        f"measured, which could be as high as {rows[2]['fmr_ci95'][1]:.2g} (95%)",
    ]


@pytest.mark.parametrize(("share", "people"), [(0.3, 11), (0.0, 10), (0.5, 16)])
def test_people_a_calibration_folder_needs_in_all(share: float, people: int) -> None:
    assert refit.people_needed(share) == people
    labels = [f"p{n}" for n in range(people) for _ in range(40)]
    refit.check_folder(labels, share, seed=0)  # enough people, and photos for the pairs
    with pytest.raises(refit.NotEnoughPhotosError, match=f"at least {people} people in all"):
        refit.check_folder([label for label in labels if label != "p0"], share, seed=0)
