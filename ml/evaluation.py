"""Verification metrics over labelled photos: pair scores, ROC AUC, TAR at a given FAR."""

from __future__ import annotations

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
