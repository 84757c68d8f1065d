"""Folding BatchNorm into the layers before it changes the network's arithmetic, not its output."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ml.embedder import build_network, fold_batch_norms
from ml.face_models import FACENET_2017


def randomise_norms(network: nn.Module, seed: int) -> None:
    """Give every BatchNorm trained-looking statistics: fresh ones are identities."""
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            size = module.num_features
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(size, generator=generator) * 2 + 0.1)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.2)


def test_folded_network_gives_the_same_vectors_without_batch_norms() -> None:
    torch.manual_seed(0)
    network = build_network(FACENET_2017).eval()
    randomise_norms(network, seed=1)
    folded = fold_batch_norms(copy.deepcopy(network))
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in folded.modules())
    crops = torch.randn(4, 3, 160, 160, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected, got = network(crops), folded(crops)
    cosine = nn.functional.cosine_similarity(expected, got, dim=1)
    assert cosine.min() > 0.99999
    # The statistics matter: dropping the norms instead of folding them changes the vectors.
    dropped = copy.deepcopy(network)
    for module in dropped.modules():
        if hasattr(module, "bn"):
            module.bn = nn.Identity()
    with torch.inference_mode():
        changed = nn.functional.cosine_similarity(expected, dropped(crops), dim=1)
    assert changed.max() < 0.99
