"""A FAISS inner-product index keyed by database primary keys."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np


class VectorSet:
    """Exact inner-product search (IndexFlatIP) with int64 ids; upsert and remove by id."""

    def __init__(self, dim: int, index: Any = None) -> None:
        self.dim = dim
        # faiss's SWIG classes are typed loosely: IndexIDMap2 methods take numpy arrays.
        self.index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return np.asarray(faiss.vector_to_array(self.index.id_map), dtype=np.int64)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; ids already present are replaced, never duplicated."""
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        present = ids[np.isin(ids, self.ids())]
        if len(present):
            self.remove(present)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each Q x k' with k' = min(k, size); missing slots have id -1."""
        k = min(k, len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def serialize(self) -> np.ndarray:
        return np.asarray(faiss.serialize_index(self.index))

    @classmethod
    def deserialize(cls, dim: int, data: np.ndarray) -> VectorSet:
        index = faiss.deserialize_index(data)
        if index.d != dim:
            raise ValueError(f"snapshot holds {index.d}-d vectors, expected {dim}")
        return cls(dim, index)
