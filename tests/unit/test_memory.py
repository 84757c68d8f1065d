from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from service import errors
from service.operations.admission import PixelBudget, declared_pixels, request_pixels
from service.settings import Settings


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_budget_admits_until_full_and_frees_on_exit() -> None:
    budget = PixelBudget(100)
    with budget.admit(60):
        with pytest.raises(errors.ThrottlingError, match="pixels"), budget.admit(41):
            pass
        with budget.admit(40):
            assert budget.in_use == 100
    assert budget.in_use == 0
    with pytest.raises(RuntimeError), budget.admit(100):
        raise RuntimeError("a failed operation still gives its pixels back")
    assert budget.in_use == 0


def test_pixels_are_read_from_headers_only() -> None:
    assert declared_pixels(png(300, 200), max_pixels=1_000_000) == 60_000
    assert declared_pixels(png(300, 200), max_pixels=50_000) == 0  # refused before decoding
    assert declared_pixels(b"not an image", max_pixels=1_000_000) == 0
    request = {"SourceImage": {"Bytes": png(100, 100)}, "TargetImage": {"Bytes": png(200, 100)}}
    assert request_pixels(request, max_pixels=1_000_000) == 30_000


def test_the_largest_image_must_fit_the_budget() -> None:
    with pytest.raises(ValidationError, match="MAX_INFLIGHT_PIXELS"):
        Settings(max_inflight_pixels=1_000_000, max_image_pixels=2_000_000)
