"""How stored-video jobs run (from FACEBANK_VIDEO_* settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoOptions:
    sample_ms: int = 200
    max_bytes: int = 10 * 1024**3
    max_duration_s: float = 6 * 3600
    max_jobs: int = 20
    workers: int = 1
    lease_s: float = 30.0
    max_attempts: int = 3
    retention_s: float = 7 * 86400
    decode_on_gpu: bool = False  # NVDEC, where FFmpeg reaches a CUDA device
