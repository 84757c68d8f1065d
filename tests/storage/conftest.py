"""Every storage test runs on both search backends: FAISS, and torch with batched searches."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["faiss", "torch"])
def search_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
