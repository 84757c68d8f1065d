"""The console in headless Chromium (which can reach nothing but loopback), on a server with a
keys file: sign-in and out, a policy's refusal shown with AWS's message, a cross-site post
refused, the Try page drawing what the API answers, a collection's page listing what was
indexed, and no request leaving any page. Screenshots of each page at laptop and phone widths
are saved for a person to look at (the path is printed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from service.testing.local_server import LiveServer
from tests.support.browser import click_and_wait
from tests.support.clients import rekognition_client
from tests.support.keys import NODELETE, READER
from tests.support.photos import GROUP_PEOPLE, first_photo, group_photo

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

OPERATOR = READER  # rekognition:* on everything
PAGES = [
    "",
    "/collections",
    "/collections/console-staff",
    "/try",
    "/video",
    "/cameras",
    "/thresholds",
]
SIZES = {"laptop": (1366, 860), "phone": (390, 844)}


@pytest.fixture(scope="module")
def console(policy_server: LiveServer, faces_dir: Path) -> LiveServer:
    client = rekognition_client(policy_server.url, *OPERATOR)
    client.create_collection(CollectionId="console-staff", Tags={"site": "hq"})
    for person in GROUP_PEOPLE:
        client.index_faces(
            CollectionId="console-staff",
            Image={"Bytes": first_photo(faces_dir, person)},
            ExternalImageId=person,
            MaxFaces=1,
        )
    return policy_server


def sign_in(driver: WebDriver, url: str, key: tuple[str, str]) -> None:
    """Fill in the sign-in form and wait for the answer (the next page, or the error)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{url}/console")
    driver.find_element(By.ID, "key_id").send_keys(key[0])
    driver.find_element(By.ID, "secret").send_keys(key[1])
    driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    answered = "form.signout, [data-testid=sign-in-error]"
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, answered))


def only_same_origin(driver: WebDriver, url: str) -> None:
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(name.startswith(url) for name in loaded), loaded


def test_sign_in_refuses_a_wrong_secret_and_signs_out(
    console: LiveServer, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, console.url, (OPERATOR[0], "not-the-secret-at-all"))
    assert "wrong" in browser.find_element(By.CSS_SELECTOR, "[data-testid=sign-in-error]").text
    sign_in(browser, console.url, OPERATOR)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=collection-row]")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form.signout button"), "#key_id")
    browser.get(f"{console.url}/console/collections")
    assert browser.find_elements(By.ID, "key_id")
    logged = console.log.read_text()
    assert "/console/sign-in" in logged and "not-the-secret" not in logged


def test_a_key_denied_delete_sees_the_refusal_and_the_collection_stays(
    console: LiveServer, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    rekognition_client(console.url, *OPERATOR).create_collection(CollectionId="console-keep")
    sign_in(browser, console.url, NODELETE)
    browser.get(f"{console.url}/console/collections/console-keep/delete")
    assert "deletes its 0 faces" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.ID, "confirm").send_keys("console-keep")
    confirm = browser.find_element(By.CSS_SELECTOR, "[data-testid=confirm-delete]")
    refusal = click_and_wait(browser, confirm, "[data-testid=refusal]")[0].text
    assert "is not authorized to perform: rekognition:DeleteCollection" in refusal
    described = rekognition_client(console.url, *OPERATOR).describe_collection(
        CollectionId="console-keep"
    )
    assert described["FaceCount"] == 0


def test_a_post_without_the_csrf_token_is_refused(console: LiveServer) -> None:
    with httpx.Client(base_url=console.url) as web:
        page = web.get("/console")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        signed = web.post(
            "/console/sign-in",
            data={"key_id": OPERATOR[0], "secret": OPERATOR[1], "csrf": token.group(1)},
        )
        assert signed.status_code == 303 and "facebank_console" in web.cookies
        forged = web.post("/console/collections", data={"collection_id": "console-forged"})
        assert forged.status_code == 403
        cross_site = web.post(
            "/console/collections",
            data={"collection_id": "console-forged", "csrf": "guessed"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
    listed = rekognition_client(console.url, *OPERATOR).list_collections()["CollectionIds"]
    assert "console-forged" not in listed


def test_try_draws_each_face_and_shows_the_api_s_similarity(
    console: LiveServer, browser: WebDriver, faces_dir: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api = rekognition_client(console.url, *OPERATOR)
    group = tmp_path / "group.jpg"
    group.write_bytes(group_photo(faces_dir))
    expected = api.detect_faces(Image={"Bytes": group.read_bytes()}, Attributes=["ALL"])
    sign_in(browser, console.url, OPERATOR)
    browser.get(f"{console.url}/console/try")
    wait = WebDriverWait(browser, 60)
    browser.find_element(By.ID, "detect-file").send_keys(str(group))
    boxes = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=face-box]"))
    assert len(boxes) == len(expected["FaceDetails"]) == len(GROUP_PEOPLE)
    marks = browser.find_elements(By.CSS_SELECTOR, "[data-testid=landmark]")
    assert len(marks) == sum(len(face["Landmarks"]) for face in expected["FaceDetails"])
    details = browser.find_elements(By.CSS_SELECTOR, "[data-testid=face-detail]")
    assert len(details) == len(boxes) and "AgeRange" in details[0].text

    ben = first_photo(faces_dir, "ben_afflek")
    probe = tmp_path / "ben.jpg"
    probe.write_bytes(ben)
    compared = api.compare_faces(
        SourceImage={"Bytes": ben}, TargetImage={"Bytes": group.read_bytes()}, SimilarityThreshold=0
    )["FaceMatches"][0]["Similarity"]
    browser.find_element(By.ID, "compare-source").send_keys(str(probe))
    browser.find_element(By.ID, "compare-target").send_keys(str(group))
    browser.find_element(By.CSS_SELECTOR, "#compare-form button").click()
    said = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=compare-similarity]"))
    assert f"Similarity {compared:.1f}" in said.text

    searched = api.search_faces_by_image(
        CollectionId="console-staff", Image={"Bytes": ben}, FaceMatchThreshold=80
    )["FaceMatches"]
    browser.find_element(By.ID, "search-file").send_keys(str(probe))
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=match-row]"))
    shown = [
        row.find_element(By.CSS_SELECTOR, "[data-testid=similarity]").text
        for row in browser.find_elements(By.CSS_SELECTOR, "[data-testid=match-row]")
        if row.text.startswith("face")
    ]
    assert shown == [f"{match['Similarity']:.1f}" for match in searched]

    browser.find_element(By.ID, "index-external").send_keys("console-indexed")
    browser.find_element(By.ID, "index-file").send_keys(str(probe))
    browser.find_element(By.CSS_SELECTOR, "#index-form button").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=indexed-face]"))
    only_same_origin(browser, console.url)
    browser.get(f"{console.url}/console/collections/console-staff?external=console-")
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-testid=face-row]")
    assert len(rows) == 1 and "console-indexed" in rows[0].text


def test_every_page_loads_only_from_the_server_at_laptop_and_phone_widths(
    console: LiveServer, browser: WebDriver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from selenium.webdriver.common.by import By

    shots = tmp_path_factory.getbasetemp() / "console-screenshots"
    shots.mkdir(exist_ok=True)
    sign_in(browser, console.url, OPERATOR)
    for name, (width, height) in SIZES.items():
        browser.set_window_size(width, height)
        for page in PAGES:
            browser.get(f"{console.url}/console{page}")
            assert browser.find_element(By.TAG_NAME, "h1").text
            only_same_origin(browser, console.url)
            slug = page.strip("/").replace("/", "-") or "overview"
            browser.save_screenshot(str(shots / f"{slug}-{name}.png"))
    print(f"console screenshots: {shots}")
    assert len(list(shots.glob("*.png"))) == len(PAGES) * len(SIZES)
