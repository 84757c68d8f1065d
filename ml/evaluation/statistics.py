"""Verification metrics over labelled photos: pair scores, ROC AUC, TAR at a given FAR."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def labelled_images(root: Path) -> list[tuple[str, Path]]:
    """(person, path) for every image laid out as .../<person>/<image>, sorted for repeatability."""
    return sorted(
        (path.parent.name, path)
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


Pair = tuple[int, int]


def labelled_pairs(labels: list[str]) -> tuple[list[Pair], list[Pair]]:
    """Every unordered pair of indexes (i < j), split into genuine (same label) and impostor."""
    genuine: list[Pair] = []
    impostor: list[Pair] = []
    for i, j in combinations(range(len(labels)), 2):
        (genuine if labels[i] == labels[j] else impostor).append((i, j))
    return genuine, impostor


def capped_pairs(
    labels: list[str], max_genuine: int, max_impostor: int, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """`labelled_pairs`, each kind sampled down to its cap without replacement (seeded, so a
    re-run picks the same pairs), in index order."""
    rng = np.random.default_rng(seed)

    def capped(pairs: list[Pair], cap: int) -> list[Pair]:
        if len(pairs) <= cap:
            return pairs
        chosen = np.sort(rng.choice(len(pairs), cap, replace=False))
        return [pairs[k] for k in chosen]

    genuine, impostor = labelled_pairs(labels)
    return capped(genuine, max_genuine), capped(impostor, max_impostor)


def pair_scores(vectors: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of every unordered pair, split into genuine (same label) and impostor pairs."""
    cosines = vectors @ vectors.T
    genuine, impostor = labelled_pairs(labels)
    return (
        np.asarray([cosines[i, j] for i, j in genuine], dtype=np.float64),
        np.asarray([cosines[i, j] for i, j in impostor], dtype=np.float64),
    )


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


Z_95 = 1.959963984540054
# Fewer false matches than this and a measured FMR is mostly noise: with 0 the 95% interval
# still reaches 3/n (the rule of three).
MIN_SUPPORTING_EVENTS = 3


def wilson_interval(events: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: sound at 0 events, unlike the normal one."""
    if trials == 0:
        return 0.0, 1.0
    share = events / trials
    denominator = 1.0 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    spread = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    low = 0.0 if events == 0 else max(0.0, float(centre - spread / denominator))
    return low, min(1.0, float(centre + spread / denominator))


def error_rates(
    genuine: np.ndarray, impostor: np.ndarray, thresholds: list[float]
) -> list[dict[str, Any]]:
    """FMR (impostors >= t) and FNMR (genuine < t) per threshold: counts, the pairs behind each,
    95% Wilson intervals, and a warning where too few impostor pairs stand behind the FMR."""
    rows = []
    for threshold in thresholds:
        false_matches = int(np.sum(impostor >= threshold))
        false_non_matches = int(np.sum(genuine < threshold))
        fmr_low, fmr_high = wilson_interval(false_matches, len(impostor))
        rows.append(
            {
                "threshold": float(threshold),
                "fmr": false_matches / len(impostor) if len(impostor) else float("nan"),
                "false_matches": float(false_matches),
                "impostor_pairs": len(impostor),
                "fmr_ci95": [fmr_low, fmr_high],
                "fnmr": false_non_matches / len(genuine) if len(genuine) else float("nan"),
                "false_non_matches": float(false_non_matches),
                "genuine_pairs": len(genuine),
                "fnmr_ci95": list(wilson_interval(false_non_matches, len(genuine))),
                "fmr_warning": fmr_warning(false_matches, len(impostor), fmr_high),
            }
        )
    return rows


def fmr_warning(false_matches: int, impostor_pairs: int, upper: float) -> str | None:
    if false_matches >= MIN_SUPPORTING_EVENTS:
        return None
    seen = {0: "no false match", 1: "only 1 false match"}.get(
        false_matches, f"only {false_matches} false matches"
    )
    return (
        f"{seen} among {impostor_pairs} impostor pairs: too few to support the FMR measured, "
        f"which could be as high as {upper:.2g} (95%)"
    )


def grouped_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """Each distinct FMR warning once, with the thresholds it stands for."""
    thresholds: dict[str, list[float]] = {}
    for row in rows:
        if row["fmr_warning"]:
            found = thresholds.setdefault(row["fmr_warning"], [])
            if row["threshold"] not in found:
                found.append(row["threshold"])
    return [
        f"at {', '.join(f'{t:g}' for t in found)}: {text}" for text, found in thresholds.items()
    ]


def percent(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:.2f}%"


def interval(bounds: list[float]) -> str:
    return f"{100 * bounds[0]:.2f}-{100 * bounds[1]:.2f}%"


def impostor_pairs_for(fmr: float) -> int:
    """Impostor pairs needed for MIN_SUPPORTING_EVENTS false matches at rate `fmr`."""
    return int(np.ceil(MIN_SUPPORTING_EVENTS / max(fmr, 1e-12)))


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
