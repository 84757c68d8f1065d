"""A collection keeps the face model it was created with when the server's default model
changes: its searches embed by its own recipe and read its own calibration."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.testing.local_server import start_server, stop_server
from tests.support.clients import rekognition_client
from tests.support.photos import first_photo


def test_collection_of_the_older_model_keeps_working_after_the_default_changes(
    tmp_path: Path, faces_dir: Path
) -> None:
    data = {"FACEBANK_DATA_DIR": str(tmp_path / "data")}
    older = start_server(tmp_path, {**data, "FACEBANK_MODEL_VERSION": "facenet-20170512"})
    try:
        client = rekognition_client(older.url)
        client.create_collection(CollectionId="from-before")
        client.index_faces(
            CollectionId="from-before",
            Image={"Bytes": first_photo(faces_dir, "jerry_seinfeld")},
            ExternalImageId="jerry",
        )
        before = client.search_faces_by_image(
            CollectionId="from-before",
            Image={"Bytes": first_photo(faces_dir, "jerry_seinfeld", "val")},
        )
    finally:
        stop_server(older)
    current = start_server(tmp_path, data)
    try:
        client = rekognition_client(current.url)
        query = {"Bytes": first_photo(faces_dir, "jerry_seinfeld", "val")}
        after = client.search_faces_by_image(CollectionId="from-before", Image=query)
        assert after["FaceModelVersion"] == "1.0"
        assert [m["Face"]["ExternalImageId"] for m in after["FaceMatches"]] == ["jerry"]
        # The same vectors and calibration as the server that stored them.
        assert after["FaceMatches"][0]["Similarity"] == pytest.approx(
            before["FaceMatches"][0]["Similarity"], abs=1e-3
        )
        more = client.index_faces(
            CollectionId="from-before", Image={"Bytes": first_photo(faces_dir, "madonna")}
        )
        assert more["FaceModelVersion"] == "1.0"
        client.create_collection(CollectionId="from-now")
        assert client.describe_collection(CollectionId="from-now")["FaceModelVersion"] == "1.1"
    finally:
        stop_server(current)
