"""Markdown tables and the PNG plot for the verification benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml.evaluation.plots import verification_png
from ml.similarity import Calibration


def _pct(value: float) -> str:
    return f"{value:.2e}" if 0 < value < 1e-2 else f"{value:.4f}"


def _table(name: str, table: dict[str, Any]) -> list[str]:
    lines = [
        f"### {name}: {table['genuine_pairs']} genuine, {table['impostor_pairs']} impostor pairs",
        "",
        f"ROC AUC {table['auc']:.4f} (95% CI {table['auc_ci95'][0]:.4f}-"
        f"{table['auc_ci95'][1]:.4f}); FAR below {table['min_claimable_far']:.1e} cannot be "
        "claimed from this many impostor pairs.",
        "",
        "| FAR | TAR | 95% CI | claimable |",
        "| --- | --- | --- | --- |",
    ]
    for row in table["tar_at_far"]:
        lines.append(
            f"| {row['far']:.0e} | {row['tar']:.3f} | {row['ci95'][0]:.3f}-"
            f"{row['ci95'][1]:.3f} | {'yes' if row['claimable'] else 'no'} |"
        )
    lines += [
        "",
        "| Similarity >= | FMR | false matches | FNMR | false non-matches |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in table["thresholds"]:
        lines.append(
            f"| {row['threshold']:.0f} | {_pct(row['fmr'])} | "
            f"{int(row['false_matches'])} | {row['fnmr']:.4f} | "
            f"{int(row['false_non_matches'])} |"
        )
    return [*lines, ""]


def markdown(report: dict[str, Any]) -> str:
    ids = report["identities"]
    lines = [
        f"## Verification, {report['model_version']}",
        "",
        f"{report['photos']} photos ({report['photos_without_face']} without a detected face). "
        + (
            f"Calibration fitted on {len(ids['fit'])} people ({', '.join(ids['fit'])}); tables "
            f"on {len(ids['held_out'])} held-out people unless marked fit."
            if report["fit"] is not None
            else f"The calibration in use, on {len(ids['held_out'])} held-out people (the fit "
            "split had no pairs to fit on)."
        ),
        "",
        *_table("Held-out people", report["held_out"]),
        *(_table("Fit people (for reference)", report["fit"]) if report["fit"] else []),
        "### QualityFilter on the held-out photos",
        "",
        "| level | photos rejected | reasons | FNMR at 80 | FMR at 80 | genuine pairs left |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["quality_filter_held_out"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["reasons"].items())) or "-"
        lines.append(
            f"| {row['level']} | {row['rejected_photos']} | {reasons} | "
            f"{row['fnmr_at_80']:.4f} | {_pct(row['fmr_at_80'])} | "
            f"{row['genuine_pairs']} |"
        )
    if "lfw_pairs" in report:
        lines += ["", *_table("LFW pairs.txt protocol", report["lfw_pairs"])]
    knots = report["calibration"]["knots"]
    lines += [
        "",
        "Calibration knots (cosine -> Similarity): "
        + ", ".join(f"{c:.3f} -> {s:g}" for c, s in knots),
        "",
    ]
    return "\n".join(lines)


def plot(path: Path, calibration: Calibration, scores: tuple[np.ndarray, np.ndarray]) -> None:
    """The held-out scores on the calibration's Similarity scale."""
    genuine, impostor = (calibration.similarity(s) for s in scores)
    path.parent.mkdir(exist_ok=True)
    verification_png(path, genuine, impostor)
