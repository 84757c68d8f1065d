"""Bounding the memory that requests may take, and giving it back after a burst.

A request's memory is dominated by its decoded images: a 64-megapixel PNG of 200 KB takes
hundreds of megabytes while it is decoded and detected (RGB copies, the detector's downscaled
copy; docs/performance.md has the measured figure), so counting requests alone cannot bound
memory. `PixelBudget` admits the pixels of the images in
flight up to a limit, read from the images' headers before anything is decoded, and refuses
beyond it with ThrottlingException (botocore backs off and retries by itself).

glibc keeps freed memory in its arenas for reuse, which after a burst of large images left
gigabytes held. `tune_allocator` makes large blocks come from (and go back to) the kernel
directly, and `PixelBudget` trims the heap when the last large image of a burst is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from service import errors
from service.s3_objects import IMAGE_MEMBERS

log = logging.getLogger("facebank.memory")

# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 1 << 20  # blocks from 1 MiB up are mapped, and unmapped when freed
TRIM_THRESHOLD_BYTES = 8 << 20  # free heap tops beyond 8 MiB go back to the kernel
TRIM_AFTER_PIXELS = 16_000_000  # trim once a burst that held this many pixels is over


def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    library = ctypes.CDLL(name)
    return library if hasattr(library, "mallopt") and hasattr(library, "malloc_trim") else None


_LIBC = _glibc()


def tune_allocator() -> bool:
    """Fix glibc's thresholds (its defaults grow with use, keeping ever larger blocks)."""
    if _LIBC is None:
        return False
    return bool(
        _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and _LIBC.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def give_back_free_memory() -> None:
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def declared_pixels(data: object, max_pixels: int) -> int:
    """The pixel count an image's header declares, without decoding it; 0 when the header is
    unreadable or over `max_pixels` (the decoder refuses those before decoding anything)."""
    if not isinstance(data, bytes):
        return 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = image.width * image.height
    except Exception:  # whatever is wrong with it, the decoder names it
        return 0
    return pixels if pixels <= max_pixels else 0


def request_pixels(request: dict[str, Any], max_pixels: int) -> int:
    images = (request.get(member) for member in IMAGE_MEMBERS)
    return sum(
        declared_pixels(image.get("Bytes"), max_pixels)
        for image in images
        if isinstance(image, dict)
    )


class PixelBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._held_in_burst = 0
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, pixels: int) -> Iterator[None]:
        """Hold `pixels` of the budget for the block; ThrottlingException when they do not fit."""
        if pixels == 0:
            yield
            return
        with self._lock:
            if self.in_use + pixels > self.limit:
                raise errors.ThrottlingError(
                    f"Rate exceeded: {self.in_use + pixels} pixels of images would be in flight; "
                    f"the server admits {self.limit}"
                )
            self.in_use += pixels
            self._held_in_burst += pixels
        try:
            yield
        finally:
            self._release(pixels)

    def _release(self, pixels: int) -> None:
        with self._lock:
            self.in_use -= pixels
            trim = self.in_use == 0 and self._held_in_burst >= TRIM_AFTER_PIXELS
            if self.in_use == 0:
                self._held_in_burst = 0
        if trim:
            give_back_free_memory()
