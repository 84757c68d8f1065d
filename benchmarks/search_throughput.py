"""Exact search on the server's search device against collection size, next to the bandwidth bound.

    python -m benchmarks.search_throughput [--device cpu|cuda] [--sizes 100000 1000000 10000000]

For each size, synthetic 128-d unit vectors (fixed seed) go into the `DeviceMatrix` the torch
search backend uses (fp16 on CUDA, fp32 on the CPU), through its normal upsert path. Measured:
- single queries (k = 81, what SearchFacesByImage asks for by default): p50/p99 over 50, after
  5 warm-ups; each time includes the copy of the hits back to the host;
- batched queries: queries/s for batches of 256, as concurrent requests reach the batcher;
- the bound: one scan reads N x 128 x itemsize bytes, at the device's copy bandwidth (measured
  here as a device-to-device copy of 1 GiB, counting its reads and writes);
- agreement with FAISS's exact CPU index (sizes up to 1M): the share of FAISS's top 10 that the
  device search also returns, over 50 queries.
Also run by `python -m benchmarks.throughput`, which puts these rows in its results file.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from benchmarks import RESULTS
from benchmarks.search_scale import random_units
from service.index.device_vectors import DeviceMatrix
from service.index.vectors import FlatVectors

DIM, K, BATCH = 128, 81, 256
LOAD_CHUNK = 1_000_000
FAISS_CHECK_LIMIT = 1_000_000


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device, gib: float = 1.0) -> float:
    """Bytes/s a device-to-device copy moves (reads plus writes): what a scan can hope for."""
    source = torch.empty(int(gib * 2**30), dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    synchronize(device)
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        target.copy_(source)
    synchronize(device)
    return 2 * source.numel() * repeats / (time.perf_counter() - start)


def filled_matrix(size: int, device: torch.device, rng: np.random.Generator) -> DeviceMatrix:
    matrix = DeviceMatrix(DIM, device)
    for start in range(0, size, LOAD_CHUNK):
        count = min(LOAD_CHUNK, size - start)
        matrix.upsert(np.arange(start + 1, start + count + 1), random_units(count, DIM, rng))
    return matrix


def single_query_ms(matrix: DeviceMatrix, queries: np.ndarray) -> list[float]:
    for query in queries[:5]:
        matrix.search(query[None], K)
    samples = []
    for query in queries[5:55]:
        start = time.perf_counter()
        matrix.search(query[None], K)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def batched_qps(matrix: DeviceMatrix, queries: np.ndarray, batches: int = 4) -> float:
    matrix.search(queries[:BATCH], K)  # warm-up at this batch shape
    start = time.perf_counter()
    for batch in range(batches):
        matrix.search(queries[batch * BATCH : (batch + 1) * BATCH], K)
    return batches * BATCH / (time.perf_counter() - start)


def faiss_agreement(size: int, matrix: DeviceMatrix, queries: np.ndarray) -> float:
    """Share of FAISS's exact top 10 that the device search also returns (1.0: identical sets)."""
    ids = np.arange(1, size + 1)
    flat = FlatVectors(DIM)
    order = np.argsort(matrix.slot_ids[: matrix.used].cpu().numpy())
    rows = matrix.rows[: matrix.used].float().cpu().numpy()[order]  # the same vectors, by id
    flat.upsert(ids, rows)
    _, expected = flat.search(queries, 10)
    _, got = matrix.search(queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(expected, got, strict=True)]))


def measure_size(size: int, device: torch.device, bandwidth: float) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    start = time.perf_counter()
    matrix = filled_matrix(size, device, rng)
    synchronize(device)
    load_s = time.perf_counter() - start
    queries = random_units(max(55, 4 * BATCH + BATCH), DIM, rng)
    single = single_query_ms(matrix, queries)
    scan_bytes = size * DIM * matrix.rows.element_size()
    row: dict[str, Any] = {
        "vectors": size,
        "dtype": str(matrix.dtype).removeprefix("torch."),
        "load_s": load_s,
        "single_p50_ms": float(np.percentile(single, 50)),
        "single_p99_ms": float(np.percentile(single, 99)),
        "batched_qps": batched_qps(matrix, queries),
        "scan_bytes": scan_bytes,
        "bound_ms": scan_bytes / bandwidth * 1000,
    }
    row["single_p50_over_bound"] = row["single_p50_ms"] / row["bound_ms"]
    if size <= FAISS_CHECK_LIMIT:
        row["faiss_top10_agreement"] = faiss_agreement(size, matrix, queries[:50])
    del matrix
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def run(device: torch.device, sizes: list[int]) -> dict[str, Any]:
    bandwidth = copy_bandwidth(device)
    rows = [measure_size(size, device, bandwidth) for size in sizes]
    return {"copy_bandwidth_gb_s": bandwidth / 1e9, "k": K, "batch": BATCH, "rows": rows}


def print_rows(report: dict[str, Any]) -> None:
    print(f"copy bandwidth {report['copy_bandwidth_gb_s']:.1f} GB/s")
    print(
        f"{'vectors':>10} {'p50 ms':>8} {'p99 ms':>8} {'bound ms':>9} {'p50/bound':>9} "
        f"{'batched q/s':>12} {'vs FAISS':>8}"
    )
    for row in report["rows"]:
        agreement = row.get("faiss_top10_agreement")
        print(
            f"{row['vectors']:>10} {row['single_p50_ms']:8.3f} {row['single_p99_ms']:8.3f} "
            f"{row['bound_ms']:9.3f} {row['single_p50_over_bound']:9.2f} "
            f"{row['batched_qps']:12.0f} {'' if agreement is None else f'{agreement:8.4f}'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    device = torch.device(args.device)
    report = {"device": str(device), **run(device, args.sizes)}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"search-throughput-{device.type}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print_rows(report)


if __name__ == "__main__":
    main()
