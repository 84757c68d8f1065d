"""What this machine's CPU is, as benchmarks and the start-up log name it: the model, the core
count, and the instruction sets whose presence decides which precision and kernels can be fast
(read from /proc/cpuinfo on Linux; elsewhere only what the platform module knows)."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("facebank.models")
Output = TypeVar("Output")
PROBE_REPEATS = 3

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


def timed_ms(call: Callable[[Any], Output], inputs: Any) -> tuple[float, Output]:
    start = time.perf_counter()
    output = call(inputs)
    return (time.perf_counter() - start) * 1000.0, output


def best_ms(
    call: Callable[[Any], Output], inputs: Any, give_up_ms: float = math.inf
) -> tuple[float, Output]:
    """The best of PROBE_REPEATS timed calls after a warm one (oneDNN creates its primitives
    on the first call), or of fewer once a call takes longer than `give_up_ms`; with what the
    last call gave."""
    call(inputs)
    times = []
    for _ in range(PROBE_REPEATS):
        took, output = timed_ms(call, inputs)
        times.append(took)
        if took > give_up_ms:
            break
    return round(min(times), 1), output


def read_cached(cache: Path | None, key: dict[str, Any]) -> dict[str, Any] | None:
    """A measurement stored by `store_cached` under the same key, or None."""
    if cache is None or not cache.exists():
        return None
    try:
        stored = json.loads(cache.read_text())
        if stored["key"] != key:
            return None
        return dict(stored["choice"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("the measurement cache %s is unreadable (%s): measuring again", cache, exc)
        return None


def store_cached(cache: Path, key: dict[str, Any], choice: dict[str, Any]) -> None:
    """Written whole or not at all; a data dir that cannot take it only costs a measurement at
    the next start."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial")
        partial.write_text(json.dumps({"key": key, "choice": choice}, indent=2) + "\n")
        partial.replace(cache)
    except OSError as exc:
        log.warning("the measurement was not cached in %s: %s", cache, exc)


def machine_key() -> dict[str, Any]:
    """What a CPU measurement depends on: a change in any of these measures again."""
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        "torch": _torch_version(),
        "threads": _torch_threads(),
    }


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())
