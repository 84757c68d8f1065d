"""Identification from rankings: who a probe photo's best matches are among the enrolled
people. Closed set (rank-1, rank-5) over probes of enrolled people; open set over those and
probes of people never enrolled, at each Similarity threshold."""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.evaluation.statistics import wilson_interval

# (enrolled person, Similarity), best first
Ranking = list[tuple[str, float]]


def closed_set(rankings: list[tuple[str, Ranking]]) -> dict[str, float]:
    """(true person, ranking) per probe of an enrolled person."""
    if not rankings:
        return {}
    truth_scores = [dict(ranking).get(person, 0.0) for person, ranking in rankings]
    impostor_scores = [
        max([score for other, score in ranking if other != person], default=0.0)
        for person, ranking in rankings
    ]
    return {
        "probes": len(rankings),
        "rank1": float(np.mean([bool(r) and r[0][0] == person for person, r in rankings])),
        "rank5": float(np.mean([person in [p for p, _ in r[:5]] for person, r in rankings])),
        "true_match_similarity_mean": float(np.mean(truth_scores)),
        "best_impostor_similarity_mean": float(np.mean(impostor_scores)),
    }


def open_set(
    known: list[tuple[str, Ranking]], unknown: list[Ranking], thresholds: list[float]
) -> list[dict[str, Any]]:
    """Per threshold: the detection and identification rate (probes of enrolled people whose
    best match is right and reaches the threshold) and the false positive identification rate
    (probes of people never enrolled whose best match reaches it), with 95% intervals."""
    right = np.array([bool(r) and r[0][0] == person for person, r in known], dtype=bool)
    known_top = np.array([r[0][1] if r else 0.0 for _, r in known])
    unknown_top = np.array([r[0][1] if r else 0.0 for r in unknown])
    rows = []
    for threshold in thresholds:
        identified = int(np.sum(right & (known_top >= threshold)))
        false_alarms = int(np.sum(unknown_top >= threshold))
        rows.append(
            {
                "threshold": float(threshold),
                "dir": identified / len(known) if known else float("nan"),
                "dir_ci95": list(wilson_interval(identified, len(known))),
                "known_probes": len(known),
                "fpir": false_alarms / len(unknown) if unknown else float("nan"),
                "fpir_ci95": list(wilson_interval(false_alarms, len(unknown))),
                "unknown_probes": len(unknown),
            }
        )
    return rows
