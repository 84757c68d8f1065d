"""The vectorised MTCNN's building blocks against the stock operations they replace."""

from __future__ import annotations

import pytest
import torch
from torch.nn.functional import interpolate

from ml.mtcnn import (
    MtcnnSettings,
    _area_resize_regions,
    _area_resize_whole,
    _Candidates,
    _integral_images,
    _prefix_sums,
    _same_size_groups,
    min_overlap_nms,
    pyramid_scales,
)


def random_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=generator)


def stock_area(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """What facenet-pytorch does: interpolate(mode="area") on a float N x 3 x H x W tensor."""
    return interpolate(image.permute(2, 0, 1)[None].float(), size=size, mode="area")


@pytest.mark.parametrize(("height", "width"), [(720, 1280), (250, 250), (97, 333)])
def test_pyramid_levels_equal_stock_area_resize_bit_for_bit(height: int, width: int) -> None:
    image = random_image(height, width)
    integrals = _integral_images(image[None])
    for scale in pyramid_scales(height, width, MtcnnSettings()):
        size = (int(height * scale + 1), int(width * scale + 1))
        assert torch.equal(_area_resize_whole(integrals, size), stock_area(image, size))


def test_candidate_crops_equal_stock_area_resize_bit_for_bit() -> None:
    image = random_image(300, 400, seed=1)
    integral = _integral_images(image[None])[0]
    regions = [(0, 300, 0, 400), (10, 37, 20, 30), (299, 300, 399, 400), (50, 250, 100, 101)]
    top, bottom, left, right = (torch.tensor(side) for side in zip(*regions, strict=True))
    for side in (24, 48):
        crops = _area_resize_regions(integral, (top, bottom, left, right), side, fill=0.0)
        for crop, (t, b, left_, r) in zip(crops, regions, strict=True):
            region = image[t:b, left_:r]
            assert torch.equal(crop[None], stock_area(region, (side, side)))


def test_crops_past_the_frame_read_the_fill_there() -> None:
    image = random_image(120, 160, seed=2)
    integral = _integral_images(image[None])[0]
    margin, fill = 60, 127.5
    padded = torch.full((120 + 2 * margin, 160 + 2 * margin, 3), fill)
    padded[margin:-margin, margin:-margin] = image.float()
    # top, bottom, left, right: past the top-left corner, the right edge, and wholly inside
    regions = [(-40, 50, -30, 60), (20, 110, 100, 190), (10, 100, 10, 100)]
    top, bottom, left, right = (torch.tensor(side) for side in zip(*regions, strict=True))
    crops = _area_resize_regions(integral, (top, bottom, left, right), 24, fill=fill)
    for crop, (t, b, left_, r) in zip(crops, regions, strict=True):
        region = padded[t + margin : b + margin, left_ + margin : r + margin]
        expected = stock_area(region, (24, 24))
        assert torch.allclose(crop[None], expected, atol=1e-3)


def test_pyramid_matches_stock_scales() -> None:
    scales = pyramid_scales(720, 1280, MtcnnSettings())
    assert scales[0] == 0.6 and len(scales) == 11
    assert min(720 * scales[-1], 1280 * scales[-1]) >= 12
    assert 720 * scales[-1] * 0.709 < 12


def candidates(boxes: list[list[float]], scores: list[float], image: list[int]) -> _Candidates:
    return _Candidates(torch.tensor(boxes), torch.tensor(scores), torch.tensor(image))


def test_min_overlap_nms_suppresses_boxes_mostly_inside_a_better_one() -> None:
    found = candidates(
        [[0, 0, 100, 100], [10, 10, 40, 40], [200, 200, 260, 260], [0, 0, 100, 100]],
        [0.9, 0.95, 0.8, 0.7],
        [0, 0, 0, 1],
    )
    # Box 1 lies wholly inside box 0, so the better of the two (1) suppresses 0, although
    # their IoU is small; box 3 is box 0's twin but in another image, so it stays.
    assert sorted(min_overlap_nms(found, 0.7)) == [1, 2, 3]


def test_min_overlap_nms_keeps_the_later_of_tied_boxes_as_stock_does() -> None:
    found = candidates([[0, 0, 50, 50], [2, 2, 52, 52]], [1.0, 1.0], [0, 0])
    assert min_overlap_nms(found, 0.7) == [1]


def test_same_size_groups_split_by_size_and_cap() -> None:
    frames = [torch.zeros(h, w, 3) for h, w in [(10, 20), (10, 20), (5, 5), (10, 20)]]
    assert _same_size_groups(frames, 2) == [[0, 1], [3], [2]]
    assert _same_size_groups(frames, 64) == [[0, 1, 3], [2]]
    assert _same_size_groups(frames, 1) == [[0], [1], [3], [2]]


@pytest.mark.parametrize(
    ("shape", "dim", "dtype"),
    [
        ((3, 50, 70, 3), 1, torch.uint8),  # row sums of a batch of frames
        ((3, 51, 70, 3), 2, torch.int32),  # the integral image from them
        ((1, 1, 9, 3), 1, torch.uint8),  # one row
        ((2, 7, 1, 3), 2, torch.int32),  # one column
    ],
)
def test_cpu_prefix_sums_equal_torch_cumsum(
    shape: tuple[int, ...], dim: int, dtype: torch.dtype
) -> None:
    values = torch.randint(0, 256, shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    zeros = torch.zeros_like(values.narrow(dim, 0, 1), dtype=torch.int32)
    expected = torch.cat([zeros, torch.cumsum(values, dim, dtype=torch.int32)], dim)
    assert torch.equal(_prefix_sums(values, dim), expected)


def test_the_minimum_face_is_a_share_of_the_frame_never_below_mtcnns() -> None:
    rekognition = MtcnnSettings(reference_min_face=40)
    assert pyramid_scales(1080, 1920, rekognition)[0] == pytest.approx(12 / 40)
    assert pyramid_scales(720, 1280, rekognition)[0] == pytest.approx(12 / (40 * 1280 / 1920))
    assert pyramid_scales(1280, 720, rekognition)[0] == pytest.approx(12 / (40 * 1280 / 1920))
    # At 960 px and below the share falls under MTCNN's own 20 px: stock's pyramid, unchanged.
    for height, width in ((540, 960), (317, 214)):
        assert pyramid_scales(height, width, rekognition) == pyramid_scales(
            height, width, MtcnnSettings()
        )
