"""The console's time to first paint: the Try page, and a collection's page with 100,000 faces.

    python -m benchmarks.console [--faces 100000] [--loads 5]

Starts `facebank serve` (real weights, embedded SQLite) over a database seeded with `--faces`
synthetic faces in collection "big" (benchmarks.restart's seeding, as IndexFaces stores
them), then loads each page `--loads` times in headless Chromium (Debian's, as the tests drive
it) on loopback, reading the browser's own first-contentful-paint and the HTML's size. The
collection page shows one page of faces (50) with a link to the next, whatever the
collection's size. Writes benchmarks/results/console-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import RESULTS, git_commit
from benchmarks.restart import seed
from ml.cpu import describe_cpu
from service.testing.local_server import start_server, stop_server

PAGES = {"try": "/console/try", "collection (100,000 faces)": "/console/collections/big"}


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def first_paint_ms(driver: Any, url: str) -> float:
    driver.get(url)
    for _ in range(50):
        painted = driver.execute_script(
            "const p = performance.getEntriesByName('first-contentful-paint');"
            "return p.length ? p[0].startTime : null;"
        )
        if painted is not None:
            return float(painted)
        time.sleep(0.05)
    raise RuntimeError(f"{url}: no first-contentful-paint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="facebank-console-") as work:
        data = Path(work) / "data"
        data.mkdir()
        seed(f"sqlite:///{data / 'facebank.db'}", args.faces, np.random.default_rng(0))
        server = start_server(Path(work), {"FACEBANK_DATA_DIR": str(data)}, timeout=600)
        driver = browser()
        try:
            for name, path in PAGES.items():
                url = server.url + path
                first_paint_ms(driver, url)  # warm: templates compiled, connections open
                paints = [first_paint_ms(driver, url) for _ in range(args.loads)]
                results[name] = {
                    "first_paint_ms_median": round(statistics.median(paints), 1),
                    "first_paint_ms": [round(p, 1) for p in paints],
                    "html_bytes": len(httpx.get(url).content),
                }
                print(name, results[name], flush=True)
        finally:
            driver.quit()
            stop_server(server)
    report = {"commit": git_commit(), "cpu": describe_cpu(), "faces": args.faces, "pages": results}
    (RESULTS / "console-cpu.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
