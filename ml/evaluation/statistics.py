"""Verification metrics over labelled photos: pair scores, ROC AUC, TAR at a given FAR."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def labelled_images(root: Path) -> list[tuple[str, Path]]:
    """(person, path) for every image laid out as .../<person>/<image>, sorted for repeatability."""
    return sorted(
        (path.parent.name, path)
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def pair_scores(vectors: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of every unordered pair, split into genuine (same label) and impostor pairs."""
    cosines = vectors @ vectors.T
    genuine: list[float] = []
    impostor: list[float] = []
    for i, j in combinations(range(len(labels)), 2):
        (genuine if labels[i] == labels[j] else impostor).append(float(cosines[i, j]))
    return np.asarray(genuine), np.asarray(impostor)


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """P(genuine score > impostor score), ties counting one half (the Mann-Whitney statistic)."""
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("AUC needs at least one genuine and one impostor score")
    ordered = np.sort(impostor)
    below = np.searchsorted(ordered, genuine, side="left")
    below_or_equal = np.searchsorted(ordered, genuine, side="right")
    wins = below.sum() + 0.5 * (below_or_equal - below).sum()
    return float(wins / (len(genuine) * len(impostor)))


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """The lowest threshold t with FAR(t) = share of impostors scoring >= t that is <= far."""
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(far * len(ordered)))
    if allowed >= len(ordered):
        return float(ordered[-1])
    # Accept strictly above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(ordered[allowed], np.inf))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    threshold = threshold_at_far(impostor, far)
    return float(np.mean(genuine >= threshold))


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct score used as an accept-if->=threshold, from (0,0) to (1,1)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    genuine_sorted, impostor_sorted = np.sort(genuine), np.sort(impostor)
    tar = 1.0 - np.searchsorted(genuine_sorted, thresholds, side="left") / len(genuine)
    far = 1.0 - np.searchsorted(impostor_sorted, thresholds, side="left") / len(impostor)
    return np.concatenate([[0.0], far]), np.concatenate([[0.0], tar])


def interpolated_tar(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """TAR at `far` read off the ROC curve by linear interpolation between its points."""
    fars, tars = roc_curve(genuine, impostor)
    return float(np.interp(far, fars, tars))


def bootstrap_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    genuine: np.ndarray,
    impostor: np.ndarray,
    rounds: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval, resampling genuine and impostor scores independently.

    Pairs sharing a photo are not independent, so the interval is a lower bound on the real
    uncertainty."""
    rng = np.random.default_rng(seed)
    values = [
        statistic(rng.choice(genuine, len(genuine)), rng.choice(impostor, len(impostor)))
        for _ in range(rounds)
    ]
    tail = (1.0 - level) / 2.0 * 100.0
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def min_claimable_far(impostor_pairs: int) -> float:
    """Below one false match in all impostor pairs, a measured FAR of 0 says nothing more."""
    return 1.0 / impostor_pairs if impostor_pairs else 1.0


def error_rates(
    genuine: np.ndarray, impostor: np.ndarray, thresholds: list[float]
) -> list[dict[str, float]]:
    """FMR (impostors >= t) and FNMR (genuine < t) with their counts, per threshold."""
    rows = []
    for threshold in thresholds:
        false_matches = int(np.sum(impostor >= threshold))
        false_non_matches = int(np.sum(genuine < threshold))
        rows.append(
            {
                "threshold": float(threshold),
                "fmr": false_matches / len(impostor),
                "false_matches": float(false_matches),
                "fnmr": false_non_matches / len(genuine),
                "false_non_matches": float(false_non_matches),
            }
        )
    return rows


def split_by_identity(labels: list[str], fit_identities: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, held_out) over `labels`: no identity falls in both."""
    fit = np.array([label in fit_identities for label in labels])
    return fit, ~fit


def lfw_pairs(pairs_file: Path, lfw_root: Path) -> list[tuple[Path, Path, bool]]:
    """The LFW `pairs.txt` protocol: (image A, image B, same person) for every listed pair.

    Lines of three fields are genuine pairs (name, n1, n2); lines of four are impostor pairs
    (name1, n1, name2, n2); a header line of one or two numbers is skipped."""

    def image(name: str, number: str) -> Path:
        return lfw_root / name / f"{name}_{int(number):04d}.jpg"

    pairs = []
    for line in pairs_file.read_text().splitlines():
        fields = line.split()
        if len(fields) == 3:
            pairs.append((image(fields[0], fields[1]), image(fields[0], fields[2]), True))
        elif len(fields) == 4:
            pairs.append((image(fields[0], fields[1]), image(fields[2], fields[3]), False))
    return pairs
