"""`facebank evaluate` against a live server on the provisioned photos: its scores agree with
the model's own, an interrupted run leaves no collection behind and resumes, unreadable and
face-less files are listed, and the HTML report loads nothing from outside."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from ml.evaluation.statistics import capped_pairs, error_rates
from ml.pipeline import FacePipeline
from service.client.evaluation_report import EvaluationRequest, evaluate
from service.testing.local_server import ROOT, LiveServer
from tests.support.images import blank_jpeg
from tests.support.photos import DescribedPhoto

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def request_for(folder: Path, url: str, out: Path, **changes: Any) -> EvaluationRequest:
    fields: dict[str, Any] = {
        "folder": folder,
        "endpoint": url,
        "region": "us-east-1",
        "out": out,
        "collection_free": False,
        "thresholds": [85.0],
        "max_genuine": 20_000,
        "max_impostor": 200_000,
        "seed": 0,
        "concurrency": 2,
        "progress": False,
    }
    return EvaluationRequest(**{**fields, **changes})


@pytest.fixture(scope="module")
def evaluated(
    people_folder: Path, server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("evaluation")
    return evaluate(request_for(people_folder, server.url, out)), out


def gathered_searches(out: Path) -> dict[str, dict[str, float]]:
    lines = (out / "gathered.jsonl").read_text().splitlines()[1:]
    records = [json.loads(line) for line in lines]
    return {r["photo"]: r["scores"] for r in records if r["kind"] == "search"}


def evaluation_collections(rekognition: Any) -> list[str]:
    names = rekognition.list_collections()["CollectionIds"]
    return [name for name in names if name.startswith("facebank-evaluate-")]


def test_files_without_one_usable_face_are_listed_by_reason(
    evaluated: tuple[dict[str, Any], Path],
) -> None:
    report, _ = evaluated
    reasons = {item["photo"]: item for item in report["not_found"]}
    assert reasons["madonna/broken.jpg"]["reason"] == "unreadable"
    assert "InvalidImageFormat" in reasons["madonna/broken.jpg"]["detail"]
    assert reasons["elton_john/blank.jpg"]["reason"] == "no face"
    assert report["usable_photos"] == report["photos"] - len(report["not_found"])


def test_scores_agree_with_the_model_on_the_same_pairs(
    evaluated: tuple[dict[str, Any], Path],
    people_folder: Path,
    pipeline: FacePipeline,
    described_celebrities: list[DescribedPhoto],
) -> None:
    """The benchmark's way (embed locally, cosine, the packaged calibration) on the pairs the
    report used gives the same Similarity per pair and rates inside the report's intervals."""
    report, out = evaluated
    unusable = {item["photo"] for item in report["not_found"]}
    photos = sorted(
        str(path.relative_to(people_folder))
        for path in people_folder.glob("*/*")
        if str(path.relative_to(people_folder)) not in unusable
    )
    vectors = {photo.key: photo.vector for photo in described_celebrities}
    assert set(photos) <= set(vectors)  # people_folder holds the five celebrities' photos
    labels = [key.split("/")[0] for key in photos]
    genuine_pairs, impostor_pairs = capped_pairs(labels, 20_000, 200_000)
    searches = gathered_searches(out)

    def local(pairs: list[tuple[int, int]]) -> np.ndarray:
        cosines = np.array([vectors[photos[i]] @ vectors[photos[j]] for i, j in pairs])
        return pipeline.calibration.similarity(cosines)

    def served(pairs: list[tuple[int, int]]) -> np.ndarray:
        return np.array([searches[photos[i]].get(photos[j], 0.0) for i, j in pairs])

    assert report["verification"]["genuine_pairs"] == len(genuine_pairs)
    assert report["verification"]["impostor_pairs"] == len(impostor_pairs)
    difference = np.abs(local(genuine_pairs) - served(genuine_pairs))
    assert np.median(difference) < 0.5
    thresholds = [row["threshold"] for row in report["verification"]["thresholds"]]
    assert thresholds == [50.0, 70.0, 80.0, 85.0, 90.0, 95.0, 99.0]
    mine = error_rates(local(genuine_pairs), local(impostor_pairs), thresholds)
    for theirs, ours in zip(report["verification"]["thresholds"], mine, strict=True):
        low, high = theirs["fnmr_ci95"]
        assert low <= ours["fnmr"] <= high, (theirs, ours)
        low, high = theirs["fmr_ci95"]
        assert low <= ours["fmr"] <= high, (theirs, ours)


def test_identification_reports_rank1_and_open_set(
    evaluated: tuple[dict[str, Any], Path], rekognition: Any
) -> None:
    report, out = evaluated
    identified = report["identification"]
    assert (identified["enrolled_people"], identified["unknown_people"]) == (4, 1)
    for enrolment in ("one_photo_per_person", "users"):
        result = identified[enrolment]
        assert result["closed_set"]["rank1"] > 0.9
        rows = {row["threshold"]: row for row in result["open_set"]}
        assert rows[50.0]["dir"] >= rows[99.0]["dir"]
        assert rows[50.0]["fpir"] >= rows[99.0]["fpir"]
        assert rows[99.0]["unknown_probes"] > 10
    assert (out / "report.html").exists() and (out / "report.json").exists()
    assert evaluation_collections(rekognition) == []


def records(out: Path, kind: str) -> list[dict[str, Any]]:
    path = out / "gathered.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[1:]
    return [
        r for r in (json.loads(line) for line in lines if line.endswith("}")) if r["kind"] == kind
    ]


def interrupt_when(command: list[str], out: Path, kind: str, count: int) -> str:
    """Run `command`, send it Ctrl-C once `count` records of `kind` are gathered; its stderr."""
    run = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(records(out, kind)) < count:
        assert run.poll() is None, run.stderr.read() if run.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, errors = run.communicate(timeout=120)
    assert run.returncode != 0, errors
    assert "interrupted" in errors and "resumes" in errors
    return errors


def evaluate_command(folder: Path, url: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "service.cli", "evaluate", str(folder), "--endpoint", url,
        "--out", str(out), "--threshold", "85", "--concurrency", "1", "--quiet", *extra,
    ]  # fmt: skip


def test_ctrl_c_deletes_the_temporary_collection_and_a_finished_run_is_reused(
    few_people_folder: Path, server: LiveServer, rekognition: Any, tmp_path: Path
) -> None:
    command = evaluate_command(few_people_folder, server.url, tmp_path)
    interrupt_when(command, tmp_path, "status", 3)
    assert evaluation_collections(rekognition) == []
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert "Similarity" in finished.stdout and "FMR" in finished.stdout
    first = json.loads((tmp_path / "report.json").read_text())
    assert first["scores_reused"] == 0
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "report.json").read_text())
    assert second["scores_reused"] >= second["usable_photos"]
    assert second["verification"] == first["verification"]
    assert second["identification"] == first["identification"]
    assert evaluation_collections(rekognition) == []


def test_collection_free_comparisons_resume_and_agree_with_searches(
    people_folder: Path,
    server: LiveServer,
    tmp_path: Path,
    evaluated: tuple[dict[str, Any], Path],
) -> None:
    small = tmp_path / "small"
    for person in ("ben_afflek", "madonna"):
        (small / person).mkdir(parents=True)
        for photo in sorted((people_folder / person).glob("train-*"))[:3]:
            shutil.copyfile(photo, small / person / photo.name)
    out = tmp_path / "out"
    command = evaluate_command(small, server.url, out, "--collection-free")
    interrupt_when(command, out, "pair", 3)
    compared_before = len(records(out, "pair"))
    assert compared_before >= 3
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["scores_reused"] == compared_before
    assert report["identification"]["skipped"].startswith("identification needs a collection")
    verification = report["verification"]
    usable = report["usable_photos"]
    assert usable >= 4  # photos with two faces are left out
    pairs = usable * (usable - 1) // 2
    assert verification["genuine_pairs"] + verification["impostor_pairs"] == pairs
    assert compared_before < pairs
    compared = {(r["a"], r["b"]): r["similarity"] for r in records(out, "pair")}
    assert len(compared) == pairs
    searches = gathered_searches(evaluated[1])
    for (a, b), similarity in compared.items():
        assert similarity == pytest.approx(searches[a].get(b, 0.0), abs=1.0), (a, b)


def test_the_html_report_shows_its_plots_and_loads_nothing(
    evaluated: tuple[dict[str, Any], Path], browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    _, out = evaluated
    browser.get((out / "report.html").resolve().as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure svg")) == 3
    rows = browser.find_elements(By.CSS_SELECTOR, "table tr")
    assert any("85" in row.text for row in rows)
    assert "broken.jpg" in browser.find_element(By.TAG_NAME, "body").text
    loaded = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert loaded == 0


def test_evaluate_refuses_a_folder_of_one_person(tmp_path: Path, server: LiveServer) -> None:
    (tmp_path / "only" / "alice").mkdir(parents=True)
    (tmp_path / "only" / "alice" / "a.jpg").write_bytes(blank_jpeg())
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "evaluate", str(tmp_path / "only"),
         "--endpoint", server.url, "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "at least two people" in done.stderr
