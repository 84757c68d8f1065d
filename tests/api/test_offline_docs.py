"""/docs and /redoc work on a node without internet: every asset comes from the server itself,
and a real browser that can reach nothing but loopback lists the operations and runs one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from service.testing.local_server import LiveServer

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_only_from_the_server(server: LiveServer, page: str) -> None:
    html = httpx.get(f"{server.url}{page}").text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    assert "cdn." not in html and "fonts.googleapis" not in html


def test_swagger_ui_lists_operations_and_runs_detect_faces(
    server: LiveServer, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.support.images import blank_jpeg

    driver = browser
    driver.get(f"{server.url}/docs")
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 18)
    block = "[id^='operations-faces-detect_faces']"
    detect = driver.find_element(By.CSS_SELECTOR, block)
    detect.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    try_out = (By.CSS_SELECTOR, f"{block} .try-out__btn")
    wait.until(ready.element_to_be_clickable(try_out)).click()
    picker = detect.find_element(By.CSS_SELECTOR, ".body-param-content-type select")
    picker.send_keys("multipart/form-data")
    image = tmp_path / "blank.jpg"
    image.write_bytes(blank_jpeg())
    wait.until(lambda d: detect.find_elements(By.CSS_SELECTOR, "input[type=file]"))
    detect.find_elements(By.CSS_SELECTOR, "input[type=file]")[0].send_keys(str(image))
    detect.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait.until(
        lambda d: detect.find_element(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
        )
    )
    answer = detect.find_element(By.CSS_SELECTOR, ".live-responses-table tbody").text
    assert status.text.strip().startswith("200"), answer
    body = detect.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert '"FaceDetails"' in body
