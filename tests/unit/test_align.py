"""Embedder crops: the margin stops at the frame, a face cut off by it is padded, not
stretched; the recipes turn a face upright and add its mirror image."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ml.align import CROP_SIZE, PAST_FRAME_GREY, crop_face, crop_upright, recipe_crops
from ml.types import Box, Detection


def test_face_inside_the_frame_is_cropped_with_its_margin_as_before() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    box = Box(60, 50, 140, 150)
    pad_x, pad_y = 32 * 80 / 128 / 2, 32 * 100 / 128 / 2
    region = (int(60 - pad_x), int(50 - pad_y), int(140 + pad_x), int(150 + pad_y))
    expected = image.crop(region).resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BILINEAR)
    assert np.array_equal(crop_face(image, box), np.asarray(expected))


def test_face_half_past_the_left_edge_keeps_its_proportions() -> None:
    pixels = np.zeros((200, 200, 3), dtype=np.uint8)
    pixels[:, :, 0] = 255  # a red frame
    box = Box(-64, 36, 64, 164)  # a 128-px face, half of it past the left edge
    crop = crop_face(Image.fromarray(pixels), box, margin=0)
    # The left half of the crop is the padding and the right half is the frame: stretched,
    # the visible half would fill the whole crop.
    assert np.all(crop[:, : CROP_SIZE // 2 - 1] == PAST_FRAME_GREY)
    assert np.all(crop[:, CROP_SIZE // 2 + 1 :] == (255, 0, 0))


def test_margin_is_not_padded_past_the_frame() -> None:
    pixels = np.full((100, 100, 3), 200, dtype=np.uint8)
    crop = crop_face(Image.fromarray(pixels), Box(0, 0, 100, 100))
    assert np.all(crop == 200)  # the margin would reach past every edge; it stops there


def _eye_pixels(crop: np.ndarray) -> np.ndarray:
    """Centres (x, y) of the two dark-red blobs, left one first."""
    ys, xs = np.nonzero((crop[:, :, 0] > 150) & (crop[:, :, 1] < 80))
    left = xs < CROP_SIZE / 2
    return np.array([[xs[side].mean(), ys[side].mean()] for side in (left, ~left)])


def test_upright_crop_levels_a_tilted_eye_line() -> None:
    image = Image.new("RGB", (300, 300), (40, 40, 40))
    eyes = np.array([[120.0, 130.0], [180.0, 160.0]])  # the right eye 30 px lower: 26.6 degrees
    for x, y in eyes:
        image.paste((220, 20, 20), (int(x) - 4, int(y) - 4, int(x) + 5, int(y) + 5))
    face = Detection(Box(100, 100, 200, 220), 0.99, np.vstack([eyes, [[150, 170]] * 3]))
    tilted = _eye_pixels(crop_face(image, face.box))
    upright = _eye_pixels(crop_upright(image, face))
    assert tilted[1, 1] - tilted[0, 1] > 20
    assert abs(upright[1, 1] - upright[0, 1]) < 1.5
    assert upright[1, 0] - upright[0, 0] > tilted[1, 0] - tilted[0, 0]  # the line turned flat


def test_mirrored_recipe_adds_the_mirror_image_as_a_second_view() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    face = Detection(Box(50, 40, 150, 160), 0.99, np.zeros((5, 2)))
    plain = recipe_crops(pixels, [face], upright=False, mirrored=False)
    both = recipe_crops(pixels, [face, face], upright=False, mirrored=True)
    assert plain.shape == (1, 1, CROP_SIZE, CROP_SIZE, 3)
    assert both.shape == (2, 2, CROP_SIZE, CROP_SIZE, 3)
    assert np.array_equal(both[1, 0], plain[0, 0])
    assert np.array_equal(both[1, 1], plain[0, 0][:, ::-1])
