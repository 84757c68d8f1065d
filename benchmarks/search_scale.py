"""Exact search latency over synthetic collections (the CPU FAISS index the server uses).

    python -m benchmarks.search_scale [--sizes 100000 1000000] [--dim 128]

Random unit vectors, fixed seed; 5 warm-up queries discarded; single-query p50/p95 over 50
queries, and batched throughput (batches of 64). Next to it, the memory-bandwidth floor of one
scan: N x dim x 4 bytes read per query.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import faiss
import numpy as np

from benchmarks import RESULTS
from service.index.vectors import FlatVectors


def random_units(count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    chunks = []
    for start in range(0, count, 200_000):
        block = rng.standard_normal((min(200_000, count - start), dim), dtype=np.float32)
        chunks.append(block / np.linalg.norm(block, axis=1, keepdims=True))
    return np.vstack(chunks)


def measure(size: int, dim: int, rng: np.random.Generator) -> dict[str, float]:
    vectors = FlatVectors(dim)
    vectors.upsert(np.arange(1, size + 1), random_units(size, dim, rng))
    queries = random_units(64 * 4, dim, rng)
    for query in queries[:5]:
        vectors.search(query[None], 80)
    single = []
    for query in queries[:50]:
        start = time.perf_counter()
        vectors.search(query[None], 80)
        single.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for batch in range(4):
        vectors.search(queries[batch * 64 : (batch + 1) * 64], 80)
    batched_qps = 256 / (time.perf_counter() - start)
    return {
        "vectors": float(size),
        "single_p50_ms": float(np.percentile(single, 50)),
        "single_p95_ms": float(np.percentile(single, 95)),
        "batched_qps": batched_qps,
        "scan_bytes": float(size * dim * 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = [measure(size, args.dim, rng) for size in args.sizes]
    report = {
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "dim": args.dim,
        "k": 80,
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search-scale-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'vectors':>10} {'p50 ms':>8} {'p95 ms':>8} {'batched q/s':>12} {'GB/scan':>8}")
    for row in rows:
        print(
            f"{int(row['vectors']):>10} {row['single_p50_ms']:8.2f} {row['single_p95_ms']:8.2f} "
            f"{row['batched_qps']:12.0f} {row['scan_bytes'] / 1e9:8.3f}"
        )


if __name__ == "__main__":
    main()
