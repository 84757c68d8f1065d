"""Faces that the frame cuts off are found whole, as Rekognition finds them, and embedded without
being stretched."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ml.decode import decode_image
from ml.pipeline import FacePipeline
from ml.tracking import iou
from ml.types import Box
from tests.support.photos import first_photo, selfie_photo


def _largest(pipeline: FacePipeline, data: bytes) -> Box:
    return pipeline.describe(decode_image(data))[0].detection.box


@pytest.mark.parametrize(("person", "past_frame"), [("jerry_seinfeld", 0.5), ("ben_afflek", 0.4)])
def test_face_cut_by_the_frame_is_the_largest_and_its_box_reaches_past_it(
    pipeline: FacePipeline, faces_dir: Path, person: str, past_frame: float
) -> None:
    uncut, _ = selfie_photo(faces_dir, person, 0.0)
    whole = _largest(pipeline, uncut)
    cut, shift = selfie_photo(faces_dir, person, past_frame)
    truth = replace(whole, left=whole.left - shift, right=whole.right - shift)
    found = _largest(pipeline, cut)
    assert truth.left < 0 and found.left < 0
    # Stock MTCNN misses both faces (IoU 0 with the whole face), or finds a third of one.
    assert iou(found, truth) >= 0.7


def test_cut_face_still_matches_its_person(pipeline: FacePipeline, faces_dir: Path) -> None:
    cut, _ = selfie_photo(faces_dir, "jerry_seinfeld", 0.4)
    image = decode_image(cut)
    faces = pipeline.describe(image)
    reference = decode_image(first_photo(faces_dir, "jerry_seinfeld", split="val"))
    vectors = pipeline.embed(image, faces)
    expected = pipeline.embed(reference, pipeline.describe(reference)[:1])
    similarity = pipeline.similarity(vectors, expected)[:, 0]
    assert faces[0].detection.box.left < 0
    assert similarity[0] >= 80 and int(np.argmax(similarity)) == 0
