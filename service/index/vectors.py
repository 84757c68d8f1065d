"""FAISS inner-product indexes keyed by database primary keys.

`FlatVectors` is exact (IndexFlatIP behind an IndexIDMap2). `IvfVectors` is IndexIVFFlat for
very large collections: vectors are bucketed around `nlist` trained centroids and a query scans
the `nprobe` nearest buckets, trading recall for speed. Both support removal by id, which
deletes need (FAISS's HNSW cannot remove, so it is not offered).
"""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np


def _as_f32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


class FlatVectors:
    """Exact search; upsert and remove by id."""

    def __init__(self, dim: int, index: Any = None) -> None:
        self.dim = dim
        # faiss's SWIG classes are typed loosely: their methods take numpy arrays.
        self.index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # Database ids only grow, so new faces sort above every indexed id and need no
        # duplicate check; only replays (after a rebuild or restart) pay for one.
        self.max_id = int(self.ids().max(initial=-1)) if len(self) else -1

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return np.asarray(faiss.vector_to_array(self.index.id_map), dtype=np.int64)

    def vectors(self) -> np.ndarray:
        return np.asarray(self.index.index.reconstruct_n(0, len(self)), dtype=np.float32)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; ids already present are replaced, never duplicated."""
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min() <= self.max_id:
            present = ids[np.isin(ids, self.ids())]
            if len(present):
                self.remove(present)
        self.index.add_with_ids(_as_f32(vectors), ids)
        self.max_id = max(self.max_id, int(ids.max()))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each Q x k' with k' = min(k, size); missing slots have id -1."""
        k = min(k, len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = self.index.search(_as_f32(queries), k)
        return scores, ids

    def serialize(self) -> np.ndarray:
        return np.asarray(faiss.serialize_index(self.index))


class IvfVectors(FlatVectors):
    """Approximate search over `nlist` inverted lists, `nprobe` of them per query."""

    def __init__(self, dim: int, index: Any, nprobe: int) -> None:
        super().__init__(dim, index)
        self.index.nprobe = nprobe

    @classmethod
    def train_from(cls, flat: FlatVectors, nprobe: int, seed: int = 0) -> IvfVectors:
        vectors, ids = flat.vectors(), flat.ids()
        nlist = max(16, min(65_536, int(4 * math.sqrt(len(vectors)))))
        quantizer = faiss.IndexFlatIP(flat.dim)
        index = faiss.IndexIVFFlat(quantizer, flat.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).permutation(len(vectors))[: nlist * 64]
        index.train(vectors[sample])
        index.add_with_ids(vectors, ids)
        return cls(flat.dim, index, nprobe)

    def ids(self) -> np.ndarray:
        invlists = self.index.invlists
        lists = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i))
            for i in range(invlists.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, np.int64)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min() <= self.max_id:
            self.remove(ids)  # removal of absent ids is a no-op
        self.index.add_with_ids(_as_f32(vectors), ids)
        self.max_id = max(self.max_id, int(ids.max()))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))


VectorSet = FlatVectors | IvfVectors


def deserialize(dim: int, data: np.ndarray, nprobe: int) -> VectorSet:
    index = faiss.deserialize_index(data)
    if index.d != dim:
        raise ValueError(f"snapshot holds {index.d}-d vectors, expected {dim}")
    if isinstance(index, faiss.IndexIVF):
        return IvfVectors(dim, index, nprobe)
    return FlatVectors(dim, index)
