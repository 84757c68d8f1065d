"""Fixtures shared by every test tier: real photos, real weights, live servers, real clients."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ml.decode import decode_image
from ml.evaluation.statistics import labelled_images
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.pipeline import FacePipeline, load_pipeline, resolve_device
from ml.provision.photos import PhotosError, default_photos_dir, verify_photos
from service.testing.local_server import (
    LiveServer,
    free_port,
    running_server,
    start_moto,
)
from tests.support.clients import ACCESS_KEY, SECRET_KEY, rekognition_client
from tests.support.images import blank_jpeg
from tests.support.photos import DescribedPhoto, people_folder_key

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# The servers the tests start serve the fp32 embedder and one detector pass without timing the
# alternatives first (seconds a start on a CPU without native bf16); the session's `server`
# times them, as a deployment does, and tests/unit/test_cpu_*.py check the choices.
os.environ.setdefault("FACEBANK_EMBED_CPU_PRECISION", "fp32")
os.environ.setdefault("FACEBANK_DETECT_WORKERS", "1")  # and the detector's split, likewise
# The image tier needs a built image: `make test-image` builds one and names it here.
collect_ignore = [] if os.environ.get("FACEBANK_TEST_IMAGE") else ["image"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The CUDA tier skips where torch sees no CUDA device (CI never has one)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The provisioned photos (`facebank photos fetch`, run by `make test`), checked against
    their manifest; FACEBANK_TEST_FACES points at another folder of the same layout."""
    given = os.environ.get("FACEBANK_TEST_FACES")
    if given:
        return Path(given)
    photos = Path(os.environ.get("FACEBANK_PHOTOS_DIR") or default_photos_dir())
    try:
        verify_photos(photos)
    except PhotosError as exc:
        pytest.fail(str(exc))
    return photos


@pytest.fixture(scope="session")
def people_folder(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five celebrities' photos as <person>/<photo>, plus a file that is no image and one
    with no face."""
    folder = tmp_path_factory.mktemp("people")
    for photo in sorted((faces_dir / "five-celebrities").glob("*/*/*")):
        copy = folder / people_folder_key(photo)
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(photo, copy)
    (folder / "madonna" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (folder / "elton_john" / "blank.jpg").write_bytes(blank_jpeg())
    return folder


@pytest.fixture(scope="session")
def few_people_folder(people_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four photos of each of the five people: a folder the slower runs get through quickly."""
    folder = tmp_path_factory.mktemp("few-people")
    for person in sorted(path.name for path in people_folder.iterdir()):
        (folder / person).mkdir()
        for photo in sorted((people_folder / person).glob("*-*.jpg"))[:4]:
            shutil.copyfile(photo, folder / person / photo.name)
    return folder


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return Path(os.environ.get("FACEBANK_MODELS_DIR", default_models_dir()))


@pytest.fixture(scope="session")
def pipeline(models_dir: Path) -> FacePipeline:
    return load_pipeline(models_dir, DEFAULT_MODEL_VERSION, resolve_device("cpu"))


@pytest.fixture(scope="session")
def described_celebrities(pipeline: FacePipeline, faces_dir: Path) -> list[DescribedPhoto]:
    """Every five-celebrities photo detected and embedded once for the session: the model tests
    and the evaluation's check read the same faces, and none pays for them twice."""
    described = []
    for person, path in labelled_images(faces_dir / "five-celebrities"):
        image = decode_image(path.read_bytes())
        faces = pipeline.describe(image)[:1]
        assert faces, f"no face in {path}"
        described.append(
            DescribedPhoto(person, path, image, faces, pipeline.embed(image, faces)[0])
        )
    return described


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    measured = {"FACEBANK_EMBED_CPU_PRECISION": "auto", "FACEBANK_DETECT_WORKERS": "0"}
    with running_server(tmp_path_factory.mktemp("open-server"), measured) as live:
        yield live


@pytest.fixture(scope="session")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    keys = f"{ACCESS_KEY}:{SECRET_KEY},OTHERKEY:other-secret-7Hq2xPw4"
    with running_server(
        tmp_path_factory.mktemp("signed-server"), {"FACEBANK_ACCESS_KEYS": keys}
    ) as live:
        yield live


@pytest.fixture(scope="session")
def rekognition(server: LiveServer) -> Any:
    return rekognition_client(server.url)


@pytest.fixture(scope="session")
def policy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with a keys file of policies (tests/support/keys.py's POLICY_KEYS)."""
    from tests.support.keys import POLICY_KEYS, write_keys

    tmp = tmp_path_factory.mktemp("policy-server")
    keys = tmp / "keys.json"
    write_keys(keys, POLICY_KEYS)
    with running_server(tmp, {"FACEBANK_ACCESS_KEYS_FILE": str(keys)}) as live:
        yield live


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server (S3, SNS, SQS) for the whole run."""
    moto, url = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield url
    moto.terminate()
    moto.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_bindir() -> Path:
    from tests.support.postgres import INSTALL_HINT, find_bindir

    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)  # CI must run the PostgreSQL tests, never skip them
        pytest.skip(INSTALL_HINT)
    return bindir


@pytest.fixture(scope="session")
def postgres_url(postgres_bindir: Path) -> Iterator[str]:
    from tests.support.postgres import postgres_server

    with postgres_server(postgres_bindir, free_port()) as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each context."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'facebank.db'}"
    from tests.support.postgres import fresh_database

    return fresh_database(request.getfixturevalue("postgres_url"))


def chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    found = chromium()
    if found is None:
        hint = "Debian's chromium and chromium-driver are needed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(hint)  # CI must run the browser test, never skip it
        pytest.skip(hint)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        # Every name but the loopback resolves to nothing: no request can leave the machine.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
