"""The verification plots, drawn on Similarity scores: their distributions, FMR and FNMR
against the threshold, and the DET curve. Benchmarks save them as PNG; `facebank evaluate`
inlines them in its HTML report as SVG. Needs matplotlib (facebank[evaluate])."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

RATE_FLOOR = 1e-6  # where a rate of 0 is drawn on a log axis
ZERO_LABEL = f"rate 0 (drawn at {RATE_FLOOR:g})"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def draw_distributions(axes: Any, genuine: np.ndarray, impostor: np.ndarray) -> None:
    bins = np.linspace(0, 100, 51)
    axes.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor)})")
    axes.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine)})")
    axes.set(xlabel="Similarity", ylabel="density", title="Score distributions")
    axes.legend()


def draw_error_rates(axes: Any, genuine: np.ndarray, impostor: np.ndarray) -> None:
    thresholds = np.linspace(0, 100, 401)
    fmr = [max(float(np.mean(impostor >= t)), RATE_FLOOR) for t in thresholds]
    fnmr = [max(float(np.mean(genuine < t)), RATE_FLOOR) for t in thresholds]
    axes.semilogy(thresholds, fmr, label="FMR")
    axes.semilogy(thresholds, fnmr, label="FNMR")
    axes.axhline(1.0 / len(impostor), color="grey", linestyle=":", label="one impostor pair")
    axes.axhline(RATE_FLOOR, color="lightgrey", linestyle="--", label=ZERO_LABEL)
    axes.set(xlabel="Similarity threshold", ylabel="rate", title="Error rates by threshold")
    axes.legend()


def draw_det(axes: Any, genuine: np.ndarray, impostor: np.ndarray) -> None:
    """FNMR against FMR as the threshold sweeps, both on log axes."""
    thresholds = np.unique(np.concatenate([genuine, impostor, [0.0, 100.0]]))
    fmr = np.array([max(float(np.mean(impostor >= t)), RATE_FLOOR) for t in thresholds])
    fnmr = np.array([max(float(np.mean(genuine < t)), RATE_FLOOR) for t in thresholds])
    axes.loglog(fmr, fnmr, drawstyle="steps-post")
    axes.axhline(RATE_FLOOR, color="lightgrey", linestyle="--", label=ZERO_LABEL)
    axes.axvline(RATE_FLOOR, color="lightgrey", linestyle="--")
    axes.legend()
    axes.set(xlabel="FMR", ylabel="FNMR", title="DET curve")
    axes.grid(True, which="both", alpha=0.3)


def verification_png(path: Any, genuine: np.ndarray, impostor: np.ndarray) -> None:
    """Distributions and error rates side by side, as a PNG file."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    draw_distributions(left, genuine, impostor)
    draw_error_rates(right, genuine, impostor)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def svg_figures(genuine: np.ndarray, impostor: np.ndarray) -> list[str]:
    """Each plot as an SVG document, for an HTML page that loads nothing from outside."""
    plt = pyplot()
    documents = []
    for draw in (draw_distributions, draw_error_rates, draw_det):
        figure, axes = plt.subplots(figsize=(6, 4))
        draw(axes, genuine, impostor)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
        plt.close(figure)
        documents.append(buffer.getvalue())
    return documents
