"""The Similarity a live server reports is the bundled calibration applied to the cosine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.decode import decode_image
from ml.pipeline import FacePipeline
from ml.similarity import bundled_calibration_path, calibration_from_json
from tests.support.photos import first_photo, selfie_photo


def test_compare_faces_similarity_follows_the_calibration_file(
    rekognition: Any, pipeline: FacePipeline, faces_dir: Path
) -> None:
    calibration = calibration_from_json(
        json.loads(bundled_calibration_path(pipeline.spec.version).read_text())
    )
    source = first_photo(faces_dir, "jerry_seinfeld")
    for target in (
        first_photo(faces_dir, "jerry_seinfeld", "val"),
        first_photo(faces_dir, "madonna", "val"),
    ):
        vectors = []
        for data in (source, target):
            image = decode_image(data)
            vectors.append(pipeline.embed(image, pipeline.describe(image)[:1])[0])
        expected = float(calibration.similarity(float(np.dot(*vectors))))
        response = rekognition.compare_faces(
            SourceImage={"Bytes": source}, TargetImage={"Bytes": target}, SimilarityThreshold=0
        )
        assert response["FaceMatches"][0]["Similarity"] == pytest.approx(expected, abs=0.05)


def test_face_cut_by_the_frame_is_the_one_searched_and_stored_with_its_box_past_it(
    rekognition: Any, faces_dir: Path
) -> None:
    selfie, _ = selfie_photo(faces_dir, "jerry_seinfeld", 0.4)
    compared = rekognition.compare_faces(
        SourceImage={"Bytes": selfie},
        TargetImage={"Bytes": first_photo(faces_dir, "jerry_seinfeld", "val")},
    )
    assert compared["SourceImageFace"]["BoundingBox"]["Left"] < 0
    assert compared["FaceMatches"][0]["Similarity"] >= 80
    rekognition.create_collection(CollectionId="cut-by-the-frame")
    try:
        indexed = rekognition.index_faces(
            CollectionId="cut-by-the-frame", Image={"Bytes": selfie}, MaxFaces=1
        )
        stored = rekognition.list_faces(CollectionId="cut-by-the-frame")["Faces"]
        assert [face["FaceId"] for face in stored] == [indexed["FaceRecords"][0]["Face"]["FaceId"]]
        assert stored[0]["BoundingBox"]["Left"] < 0
    finally:
        rekognition.delete_collection(CollectionId="cut-by-the-frame")
