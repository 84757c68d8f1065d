"""Waiting for what a click in a headless browser brings.

A click on a link or a submit button returns before the next page has loaded, so an element
looked up at once may be looked up on the page that is going away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement


def click_and_wait(
    driver: WebDriver, clicked: WebElement, answer_css: str, timeout: float = 30
) -> list[WebElement]:
    """Click, then wait until the page that answers shows an element matching answer_css."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    clicked.click()
    waiting = WebDriverWait(driver, timeout)
    waiting.until(expected_conditions.staleness_of(clicked))
    found: list[WebElement] = waiting.until(lambda d: d.find_elements(By.CSS_SELECTOR, answer_css))
    return found
