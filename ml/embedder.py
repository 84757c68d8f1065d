"""FaceNet (Inception-ResNet-v1) embeddings of aligned face crops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ml.face_models import ModelSpec


class FaceEmbedder(Protocol):
    dim: int

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """N x 160 x 160 x 3 uint8 crops -> N x dim float32 unit vectors."""
        ...


def build_network(spec: ModelSpec) -> nn.Module:
    from facenet_pytorch import InceptionResnetV1  # heavy import, kept off module import

    network: nn.Module = InceptionResnetV1(pretrained=None, classify=False)
    if spec.embedding_dim != 512:
        # Sandberg's 2017 model ends in a 128-d bottleneck; facenet-pytorch defaults to 512.
        network.last_linear = nn.Linear(1792, spec.embedding_dim, bias=False)
        network.last_bn = nn.BatchNorm1d(spec.embedding_dim, eps=1e-3, momentum=0.1)
    return network


def load_network(spec: ModelSpec, weights: Path) -> nn.Module:
    network = build_network(spec)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    # facenet-pytorch's VGGFace2 checkpoint carries a classifier head we do not use.
    state = {key: value for key, value in state.items() if not key.startswith("logits.")}
    network.load_state_dict(state, strict=True)
    return network


def fold_batch_norms(network: nn.Module) -> nn.Module:
    """Fold every inference-mode BatchNorm into the convolution or linear layer before it.

    Inception-ResNet-v1 follows each of its 132 convolutions with a BatchNorm; in eval mode that
    is an affine map the convolution's weights can absorb, which removes one pass over every
    activation. Vectors agree with the unfolded network to float rounding.
    """
    network.eval()
    for module in network.modules():
        conv, norm = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(conv, norm)
            module.bn = nn.Identity()
    linear, norm = getattr(network, "last_linear", None), getattr(network, "last_bn", None)
    if isinstance(linear, nn.Linear) and isinstance(norm, nn.BatchNorm1d):
        network.last_linear = fuse_linear_bn_eval(linear, norm)
        network.last_bn = nn.Identity()
    return network


def standardise(batch: torch.Tensor, method: str) -> torch.Tensor:
    """Float N x 3 x H x W from uint8, with the input scaling the weights were trained on."""
    x = batch.float()
    if method == "fixed":
        return (x - 127.5) / 128.0
    # FaceNet's prewhiten: per image, (x - mean) / max(std, 1/sqrt(number of values)).
    flat = x.flatten(1)
    mean = flat.mean(dim=1).view(-1, 1, 1, 1)
    std = flat.std(dim=1, unbiased=True)
    floor = torch.full_like(std, 1.0 / float(flat.shape[1]) ** 0.5)
    return (x - mean) / torch.maximum(std, floor).view(-1, 1, 1, 1)


def embed_in_batches(
    crops: np.ndarray, batch: int, dim: int, embed_batch: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """N crops through `embed_batch`, `batch` at a time, as one N x dim array (0 x dim for none)."""
    if len(crops) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    parts = [embed_batch(crops[i : i + batch]) for i in range(0, len(crops), batch)]
    return np.concatenate(parts)


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class TorchEmbedder:
    """Runs the network channels_last, in batches of `batch`: fp16 on CUDA; on the CPU in fp32,
    or in bf16 when asked (whether bf16 is the faster here is measured: ml/cpu_precision.py).
    Vectors are normalised in fp32.

    The bf16 network is converted once, weights and all, rather than run under autocast, which
    casts every weight again on each call (what each costs and how far bf16 vectors drift from
    fp32: docs/performance.md, `python -m benchmarks.precision`).
    """

    def __init__(
        self,
        spec: ModelSpec,
        network: nn.Module,
        device: torch.device,
        batch: int = 32,
        full_precision: bool = False,
        cpu_bf16: bool = False,
    ):
        self.dim = spec.embedding_dim
        self.spec = spec
        self.device = device
        self.batch = batch
        self.half = device.type == "cuda" and not full_precision
        self.bf16 = device.type == "cpu" and cpu_bf16 and not full_precision
        self.dtype = torch.float16 if self.half else torch.bfloat16 if self.bf16 else torch.float32
        # Converted whatever the network came in (one copied from a reduced-precision embedder
        # runs in fp32 again).
        network = fold_batch_norms(network.eval()).to(device, self.dtype)
        self.network = network.to(memory_format=torch.channels_last)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return embed_in_batches(crops, self.batch, self.dim, self._embed_chunk)

    def _embed_chunk(self, crops: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).to(self.device)
        x = standardise(batch, self.spec.standardisation).to(self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            vectors = self.network(x).float()
        # Normalise again in fp32: the network's own normalisation ran in fp16 or bf16.
        vectors = torch.nn.functional.normalize(vectors, dim=1)
        return np.asarray(vectors.cpu().numpy(), dtype=np.float32)
