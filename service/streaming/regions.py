"""RegionsOfInterest for face search (Rekognition honours them only for label detection): a
face counts when its box's centre lies in a region, a bounding box or a polygon, both as
ratios of the frame. No regions: the whole frame."""

from __future__ import annotations

from typing import Any

from ml.decode import DecodedImage
from ml.types import Box


def in_regions(box: Box, image: DecodedImage, regions: list[dict[str, Any]]) -> bool:
    if not regions:
        return True
    x = (box.left + box.right) / 2 / image.width
    y = (box.top + box.bottom) / 2 / image.height
    return any(_inside(x, y, region) for region in regions)


def _inside(x: float, y: float, region: dict[str, Any]) -> bool:
    if "Polygon" in region:
        return _in_polygon(x, y, [(p["X"], p["Y"]) for p in region["Polygon"]])
    frame = region.get("BoundingBox")
    if frame is None:
        return False
    left, top = float(frame.get("Left", 0.0)), float(frame.get("Top", 0.0))
    width, height = float(frame.get("Width", 0.0)), float(frame.get("Height", 0.0))
    return left <= x <= left + width and top <= y <= top + height


def _in_polygon(x: float, y: float, points: list[tuple[float, float]]) -> bool:
    """Even-odd rule: a ray to the right of the point crosses the outline an odd number of
    times when the point is inside."""
    inside = False
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
