"""The face mesh on real photos: it confirms faces (a false face on a one-face photo goes, real
faces stay), and its 30 landmarks agree with MTCNN's five and mirror with the photo."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.decode import DecodedImage, decode_image
from ml.detector import MtcnnDetector
from ml.evaluation.statistics import labelled_images
from ml.mtcnn import MTCNN_MIN_FACE_SIZE
from ml.networks.face_mesh import mirrored_type
from ml.pipeline import FacePipeline, MeshCheck
from tests.support.photos import GROUP_PEOPLE, group_photo

FIVE = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


@pytest.fixture(scope="module")
def meshed(pipeline: FacePipeline) -> FacePipeline:
    return replace(pipeline, mesh_check=MeshCheck())


def test_a_false_face_on_a_one_face_photo_is_dropped(
    pipeline: FacePipeline, meshed: FacePipeline, faces_dir: Path
) -> None:
    # At MTCNN's own 20-px minimum (FACEBANK_MIN_FACE_SIZE=20): Rekognition's minimum face in
    # this 910x1137 photo, 24 px, already leaves the 55-px false face out.
    small_faces = MtcnnDetector(torch.device("cpu"), reference_min_face=MTCNN_MIN_FACE_SIZE)
    photo = (faces_dir / "face-recognition-examples/test_images/obama.jpg").read_bytes()
    unchecked = replace(pipeline, detector=small_faces)
    assert len(unchecked.describe(decode_image(photo))) == 2  # MTCNN alone: a false face too
    confirmed = replace(meshed, detector=small_faces).describe(decode_image(photo))
    assert len(confirmed) == 1 and confirmed[0].mesh is not None
    assert len(pipeline.describe(decode_image(photo))) == 1


def test_every_face_of_the_group_photo_stays(meshed: FacePipeline, faces_dir: Path) -> None:
    assert len(meshed.describe(decode_image(group_photo(faces_dir)))) == len(GROUP_PEOPLE)


def test_landmarks_agree_with_mtcnn_and_mirror_with_the_photo(
    meshed: FacePipeline, faces_dir: Path
) -> None:
    to_five, mirrored = [], []
    for _, path in labelled_images(faces_dir / "five-celebrities")[::10]:
        pixels = decode_image(path.read_bytes()).pixels
        face = meshed.describe(decode_image(path.read_bytes()))[0]
        assert face.mesh is not None
        marks = {name: np.array([x, y]) for name, x, y in face.mesh.landmarks()}
        eyes = float(np.linalg.norm(face.detection.landmarks[1] - face.detection.landmarks[0]))
        for index, name in enumerate(FIVE):
            distance = np.linalg.norm(marks[name] - face.detection.landmarks[index])
            to_five.append(float(distance) / eyes)
        flipped = meshed.describe(_image(np.ascontiguousarray(pixels[:, ::-1])))[0]
        assert flipped.mesh is not None
        width = pixels.shape[1]
        for name, x, y in flipped.mesh.landmarks():
            swapped = mirrored_type(name)
            distance = np.linalg.norm(np.array([width - x, y]) - marks[swapped])
            mirrored.append(float(distance) / eyes)
    # Measured on all 118 photos (benchmarks.mesh_check): medians 0.049 and 0.029.
    assert np.median(to_five) < 0.1
    assert np.median(mirrored) < 0.06


def _image(pixels: np.ndarray) -> DecodedImage:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return decode_image(buffer.getvalue())
