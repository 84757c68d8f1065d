"""Face crops for the embedder: the detector box plus a margin, resized to a square; for models
whose recipe asks for it, turned upright by the eye line first, and mirrored as a second view."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ml.types import Box, Detection

CROP_SIZE = 160
CROP_MARGIN = 32  # pixels of margin in the 160-px output, as FaceNet's MTCNN alignment used
PAST_FRAME_GREY = (128, 128, 128)


def crop_face(
    image: Image.Image, box: Box, size: int = CROP_SIZE, margin: int = CROP_MARGIN
) -> np.ndarray:
    """A size x size RGB crop around `box`, with `margin` output pixels of context in total.

    The margin is given in output pixels, so it is scaled back to source pixels per axis: a face
    box w px wide becomes (size - margin) output px, hence margin * w / (size - margin) source px.
    The margin stops at the frame, as FaceNet's alignment clipped it; a face that the frame cuts
    off keeps its whole box, the part past the frame mid-grey, so that what is left of the face
    keeps its proportions (stretched, it matched its own uncut face at cosine 0.31 against 0.59
    padded, with half of the face cut off).
    """
    pad_x = margin * box.width / (size - margin) / 2.0
    pad_y = margin * box.height / (size - margin) / 2.0
    region = (
        int(min(max(box.left - pad_x, 0), box.left)),
        int(min(max(box.top - pad_y, 0), box.top)),
        int(max(min(box.right + pad_x, image.width), box.right)),
        int(max(min(box.bottom + pad_y, image.height), box.bottom)),
    )
    crop = crop_past_frame(image, region).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(crop, dtype=np.uint8)


def crop_past_frame(image: Image.Image, region: tuple[int, int, int, int]) -> Image.Image:
    left, top, right, bottom = region
    if left >= 0 and top >= 0 and right <= image.width and bottom <= image.height:
        return image.crop(region)
    canvas = Image.new("RGB", (max(right - left, 1), max(bottom - top, 1)), PAST_FRAME_GREY)
    canvas.paste(image, (-left, -top))
    return canvas


def crop_upright(
    image: Image.Image, face: Detection, size: int = CROP_SIZE, margin: int = CROP_MARGIN
) -> np.ndarray:
    """`crop_face` of the face turned about its box's centre until its eyes are level.

    Only a window around the face is turned: one wide enough to hold the turned crop whole
    (its half-diagonal about the centre). Whatever lies past the frame, margin included,
    is mid-grey.
    """
    box = face.box
    (left_x, left_y), (right_x, right_y) = face.landmarks[0], face.landmarks[1]
    roll = math.degrees(math.atan2(right_y - left_y, right_x - left_x))
    centre_x, centre_y = (box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0
    half_width = box.width / 2.0 * size / (size - margin)
    half_height = box.height / 2.0 * size / (size - margin)
    reach = math.ceil(math.hypot(half_width, half_height)) + 1
    origin_x, origin_y = math.floor(centre_x) - reach, math.floor(centre_y) - reach
    window = crop_past_frame(
        image, (origin_x, origin_y, origin_x + 2 * reach, origin_y + 2 * reach)
    )
    turned = window.rotate(
        roll,
        resample=Image.Resampling.BILINEAR,
        center=(centre_x - origin_x, centre_y - origin_y),
        fillcolor=PAST_FRAME_GREY,
    )
    moved = Box(
        box.left - origin_x, box.top - origin_y, box.right - origin_x, box.bottom - origin_y
    )
    return crop_face(turned, moved, size, margin)


def recipe_crops(
    pixels: np.ndarray, faces: list[Detection], upright: bool, mirrored: bool
) -> np.ndarray:
    """The embedder's input for each face, as a model's recipe says: N x views x size x size x 3
    uint8 (views is 2 when the mirror image is a second view)."""
    views = 2 if mirrored else 1
    if not faces:
        return np.zeros((0, views, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    crops = [crop_upright(image, face) if upright else crop_face(image, face.box) for face in faces]
    if mirrored:
        return np.stack([np.stack([crop, crop[:, ::-1]]) for crop in crops])
    return np.stack(crops)[:, None]
