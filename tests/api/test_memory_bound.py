"""The server's memory is bounded by the pixels it admits, and given back after a burst."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.testing.local_server import LiveServer, running_server

MIB = 1 << 20
BUDGET_PIXELS = 128_000_000  # two of the largest images the server accepts (64 MP each)


def memory_mib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS", "VmHWM")))
    return {name: int(value.split()[0]) // 1024 for name, value in fields.items()}


def one_colour_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def budget_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(
        tmp_path_factory.mktemp("budget"), {"FACEBANK_MAX_INFLIGHT_PIXELS": str(BUDGET_PIXELS)}
    ) as live:
        yield live


def test_burst_of_huge_images_is_bounded_and_given_back(budget_server: LiveServer) -> None:
    png = one_colour_png(7999)  # 64 MP in about 200 KB: just under the pixel guard
    assert len(png) < 300_000
    url = f"{budget_server.url}/v1/faces/detect"
    httpx.post(url, files={"image": ("a.png", png)}, timeout=120)  # warm: one image alone
    pid = budget_server.process.pid
    before = memory_mib(pid)
    statuses: list[int] = []

    def detect() -> None:
        answer = httpx.post(url, files={"image": ("a.png", png)}, timeout=300)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.json()["code"] == "ThrottlingException"

    threads = [threading.Thread(target=detect) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = memory_mib(pid)
    assert sorted(set(statuses)) == [200, 429], statuses
    assert statuses.count(200) >= 2
    # Eight images at once took 5.7 GB more before the budget; two images' worth is ~1 GB.
    assert after["VmHWM"] - before["VmRSS"] < 1600, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < 300, (before, after)


def test_chunked_body_past_the_limit_is_refused_while_reading(budget_server: LiveServer) -> None:
    """No Content-Length: the limit is checked on the bytes read, not on what is declared."""

    def endless() -> Iterator[bytes]:
        yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\n"
        for _ in range(360):
            yield b"\0" * MIB

    before = memory_mib(budget_server.process.pid)
    answer = httpx.post(
        f"{budget_server.url}/v1/faces/detect",
        content=endless(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
        timeout=60,
    )
    assert answer.status_code == 413 and answer.json()["code"] == "ImageTooLargeException"
    assert memory_mib(budget_server.process.pid)["VmRSS"] - before["VmRSS"] < 100
