"""Which photos of the project's labelled sets the calibration is fitted on and which are held
out: by person, so that no person is in both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.evaluation.statistics import labelled_images

# (folder, which face is the labelled person): LFW crops centre their person.
SETS = (
    ("five-celebrities", "largest"),
    ("lfw-george-w-bush", "centre"),
    ("facenet-pytorch/test_images", "largest"),
    ("face-recognition-examples/train", "largest"),
)
HELD_OUT_BY_DEFAULT = "five-celebrities"


@dataclass(frozen=True)
class Item:
    label: str
    path: Path
    fit: bool  # in the split the calibration is fitted on
    subject: str


def collect(
    faces_root: Path, extra: list[Path], extra_subject: str, fit_on_celebrities: bool
) -> list[Item]:
    """Every labelled photo; extra folders join the default fit split. Their people are named
    after the folder too, so a person called like one of the project's (in the other split)
    stays a separate identity, in one split only."""
    items = []
    for name, subject in SETS:
        fit = (name == HELD_OUT_BY_DEFAULT) == fit_on_celebrities
        items += [
            Item(label, path, fit, subject) for label, path in labelled_images(faces_root / name)
        ]
    for folder in extra:
        items += [
            Item(f"{folder.name}/{label}", path, not fit_on_celebrities, extra_subject)
            for label, path in labelled_images(folder)
        ]
    return items
