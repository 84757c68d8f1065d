"""A vectorised MTCNN: stock facenet-pytorch's weights and decisions, without per-box Python loops.

Stock `detect_face` resizes every candidate box with its own `interpolate(mode="area")` call, and
runs its last non-maximum suppression in NumPy. Here every area resize (pyramid levels and the
24- and 48-px candidate crops) is read off one integral image per image with a few gathers, so
a whole batch of candidates costs a handful of tensor operations on the CPU or the GPU.

Area resampling is adaptive average pooling: output cell i of n takes input rows
[floor(i*len/n), ceil((i+1)*len/n)). Integral sums of uint8 pixels are exact, and the mean is
divided the way PyTorch's pooling kernel divides it (by the bin height, then its width), so the
crops equal stock's bit for bit and the networks see the same inputs.

Images of the same size share each P-Net pass; R-Net and O-Net take every image's candidates
in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional
from torchvision.ops import batched_nms

_NORMALISE_MEAN = 127.5
_NORMALISE_SCALE = 0.0078125
_PNET_STRIDE = 2
_PNET_CELL = 12


MTCNN_MIN_FACE_SIZE = 20  # stock MTCNN's smallest face
REFERENCE_SIDE = 1920  # the longer side of the frame a proportional minimum face is given for


@dataclass(frozen=True)
class MtcnnSettings:
    min_face_size: int = MTCNN_MIN_FACE_SIZE
    # The smallest face in a frame whose longer side is REFERENCE_SIDE, and in proportion in
    # others (never below min_face_size); 0: min_face_size everywhere, as stock.
    reference_min_face: int = 0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    # Stock MTCNN never proposes a face that the frame cuts off (P-Net's 12-px window must fit
    # inside the image) and stretches what is left of one that it does propose. With a margin,
    # every pyramid level is padded by that many level pixels of `edge_fill`, and R/O-Net crops
    # are padded the same way instead of stretched. 0 reproduces stock exactly.
    edge_margin: int = 0
    edge_fill: float = 0.0  # the padding's pixel value, 0-255


@dataclass(frozen=True)
class RawFaces:
    """One image's faces, in MTCNN's order: boxes (n x 4, x1 y1 x2 y2), scores (n), landmarks
    (n x 5 x 2, x y)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray


@dataclass
class _Candidates:
    """Boxes (n x 4), scores (n) and the index of each box's image, all on one device."""

    boxes: Tensor
    scores: Tensor
    image: Tensor

    @staticmethod
    def none(device: torch.device, columns: int) -> _Candidates:
        empty = torch.empty(0, device=device)
        return _Candidates(empty.view(0, columns), empty, empty.long())

    def take(self, keep: Tensor) -> _Candidates:
        return _Candidates(self.boxes[keep], self.scores[keep], self.image[keep])


class VectorisedMtcnn:
    def __init__(self, device: torch.device, settings: MtcnnSettings | None = None) -> None:
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet  # weights ship in the wheel

        self.device = device
        self.settings = settings or MtcnnSettings()
        # On the CPU a batch of pyramids overflows the caches: one image per P-Net pass is
        # faster there (108 against 181 ms per 1280x720 image at batch 8).
        self.pnet_batch = 64 if device.type == "cuda" else 1
        # Candidates per R-Net and O-Net pass. On the CPU larger passes are slower: their
        # activations outgrow the caches and the allocator's reusable memory (docs/performance.md);
        # on a GPU the cap only bounds memory on crowded pictures.
        cuda = device.type == "cuda"
        self.rnet_batch = 4096 if cuda else 128
        self.onet_batch = 4096 if cuda else 32
        self.pnet = _prepare(PNet(), device)
        self.rnet = _prepare(RNet(), device)
        self.onet = _prepare(ONet(), device)

    @torch.inference_mode()
    def detect(self, images: list[Tensor]) -> list[RawFaces]:
        """Faces in each H x W x 3 uint8 image (any sizes, on any device)."""
        if not images:
            return []
        frames = [image.to(self.device) for image in images]
        sizes = torch.tensor([[f.shape[1], f.shape[0]] for f in frames], device=self.device)
        integrals: list[Tensor] = [torch.empty(0)] * len(frames)
        found = []
        for members in _same_size_groups(frames, self.pnet_batch):
            batch = torch.stack([frames[i] for i in members])
            batch_integrals = _integral_images(batch)
            found.append(self._propose(batch_integrals, torch.tensor(members, device=self.device)))
            for index, integral in zip(members, batch_integrals, strict=True):
                integrals[index] = integral
        candidates = self._merge_proposals(found)
        candidates = self._refine(integrals, sizes, candidates)
        return self._output(integrals, sizes, candidates)

    def _propose(self, integrals: Tensor, image_index: Tensor) -> _Candidates:
        """Stage 1: P-Net over the pyramid of a batch of same-sized images."""
        height, width = integrals.shape[1] - 1, integrals.shape[2] - 1
        found = [_Candidates.none(self.device, 8)]  # boxes carry 4 regression offsets
        for scale in pyramid_scales(height, width, self.settings):
            scaled = (int(height * scale + 1), int(width * scale + 1))
            level = self._padded(_normalise(_area_resize_whole(integrals, scaled)))
            regression, probabilities = self.pnet(level)
            threshold = self.settings.thresholds[0]
            origin = self.settings.edge_margin
            cells = _cells_above(regression, probabilities[:, 1], scale, threshold, origin)
            keep = batched_nms(cells.boxes[:, :4], cells.scores, cells.image, 0.5)
            cells = cells.take(keep)
            cells.image = image_index[cells.image]
            found.append(cells)
        return _concat(found)

    def _padded(self, level: Tensor) -> Tensor:
        margin = self.settings.edge_margin
        if not margin:
            return level
        fill = (self.settings.edge_fill - _NORMALISE_MEAN) * _NORMALISE_SCALE  # as normalised
        padded = functional.pad(level, (margin,) * 4, value=fill)
        return padded.contiguous(memory_format=torch.channels_last)

    def _crop(
        self, integrals: list[Tensor], sizes: Tensor, candidates: _Candidates, side: int
    ) -> tuple[_Candidates, Tensor]:
        fill = self.settings.edge_fill if self.settings.edge_margin else None
        return _crop_candidates(integrals, sizes, candidates, side, fill)

    @staticmethod
    def _merge_proposals(found: list[_Candidates]) -> _Candidates:
        """Stage 1's cross-scale NMS, then each box moved by its regression and squared."""
        candidates = _concat(found)
        regression = candidates.boxes[:, 4:]
        candidates.boxes = candidates.boxes[:, :4]
        keep = batched_nms(candidates.boxes, candidates.scores, candidates.image, 0.7)
        candidates = candidates.take(keep)
        refined = _apply_offsets(candidates.boxes, regression[keep], inclusive=False)
        candidates.boxes = _square(refined)
        return candidates

    def _refine(
        self, integrals: list[Tensor], sizes: Tensor, candidates: _Candidates
    ) -> _Candidates:
        """Stage 2: R-Net on 24-px crops of every candidate."""
        candidates, crops = self._crop(integrals, sizes, candidates, 24)
        regression, probabilities = _run_in_chunks(self.rnet, crops, self.rnet_batch)
        scores = probabilities[:, 1]
        passed = scores > self.settings.thresholds[1]
        candidates = _Candidates(candidates.boxes[passed], scores[passed], candidates.image[passed])
        regression = regression[passed]
        keep = batched_nms(candidates.boxes, candidates.scores, candidates.image, 0.7)
        candidates = candidates.take(keep)
        candidates.boxes = _square(_apply_offsets(candidates.boxes, regression[keep], True))
        return candidates

    def _output(
        self, integrals: list[Tensor], sizes: Tensor, candidates: _Candidates
    ) -> list[RawFaces]:
        """Stage 3: O-Net on 48-px crops gives final boxes, scores and landmarks."""
        candidates, crops = self._crop(integrals, sizes, candidates, 48)
        regression, marks, probabilities = _run_in_chunks(self.onet, crops, self.onet_batch)
        scores = probabilities[:, 1]
        passed = scores > self.settings.thresholds[2]
        boxes, image = candidates.boxes[passed], candidates.image[passed]
        landmarks = _place_landmarks(boxes, marks[passed])
        boxes = _apply_offsets(boxes, regression[passed], inclusive=True)
        final = _Candidates(boxes, scores[passed], image)
        keep = torch.tensor(min_overlap_nms(final, 0.7), dtype=torch.long, device=boxes.device)
        return _split_by_image(final.take(keep), landmarks[keep], len(integrals))


def smallest_face(height: int, width: int, settings: MtcnnSettings) -> float:
    proportional = settings.reference_min_face * max(height, width) / REFERENCE_SIDE
    return max(float(settings.min_face_size), proportional)


def pyramid_scales(height: int, width: int, settings: MtcnnSettings) -> list[float]:
    """Stock's scales, computed the same way so that float rounding matches too; the first
    level is where the smallest face becomes P-Net's 12-px window."""
    scale = 12.0 / smallest_face(height, width, settings)
    shorter = min(height, width) * scale
    scales = []
    while shorter >= 12:
        scales.append(scale)
        scale = scale * settings.factor
        shorter = shorter * settings.factor
    return scales


def _prepare(network: nn.Module, device: torch.device) -> nn.Module:
    network = network.eval().to(device)
    # channels_last makes the small convolutions and 2x2 pooling faster on the CPU.
    return network.to(memory_format=torch.channels_last)


def _normalise(pixels: Tensor) -> Tensor:
    """Pixel values as the networks take them, in place."""
    return pixels.sub_(_NORMALISE_MEAN).mul_(_NORMALISE_SCALE)


def _integral_images(frames: Tensor) -> Tensor:
    """B x H x W x C frames -> B x (H + 1) x (W + 1) x C int32 sums of every top-left
    rectangle, so the sum over rows [a, b) and columns [c, d) is
    out[b, d] - out[a, d] - out[b, c] + out[a, c]."""
    return _prefix_sums(_prefix_sums(frames, dim=1), dim=2)


def _prefix_sums(values: Tensor, dim: int) -> Tensor:
    """int32 cumulative sums along `dim` with a leading zero, so sum[a:b] = out[b] - out[a]."""
    shape = list(values.shape)
    shape[dim] += 1
    out = torch.empty(shape, dtype=torch.int32, device=values.device)
    out.narrow(dim, 0, 1).zero_()
    # Summing straight into the output (no cast, no concatenation) saves a copy per image.
    target = out.narrow(dim, 1, values.shape[dim])
    if values.device.type == "cpu":
        _cpu_running_sums(values, dim, target)
    else:
        torch.cumsum(values, dim, dtype=torch.int32, out=target)
    return out


def _cpu_running_sums(values: Tensor, dim: int, target: Tensor) -> None:
    """torch.cumsum into `target`, done with NumPy on the same memory: torch's CPU cumsum over a
    dimension that is not the last is several times slower than NumPy's along the inner ones,
    and than adding slice by slice along the outer ones (docs/performance.md). Integer sums:
    the result is the same to the bit."""
    source, out = values.numpy(), target.numpy()
    if dim >= values.dim() - 2:
        np.cumsum(source, axis=dim, dtype=np.int32, out=out)
        return
    # Views with the summed dimension first: the sums are written into `target` itself.
    rows, sums = np.moveaxis(source, dim, 0), np.moveaxis(out, dim, 0)
    sums[0] = rows[0]
    for i in range(1, len(rows)):
        np.add(sums[i - 1], rows[i], out=sums[i], dtype=np.int32)


def _bins(start: Tensor, length: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """Adaptive pooling's bin edges: cell i of `count` over [start, start + length)."""
    i = torch.arange(count, device=length.device)
    length = length.unsqueeze(-1)
    start = start.unsqueeze(-1)
    return start + (i * length) // count, start + ((i + 1) * length + count - 1) // count


def _area_resize_whole(integrals: Tensor, size: tuple[int, int]) -> Tensor:
    """A B x H x W x 3 batch (given as its integral images) area-resized to B x 3 x h x w."""
    device = integrals.device
    height, width = integrals.shape[1] - 1, integrals.shape[2] - 1
    zero = torch.zeros((), dtype=torch.long, device=device)
    top, bottom = _bins(zero, torch.tensor(height, device=device), size[0])
    left, right = _bins(zero, torch.tensor(width, device=device), size[1])
    # B x h x (W + 1) x 3: the integral's columns summed over each row bin
    banded = integrals.index_select(1, bottom) - integrals.index_select(1, top)
    totals = banded.index_select(2, right) - banded.index_select(2, left)
    # Divided in place, in the same order as PyTorch's pooling kernel: the same floats.
    means = totals.float().div_((bottom - top).float()[:, None, None])
    means.div_((right - left).float()[:, None])
    return means.permute(0, 3, 1, 2)  # channels_last in memory


def _same_size_groups(frames: list[Tensor], most: int) -> list[list[int]]:
    """Indices of frames that can share a P-Net pass: same size, at most `most` per group."""
    by_size: dict[tuple[int, int], list[list[int]]] = {}
    for index, frame in enumerate(frames):
        groups = by_size.setdefault((frame.shape[0], frame.shape[1]), [[]])
        if len(groups[-1]) == most:
            groups.append([])
        groups[-1].append(index)
    return [group for groups in by_size.values() for group in groups]


def _crop_candidates(
    integrals: list[Tensor], sizes: Tensor, candidates: _Candidates, side: int, fill: float | None
) -> tuple[_Candidates, Tensor]:
    """Each candidate's box area-resized to side^2.

    With no `fill`, the box is first clipped to its image as stock clips it (what is left is
    stretched to the square). With a fill, the box is kept whole and its cells outside the image
    read as `fill`. Boxes that fall wholly outside their image are dropped.
    """
    corners = candidates.boxes.trunc().to(torch.long)
    size = sizes[candidates.image]
    left, top, right, bottom = corners[:, 0] - 1, corners[:, 1] - 1, corners[:, 2], corners[:, 3]
    if fill is None:
        left, top = left.clamp(min=0), top.clamp(min=0)
        right, bottom = torch.minimum(right, size[:, 0]), torch.minimum(bottom, size[:, 1])
    overlaps = (right > left.clamp(min=0)) & (bottom > top.clamp(min=0))
    inside = overlaps & (left < size[:, 0]) & (top < size[:, 1])
    candidates = candidates.take(inside)
    left, top, right, bottom = left[inside], top[inside], right[inside], bottom[inside]
    crops = torch.empty((len(left), 3, side, side), device=sizes.device)
    crops = crops.to(memory_format=torch.channels_last)
    for index, integral in enumerate(integrals):  # a loop over images, not over boxes
        mine = (candidates.image == index).nonzero().squeeze(1)
        if len(mine):
            region = (top[mine], bottom[mine], left[mine], right[mine])
            crops[mine] = _area_resize_regions(integral, region, side, fill or 0.0)
    return candidates, _normalise(crops)


def _area_resize_regions(
    integral: Tensor, region: tuple[Tensor, Tensor, Tensor, Tensor], side: int, fill: float
) -> Tensor:
    """Regions (which may reach past the image) area-resized; pixels outside read as `fill`."""
    top, bottom, left, right = region
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    row_start, row_end = _bins(top, bottom - top, side)  # n x side
    col_start, col_end = _bins(left, right - left, side)
    r0, r1 = row_start.clamp(0, height)[:, :, None], row_end.clamp(0, height)[:, :, None]
    c0, c1 = col_start.clamp(0, width)[:, None, :], col_end.clamp(0, width)[:, None, :]
    # Gathering rows of the flattened integral by one index is faster than indexing it by two.
    pixels, stride = integral.view(-1, 3), width + 1

    def corner(rows: Tensor, cols: Tensor) -> Tensor:
        return pixels.index_select(0, (rows * stride + cols).flatten())

    totals = corner(r1, c1) - corner(r0, c1) - corner(r1, c0) + corner(r0, c0)
    totals = totals.view(len(top), side, side, 3).float()
    heights = (row_end - row_start).float()[:, :, None, None]
    widths = (col_end - col_start).float()[:, None, :, None]
    if fill:
        outside = heights * widths - ((r1 - r0) * (c1 - c0)).float().unsqueeze(-1)
        totals.add_(outside.mul_(fill))
    return totals.div_(heights).div_(widths).permute(0, 3, 1, 2)


def _cells_above(
    regression: Tensor, probability: Tensor, scale: float, threshold: float, origin: int
) -> _Candidates:
    """P-Net cells whose face probability reaches the threshold, as boxes in image pixels.

    `origin` is the level's padding: level pixel `origin` is the image's first. Boxes carry
    their four regression offsets in columns 4-7 until stage 1 applies them.
    """
    image, row, col = (probability >= threshold).nonzero(as_tuple=True)
    position = torch.stack([col, row], dim=1).to(regression.dtype)
    near = ((_PNET_STRIDE * position - origin + 1) / scale).floor()
    far = ((_PNET_STRIDE * position - origin + _PNET_CELL) / scale).floor()
    offsets = regression[image, :, row, col]
    boxes = torch.cat([near, far, offsets], dim=1)
    return _Candidates(boxes, probability[image, row, col], image)


def _apply_offsets(boxes: Tensor, offsets: Tensor, inclusive: bool) -> Tensor:
    """Box regression: each edge moves by its offset times the box's width or height.

    Stage 1 measures sizes as x2 - x1, stages 2 and 3 as x2 - x1 + 1, as stock does.
    """
    extra = 1 if inclusive else 0
    width = boxes[:, 2] - boxes[:, 0] + extra
    height = boxes[:, 3] - boxes[:, 1] + extra
    scale = torch.stack([width, height, width, height], dim=1)
    return boxes + offsets * scale


def _square(boxes: Tensor) -> Tensor:
    """Grow each box to a square about its centre (side = its longer side)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    left = boxes[:, 0] + width * 0.5 - side * 0.5
    top = boxes[:, 1] + height * 0.5 - side * 0.5
    return torch.stack([left, top, left + side, top + side], dim=1)


def _place_landmarks(boxes: Tensor, marks: Tensor) -> Tensor:
    """O-Net's landmarks (fractions of the box) in image pixels: n x 5 x 2."""
    width = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
    height = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
    xs = width * marks[:, :5] + boxes[:, 0:1] - 1
    ys = height * marks[:, 5:] + boxes[:, 1:2] - 1
    return torch.stack([xs, ys], dim=2)


def min_overlap_nms(candidates: _Candidates, threshold: float) -> list[int]:
    """Greedy NMS per image where overlap is intersection over the smaller box's area.

    torchvision has only IoU; the final stage's few boxes are suppressed on the host. O-Net's
    scores often saturate at exactly 1.0, so ties are common: like stock, the later box wins.
    """
    boxes = candidates.boxes.double().cpu().numpy()
    scores = candidates.scores.cpu().numpy()
    image = candidates.image.cpu().numpy()
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for i in np.argsort(scores, kind="stable")[::-1]:
        if suppressed[i]:
            continue
        keep.append(int(i))
        width = np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]) + 1
        height = np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]) + 1
        overlap = np.maximum(width, 0) * np.maximum(height, 0) / np.minimum(areas[i], areas)
        suppressed |= (overlap > threshold) & (image == image[i])
    return keep


def _run_in_chunks(network: nn.Module, crops: Tensor, chunk: int) -> tuple[Tensor, ...]:
    if len(crops) == 0:
        crops = crops.new_zeros((1, *crops.shape[1:]))  # keeps output shapes; sliced away below
        outputs = network(crops)
        return tuple(out[:0] for out in outputs)
    parts = [network(crops[i : i + chunk]) for i in range(0, len(crops), chunk)]
    return tuple(torch.cat(pieces) for pieces in zip(*parts, strict=True))


def _concat(parts: list[_Candidates]) -> _Candidates:
    return _Candidates(
        torch.cat([p.boxes for p in parts]),
        torch.cat([p.scores for p in parts]),
        torch.cat([p.image for p in parts]),
    )


def _split_by_image(final: _Candidates, landmarks: Tensor, count: int) -> list[RawFaces]:
    boxes = final.boxes.cpu().numpy()
    scores = final.scores.cpu().numpy()
    marks = landmarks.cpu().numpy()
    image = final.image.cpu().numpy()
    return [
        RawFaces(boxes[image == i], scores[image == i], marks[image == i]) for i in range(count)
    ]
