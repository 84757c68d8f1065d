"""What this machine's CPU is, as benchmarks and the start-up log name it: the model, the core
count, and the instruction sets whose presence decides which precision and kernels can be fast
(read from /proc/cpuinfo on Linux; elsewhere only what the platform module knows)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The flags that matter to the embedder's precision and oneDNN's kernels, as /proc/cpuinfo
# spells them.
NAMED_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512_fp16", "avx_vnni", "avx512f", "avx2")


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of NAMED_FLAGS this CPU reports, in NAMED_FLAGS's order."""
    present = set((_cpuinfo_field("flags") or "").split())
    return [flag for flag in NAMED_FLAGS if flag in present]


def describe_cpu() -> dict[str, object]:
    return {"model": cpu_model(), "cores": os.cpu_count(), "flags": cpu_flags()}
