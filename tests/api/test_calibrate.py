"""`facebank calibrate`: refuses a folder too small for the knots, compares before it writes,
writes into the deployment (never the package), and every replica must serve what the
database records."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from ml.decode import decode_image
from ml.evaluation import refit
from ml.pipeline import FacePipeline
from ml.similarity import bundled_calibration_path, load_calibration
from service.app import create_app
from service.deployment_calibration import calibrate, calibration_pipeline
from service.settings import Settings
from service.storage.schema import FaceRow
from service.testing.local_server import LiveServer, ServerStartError, running_server, start_server
from tests.support.clients import rekognition_client
from tests.support.photos import first_photo


class NeverEmbeds:
    """A pipeline a refused folder must never reach."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the folder was refused only after using the pipeline ({name})")


def test_a_folder_of_five_people_is_refused_with_what_it_lacks_before_embedding(
    few_people_folder: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SystemExit) as refused:
        calibrate(settings, few_people_folder, 0.3, 0, yes=True, pipeline=NeverEmbeds())  # type: ignore[arg-type]
    message = str(refused.value)
    assert "cannot support a calibration" in message
    assert "5 more people in the fit part (3 of 8" in message
    assert (
        "more impostor pairs in the fit part" in message and "more photos of new people" in message
    )
    assert "It holds 5 people" in message and "at least 11 people in all" in message
    assert "Nothing was embedded" in message
    assert not (tmp_path / "calibration").exists()


def compare_similarities(url: str, faces_dir: Path) -> np.ndarray:
    """CompareFaces' Similarity for a genuine and an impostor pair."""
    client = rekognition_client(url)
    source = first_photo(faces_dir, "madonna")
    scores = []
    for target in (first_photo(faces_dir, "madonna", "val"), first_photo(faces_dir, "ben_afflek")):
        answer = client.compare_faces(
            SourceImage={"Bytes": source}, TargetImage={"Bytes": target}, SimilarityThreshold=0.0
        )
        scores.append(float(answer["FaceMatches"][0]["Similarity"]))
    return np.array(scores)


def test_a_deployment_calibration_is_served_after_a_restart_and_held_to_by_every_replica(
    few_people_folder: Path,
    pipeline: FacePipeline,
    server: LiveServer,
    faces_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The provisioned photos hold 5 people: enough to exercise the whole path, far too few for
    # a real calibration, so the floors are lowered here (and only here).
    monkeypatch.setattr(refit, "MIN_FIT_PEOPLE", 3)
    monkeypatch.setattr(refit, "MIN_FIT_IMPOSTOR_PAIRS", 20)
    packaged = bundled_calibration_path(pipeline.spec.version).read_bytes()
    data = tmp_path / "deployment"
    settings = Settings(data_dir=data)
    calibrate(settings, few_people_folder, 0.3, 0, yes=False, pipeline=pipeline)
    shown = capsys.readouterr().out
    assert "nothing written" in shown and "old cosine" in shown and "held out" in shown
    assert not settings.deployment_calibration_path().exists()

    calibrate(settings, few_people_folder, 0.3, 0, yes=True, pipeline=pipeline)
    written = settings.deployment_calibration_path()
    assert written == data / "calibration" / f"{pipeline.spec.version}.json"
    new = load_calibration(pipeline.spec.version, written)
    assert new.calibration_version.startswith(f"{pipeline.spec.version}-site-")
    assert bundled_calibration_path(pipeline.spec.version).read_bytes() == packaged

    before = compare_similarities(server.url, faces_dir)
    with running_server(tmp_path, {"FACEBANK_DATA_DIR": str(data)}) as calibrated:
        current = httpx.get(f"{calibrated.url}/v1/models/current").json()
        assert current["CalibrationVersion"] == new.calibration_version
        assert current["CalibrationFile"] == str(written)
        after = compare_similarities(calibrated.url, faces_dir)
        cosines = np.interp(before, pipeline.calibration.similarities, pipeline.calibration.cosines)
        assert after == pytest.approx(new.similarity(cosines), abs=0.05)
        assert np.max(np.abs(after - before)) > 0.5
        assert "calibration " + new.calibration_version in calibrated.log.read_text()

        replica_env = {
            "FACEBANK_DATA_DIR": str(tmp_path / "replica"),
            "FACEBANK_DATABASE_URL": f"sqlite:///{data / 'facebank.db'}",
        }
        with pytest.raises(ServerStartError) as refused:
            start_server(tmp_path, replica_env)
        assert "the deployment records " + new.calibration_version in str(refused.value)

        calibrate(settings, few_people_folder, 0.3, 1, yes=True, pipeline=pipeline)
        assert "in place of " + new.calibration_version in capsys.readouterr().out
        ready = httpx.get(f"{calibrated.url}/readyz")
        assert ready.status_code == 503
        assert new.calibration_version in ready.json()["reason"]


def test_calibrate_embeds_and_finds_faces_as_serve_does(faces_dir: Path, tmp_path: Path) -> None:
    """Settings that change detection (a smaller detection size, MTCNN's own minimum face) are
    served and calibrated alike: the same faces, the same boxes, the same vectors. The server
    is the app `facebank serve` runs, started in this process (its lifespan: models loaded,
    batched and warmed) to save a process start."""
    photo = (faces_dir / "face-recognition-examples/test_images/obama.jpg").read_bytes()
    served = Settings(
        device="cpu", detection_max_side=640, min_face_size=20, data_dir=tmp_path / "served"
    )
    records, stored = asyncio.run(index_as_served(served, photo))
    pipeline = calibration_pipeline(served.model_copy(update={"data_dir": tmp_path / "calib"}))
    image = decode_image(photo, pipeline.limits)
    faces = pipeline.describe(image)
    vectors = pipeline.embed(image, faces)
    assert len(faces) == len(records) >= 1
    for face, vector, record in zip(faces, vectors, records, strict=True):
        box = record["Face"]["BoundingBox"]
        assert face.detection.box.left / image.width == pytest.approx(box["Left"], abs=1e-4)
        assert face.detection.box.top / image.height == pytest.approx(box["Top"], abs=1e-4)
        assert np.allclose(vector, stored[record["Face"]["FaceId"]], atol=1e-4)


async def index_as_served(
    settings: Settings, photo: bytes
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """IndexFaces through the served app; its FaceRecords and the vectors it stored."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        operations = app.state.facebank.running()
        operations.dispatch("CreateCollection", {"CollectionId": "same"})
        request = {"CollectionId": "same", "Image": {"Bytes": photo}}
        records = operations.dispatch("IndexFaces", request)["FaceRecords"]
        with operations.context.read() as session:
            rows = session.execute(select(FaceRow.face_id, FaceRow.embedding)).all()
    return records, {face: np.frombuffer(vector, dtype=np.float32) for face, vector in rows}
