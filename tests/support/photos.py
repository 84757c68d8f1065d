"""The real photos the tests use: provisioned by `facebank photos fetch` (see ml/photo_sets.py)
into a cache outside the repository, or read from FACEBANK_TEST_FACES."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.decode import DecodedImage
from ml.types import FaceDescription

GROUP_PEOPLE = ("ben_afflek", "jerry_seinfeld", "madonna", "mindy_kaling")
GROUP_SIZE = (1280, 720)


@dataclass(frozen=True)
class DescribedPhoto:
    """One five-celebrities photo as the pipeline saw it: its person, file, image and largest
    face (with the vector the default model gives that face)."""

    person: str
    path: Path
    image: DecodedImage
    faces: list[FaceDescription]
    vector: np.ndarray

    @property
    def key(self) -> str:
        """The photo's name in people_folder."""
        return people_folder_key(self.path)


def people_folder_key(photo: Path) -> str:
    """Where people_folder holds a five-celebrities photo (<split>/<person>/<file>): at
    <person>/<split>-<file>, so each person's photos of both splits lie in one folder."""
    split, person = photo.parent.parent.name, photo.parent.name
    return f"{person}/{split}-{photo.name}"


def first_photo(faces_dir: Path, person: str, split: str = "train") -> bytes:
    folder = faces_dir / "five-celebrities" / split / person
    return sorted(folder.iterdir())[0].read_bytes()


def group_photo(faces_dir: Path) -> bytes:
    """A 1280x720 JPEG with one face of each of GROUP_PEOPLE, side by side and of falling size
    (so "largest first" has one right answer): the ben_afflek face is the largest."""
    canvas = Image.new("RGB", GROUP_SIZE, (128, 128, 128))
    slot = GROUP_SIZE[0] // len(GROUP_PEOPLE)
    for position, person in enumerate(GROUP_PEOPLE):
        photo = Image.open(io.BytesIO(first_photo(faces_dir, person))).convert("RGB")
        height = 420 - 60 * position
        width = min(slot - 10, round(photo.width * height / photo.height))
        photo = photo.resize((width, height))
        canvas.paste(photo, (position * slot + 5, (GROUP_SIZE[1] - height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def selfie_photo(faces_dir: Path, person: str, past_frame: float) -> tuple[bytes, int]:
    """A 1280x720 JPEG like a selfie: `person`'s photo 640 px tall with `past_frame` of its width
    cut off by the left edge, and two other people's photos, smaller, to the right. Also returns
    how many pixels of the photo lie past the frame (0 gives the same scene uncut)."""
    canvas = Image.new("RGB", GROUP_SIZE, (128, 128, 128))
    photo = _scaled_photo(faces_dir, person, 640)
    shift = round(past_frame * photo.width)
    canvas.paste(photo, (-shift, 40))
    others = [name for name in GROUP_PEOPLE if name != person][:2]
    for position, other in enumerate(others):
        canvas.paste(_scaled_photo(faces_dir, other, 260), (660 + 300 * position, 200))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue(), shift


def _scaled_photo(faces_dir: Path, person: str, height: int) -> Image.Image:
    photo = Image.open(io.BytesIO(first_photo(faces_dir, person))).convert("RGB")
    return photo.resize((round(photo.width * height / photo.height), height))


def rgba_png(faces_dir: Path) -> bytes:
    return (faces_dir / "face-recognition-examples/test_images/32bit.png").read_bytes()


def all_photos(faces_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in faces_dir.rglob("*")
        if path.suffix.lower() in (".jpg", ".jpeg", ".png") and "downloads" not in path.parts
    )
