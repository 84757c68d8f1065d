"""A network fed face chips as uint8 arrays, run on the model device: what the attribute
networks have in common, and the unit that cross-request batching (`service.batching`) joins.

A `ChipRunner` takes N chips (N first) and gives the network's outputs as arrays, N first. The
chips are turned into the network's input on the device, so only uint8 crosses to it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

ChipRunner = Callable[[np.ndarray], list[np.ndarray]]


class ChipNetwork:
    def __init__(
        self, network: nn.Module, device: torch.device, prepare: Callable[[Tensor], Tensor]
    ) -> None:
        self.network = network.to(device).eval()
        self.device = device
        self._prepare = prepare  # uint8 chips on the device -> the network's float input

    @torch.inference_mode()
    def __call__(self, chips: np.ndarray) -> list[np.ndarray]:
        outputs = self.network(self._prepare(torch.from_numpy(chips).to(self.device)))
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        return [np.asarray(output.float().cpu().numpy()) for output in outputs]


def rgb_unit(chips: Tensor) -> Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W in [0, 1] (MediaPipe's networks)."""
    return chips.permute(0, 3, 1, 2).float() / 255.0
