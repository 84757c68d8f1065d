"""`facebank calibrate`: fit the Similarity calibration on a deployment's own people, show it
beside the one in use on held-out people, and (with --yes) make it the deployment's: written
into the data directory (or FACEBANK_CALIBRATION_FILE), never into the package, and recorded in
the database so that every replica must serve it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ml.evaluation.calibration_fit import calibration_json
from ml.evaluation.refit import (
    NotEnoughPhotosError,
    Refit,
    check_folder,
    compare,
    embed_folder,
    knot_table,
    refit,
)
from ml.evaluation.statistics import grouped_warnings, interval, labelled_images, percent
from ml.pipeline import FacePipeline, uncalibrated
from ml.similarity import Calibration, CalibrationError, load_calibration
from service.build import build_pipeline
from service.settings import Settings
from service.storage.calibration_record import record
from service.storage.database import open_database, session_factories


def calibrate(
    settings: Settings,
    folder: Path,
    held_out_share: float,
    seed: int,
    yes: bool,
    pipeline: FacePipeline | None = None,
) -> None:
    in_use = settings.calibration_in_use()
    try:
        old = load_calibration(settings.model_version, in_use)
    except CalibrationError:
        if in_use is not None:
            raise  # a deployment file that does not load is an error, not a blank slate
        old = uncalibrated(settings.model_version)  # a model's first calibration
    try:
        # Counted before the models load and any photo is embedded: a folder too small is
        # refused in a second, not after minutes of embedding.
        check_folder([person for person, _ in labelled_images(folder)], held_out_share, seed)
    except NotEnoughPhotosError as exc:
        sys.exit(f"facebank: {exc}")
    pipeline = pipeline or calibration_pipeline(settings)
    embedded = embed_folder(pipeline, folder)
    try:
        result = refit(embedded, settings.model_version, held_out_share, seed)
    except NotEnoughPhotosError as exc:
        sys.exit(f"facebank: {exc}")
    print(summary(folder, embedded.skipped, result, old, in_use))
    target = settings.deployment_calibration_path()
    if not yes:
        print(
            f"\nnothing written: run again with --yes to make "
            f"{result.calibration.calibration_version} this deployment's calibration ({target})"
        )
        return
    write_atomically(target, calibration_json(result.calibration))
    replaced = record_in_database(settings, result.calibration)
    print(
        f"\nwrote {target}; the database now records {result.calibration.calibration_version}"
        + (f" in place of {replaced}" if replaced else "")
        + ". Restart every replica with this file: until then they report unready. Stored "
        "faces are unchanged; only the Similarity of new answers moves."
    )


def calibration_pipeline(settings: Settings) -> FacePipeline:
    """The pipeline `serve` runs with these settings (minimum face size, detection size, bf16
    embedder, the mesh's check): a calibration must be fitted on the embeddings and detections
    that are served. The calibration itself plays no part in embedding, so a first one may be
    missing."""
    return build_pipeline(settings, settings.calibration_in_use(), allow_uncalibrated=True)


def summary(
    folder: Path,
    skipped: list[tuple[str, str]],
    result: Refit,
    old: Calibration,
    in_use: Path | None,
) -> str:
    genuine, impostor = result.held_out
    lines = [
        f"{folder}: fitted on {len(result.fit_people)} people ({result.fit_pairs[0]} genuine, "
        f"{result.fit_pairs[1]} impostor pairs); reported on {len(result.held_out_people)} "
        f"held-out people ({len(genuine)} genuine, {len(impostor)} impostor pairs)",
        *_skipped_lines(skipped),
        f"old: {old.calibration_version} ({in_use or 'packaged'})",
        f"new: {result.calibration.calibration_version}",
        "",
        "Where each calibration puts the Similarity thresholds (the cosine of two face vectors",
        "at which a Similarity is reached):",
        *knot_table(old, result.calibration),
        "",
        "On the people held out (never used in the fit): FMR (false match rate) is the share of",
        "pairs of two different people at or above the Similarity, FNMR (false non-match rate)",
        "the share of pairs of one person below it; 95% Wilson intervals in brackets.",
        f"{'':>3}  {'Similarity':>10}  {'FMR':>7}  {'95% CI':>15}  {'FNMR':>7}  {'95% CI':>15}",
    ]
    rows = compare(old, result.calibration, result.held_out)
    lines += [_rate_line(row) for row in rows]
    lines += [f"warning: {text}" for text in grouped_warnings(rows)]
    return "\n".join(lines)


SKIPPED_LISTED = 20


def _skipped_lines(skipped: list[tuple[str, str]]) -> list[str]:
    lines = [f"{len(skipped)} photos skipped" + (":" if skipped else "")]
    lines += [f"  {photo}: {why}" for photo, why in skipped[:SKIPPED_LISTED]]
    if len(skipped) > SKIPPED_LISTED:
        lines.append(f"  ... and {len(skipped) - SKIPPED_LISTED} more, not listed")
    return lines


def _rate_line(row: dict[str, Any]) -> str:
    return (
        f"{row['calibration']:>3}  {row['threshold']:>10g}  {percent(row['fmr']):>7}  "
        f"{interval(row['fmr_ci95']):>15}  {percent(row['fnmr']):>7}  "
        f"{interval(row['fnmr_ci95']):>15}"
    )


def write_atomically(path: Path, body: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    with staging.open("w") as out:
        out.write(json.dumps(body, indent=2) + "\n")
        out.flush()
        os.fsync(out.fileno())
    staging.replace(path)


def record_in_database(settings: Settings, calibration: Calibration) -> str | None:
    engine = open_database(settings.database_address(), settings.data_dir)
    try:
        return record(session_factories(engine)[1], calibration)
    finally:
        engine.dispose()
