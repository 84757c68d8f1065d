"""Refitting the Similarity calibration on a deployment's own people (`facebank calibrate`):
embed one face per photo, split the people into a fit part and a held-out part, fit the knots
with the project's own rule on the fit part, and compare the old and the new calibration on the
held-out part. Refuses a folder too small to place the knots at 80 and 99."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.decode import ImageDecodeError, decode_image
from ml.evaluation.calibration_fit import FIT_FMR_AT_80, fit_knots
from ml.evaluation.statistics import (
    error_rates,
    impostor_pairs_for,
    labelled_images,
    pair_scores,
)
from ml.pipeline import FacePipeline
from ml.similarity import Calibration

COMPARED_THRESHOLDS = [50.0, 80.0, 90.0, 99.0]
# The knot at 99 sits just above the highest impostor score: drawn from this many people at
# least, it is not one odd pair of look-alikes.
MIN_FIT_PEOPLE = 8
MIN_FIT_IMPOSTOR_PAIRS = impostor_pairs_for(FIT_FMR_AT_80)
MIN_HELD_OUT_PEOPLE = 2


class NotEnoughPhotosError(ValueError):
    """The folder cannot support the calibration's knots; the message says what is missing."""


@dataclass(frozen=True)
class Embedded:
    labels: list[str]
    vectors: np.ndarray
    skipped: list[tuple[str, str]]  # (photo, why): unreadable, no face, several faces


@dataclass(frozen=True)
class Refit:
    calibration: Calibration
    fit_people: list[str]
    held_out_people: list[str]
    fit_pairs: tuple[int, int]  # (genuine, impostor)
    held_out: tuple[np.ndarray, np.ndarray]  # (genuine, impostor) cosines


def embed_folder(pipeline: FacePipeline, folder: Path, progress: bool = True) -> Embedded:
    """One vector per photo with exactly one face; the others are listed with the reason."""
    from tqdm import tqdm

    labels, vectors, skipped = [], [], []
    photos = labelled_images(folder)
    for person, path in tqdm(photos, desc="embed", unit="photo", disable=not progress):
        name = str(path.relative_to(folder))
        try:
            image = decode_image(path.read_bytes(), pipeline.limits)
        except (ImageDecodeError, OSError) as exc:
            skipped.append((name, f"unreadable: {exc}"))
            continue
        faces = pipeline.describe(image)
        if len(faces) != 1:
            skipped.append((name, "no face" if not faces else f"{len(faces)} faces"))
            continue
        labels.append(person)
        vectors.append(pipeline.embed(image, faces)[0])
    stacked = np.stack(vectors) if vectors else np.zeros((0, pipeline.spec.embedding_dim))
    return Embedded(labels, stacked, skipped)


def split_people(labels: list[str], held_out_share: float, seed: int) -> set[str]:
    """The people held out: a seeded share of them, never the ones the fit needs most."""
    people = sorted(set(labels))
    order = [people[k] for k in np.random.default_rng(seed).permutation(len(people))]
    count = max(MIN_HELD_OUT_PEOPLE, round(held_out_share * len(people)))
    return set(order[:count])


def people_needed(held_out_share: float) -> int:
    """The fewest people a folder can hold for MIN_FIT_PEOPLE to be fitted on after the
    held-out share (at least MIN_HELD_OUT_PEOPLE) is set aside."""
    people = MIN_FIT_PEOPLE + MIN_HELD_OUT_PEOPLE
    while people - max(MIN_HELD_OUT_PEOPLE, round(held_out_share * people)) < MIN_FIT_PEOPLE:
        people += 1
    return people


def check_folder(labels: list[str], held_out_share: float, seed: int) -> None:
    """Refuse, before any photo is embedded, a folder too small even if every photo held one
    usable face: the same support check as after embedding, on the photos as listed."""
    held_out_people = split_people(labels, held_out_share, seed)
    fit_labels = [label for label in labels if label not in held_out_people]
    held_labels = [label for label in labels if label in held_out_people]
    try:
        check_support(fit_labels, pair_counts(fit_labels)[1], pair_counts(held_labels))
    except NotEnoughPhotosError as exc:
        people = len(set(labels))
        raise NotEnoughPhotosError(
            f"{exc}. It holds {people} people and {len(labels)} photos; it needs at least "
            f"{people_needed(held_out_share)} people in all ({MIN_FIT_PEOPLE} fitted, the rest "
            f"held out at --held-out-share {held_out_share:g}, at least {MIN_HELD_OUT_PEOPLE}), "
            "several photos each, and one face per photo. Nothing was embedded."
        ) from None


def refit(
    embedded: Embedded, model_version: str, held_out_share: float = 0.3, seed: int = 0
) -> Refit:
    held_out_people = split_people(embedded.labels, held_out_share, seed)
    held = np.array([label in held_out_people for label in embedded.labels], dtype=bool)
    fit_labels = [label for label, h in zip(embedded.labels, held, strict=True) if not h]
    held_labels = [label for label, h in zip(embedded.labels, held, strict=True) if h]
    fit_genuine, fit_impostor = pair_scores(embedded.vectors[~held], fit_labels)
    held_scores = pair_scores(embedded.vectors[held], held_labels)
    check_support(fit_labels, len(fit_impostor), (len(held_scores[0]), len(held_scores[1])))
    knots = fit_knots(fit_genuine, fit_impostor)
    calibration = Calibration(
        model_version,
        new_version_id(model_version),
        tuple(k[0] for k in knots),
        tuple(k[1] for k in knots),
    )
    return Refit(
        calibration,
        sorted(set(fit_labels)),
        sorted(held_out_people),
        (len(fit_genuine), len(fit_impostor)),
        held_scores,
    )


def pair_counts(labels: list[str]) -> tuple[int, int]:
    """(genuine, impostor) pairs among photos so labelled, counted without forming them."""
    per_person = Counter(labels).values()
    genuine = sum(n * (n - 1) // 2 for n in per_person)
    return genuine, len(labels) * (len(labels) - 1) // 2 - genuine


def check_support(fit_labels: list[str], fit_impostors: int, held_out: tuple[int, int]) -> None:
    people = len(set(fit_labels))
    photos = len(fit_labels)
    missing = []
    if people < MIN_FIT_PEOPLE:
        missing.append(
            f"{MIN_FIT_PEOPLE - people} more people in the fit part ({people} of "
            f"{MIN_FIT_PEOPLE}; the knot at 99 sits above the highest impostor pair)"
        )
    if fit_impostors < MIN_FIT_IMPOSTOR_PAIRS:
        # A photo of someone new pairs as an impostor with every fit photo already there.
        more_photos = int(np.ceil((MIN_FIT_IMPOSTOR_PAIRS - fit_impostors) / max(photos, 1)))
        missing.append(
            f"{MIN_FIT_IMPOSTOR_PAIRS - fit_impostors} more impostor pairs in the fit part "
            f"({fit_impostors} of {MIN_FIT_IMPOSTOR_PAIRS} for the knot at 80, FMR "
            f"{FIT_FMR_AT_80:g}): about {more_photos} more photos of new people"
        )
    if held_out[0] == 0 or held_out[1] == 0:
        missing.append(
            "held-out people with two photos or more each, to report on (at least "
            f"{MIN_HELD_OUT_PEOPLE})"
        )
    if missing:
        raise NotEnoughPhotosError(
            "the folder cannot support a calibration: it needs " + "; ".join(missing)
        )


def new_version_id(model_version: str, kind: str = "site") -> str:
    """Every fitted calibration gets its own id: the model, its kind, the fitting time and a
    random suffix (two fits within a second differ too)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{model_version}-{kind}-{stamp}-{secrets.token_hex(2)}"


def compare(
    old: Calibration, new: Calibration, held_out: tuple[np.ndarray, np.ndarray]
) -> list[dict[str, Any]]:
    """FMR and FNMR at COMPARED_THRESHOLDS on the held-out pairs, under each calibration."""
    genuine, impostor = held_out
    rows = []
    for name, calibration in (("old", old), ("new", new)):
        rates = error_rates(
            calibration.similarity(genuine), calibration.similarity(impostor), COMPARED_THRESHOLDS
        )
        for row in rates:
            rows.append({"calibration": name, **row})
    return rows


def knot_table(old: Calibration, new: Calibration) -> list[str]:
    """The two calibrations' knots side by side: the cosine each Similarity sits at."""
    lines = [f"{'Similarity':>10}  {'old cosine':>10}  {'new cosine':>10}"]
    for similarity in sorted(set(old.similarities) | set(new.similarities)):
        lines.append(
            f"{similarity:>10g}  {_cosine_at(old, similarity):>10.4f}  "
            f"{_cosine_at(new, similarity):>10.4f}"
        )
    return lines


def _cosine_at(calibration: Calibration, similarity: float) -> float:
    return float(np.interp(similarity, calibration.similarities, calibration.cosines))
