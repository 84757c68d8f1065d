"""Recall and speed of the IVF index option against exact search.

    python -m benchmarks.ivf_recall [--faces 200000] [--nprobe 8 32 128]

Synthetic 128-d face-like vectors: identities of 10 faces each, every face a noisy copy of its
identity's centre (within-identity cosine about 0.7, like genuine FaceNet pairs here), plus the
same number of unclustered faces. Queries are fresh faces of enrolled identities. Recall@k is
the share of the exact top-k ids that IVF also returns; fixed seeds; timings are single-query
p50 over 200 queries after 10 warm-ups.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks import RESULTS
from benchmarks.search_scale import random_units
from service.index.vectors import FlatVectors, IvfVectors

DIM = 128
NOISE = 0.06  # per-dimension noise giving a within-identity cosine near 0.7


def clustered(faces: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    identities = faces // 20
    centres = random_units(identities, DIM, rng)
    members = np.repeat(centres, 10, axis=0) + rng.normal(scale=NOISE, size=(identities * 10, DIM))
    members /= np.linalg.norm(members, axis=1, keepdims=True)
    data = np.vstack([members, random_units(faces - len(members), DIM, rng)]).astype(np.float32)
    queries = centres[:200] + rng.normal(scale=NOISE, size=(200, DIM))
    return data, (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def p50_ms(vectors: FlatVectors, queries: np.ndarray, k: int) -> float:
    for query in queries[:10]:
        vectors.search(query[None], k)
    samples = []
    for query in queries:
        start = time.perf_counter()
        vectors.search(query[None], k)
        samples.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(samples, 50))


def recall(exact: np.ndarray, approx: np.ndarray) -> float:
    return float(
        np.mean([len(set(e) & set(a)) / len(e) for e, a in zip(exact, approx, strict=True)])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=200_000)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 128])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data, queries = clustered(args.faces, rng)
    flat = FlatVectors(DIM)
    flat.upsert(np.arange(len(data)), data)
    _, exact10 = flat.search(queries, 10)
    started = time.perf_counter()
    ivf = IvfVectors.train_from(flat, nprobe=args.nprobe[0])
    rows = [
        {
            "index": "flat",
            "p50_ms": p50_ms(flat, queries, 10),
            "recall_at_1": 1.0,
            "recall_at_10": 1.0,
        }
    ]
    train_s = time.perf_counter() - started
    for nprobe in args.nprobe:
        ivf.index.nprobe = nprobe
        _, approx = ivf.search(queries, 10)
        rows.append(
            {
                "index": f"ivf nlist={ivf.index.nlist} nprobe={nprobe}",
                "p50_ms": p50_ms(ivf, queries, 10),
                "recall_at_1": recall(exact10[:, :1], approx[:, :1]),
                "recall_at_10": recall(exact10, approx),
            }
        )
    report = {"faces": args.faces, "ivf_train_seconds": train_s, "results": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ivf-recall-{args.faces}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"training {train_s:.1f} s")
    for row in rows:
        print(
            f"{row['index']:<32} p50 {row['p50_ms']:7.2f} ms  recall@1 {row['recall_at_1']:.3f}"
            f"  recall@10 {row['recall_at_10']:.3f}"
        )


if __name__ == "__main__":
    main()
