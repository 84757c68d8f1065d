"""Exact inner-product search on a torch device (fp16 matmul + top-k on CUDA, fp32 on the CPU).

`DeviceFlatVectors` keeps the FAISS flat index of `FlatVectors` on the host, which snapshots,
reconstruction and IVF training read, and mirrors it into a `DeviceMatrix` where searches run.
The mirror is maintained in place: a vector occupies a slot; removal frees the slot (masked out
of every search) and later additions reuse it, so writes never re-upload the collection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from service.index.vectors import FlatVectors

# Scores held at once by a batched search: queries x rows, in the matrix's dtype. Larger
# collections are scanned in row chunks whose per-chunk top-k are merged.
SCORE_BUDGET = 1 << 27


def search_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (half the bytes to read; unit vectors lose < 1e-3 of a score), fp32 on the
    CPU, where fp16 matmul is slower than fp32."""
    return torch.float16 if device.type == "cuda" else torch.float32


class DeviceMatrix:
    """Unit vectors in slots of a device matrix, searched by inner product."""

    def __init__(self, dim: int, device: torch.device, dtype: torch.dtype | None = None) -> None:
        self.dim = dim
        self.device = device
        self.dtype = dtype or search_dtype(device)
        self.rows = torch.zeros((0, dim), dtype=self.dtype, device=device)
        self.slot_ids = torch.zeros(0, dtype=torch.int64, device=device)  # -1: free slot
        self.used = 0  # slots [0, used) have held a vector; free ones among them are listed
        self.free: list[int] = []
        self.slot_of: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.slot_of)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        slots = self._slots_for([int(i) for i in ids])
        index = torch.as_tensor(slots, dtype=torch.int64).to(self.device)
        values = np.ascontiguousarray(vectors, dtype=np.float32)
        # Vectors read from the database are read-only views of its bytes; torch wants writable
        # memory although nothing here writes to it (the copy happens into `rows`).
        values = values if values.flags.writeable else values.copy()
        self.rows[index] = torch.from_numpy(values).to(self.device).to(self.dtype)
        self.slot_ids[index] = torch.as_tensor(np.asarray(ids, dtype=np.int64)).to(self.device)

    def remove(self, ids: np.ndarray) -> None:
        popped = (self.slot_of.pop(int(vector_id), None) for vector_id in ids)
        freed = [slot for slot in popped if slot is not None]  # absent ids are a no-op
        if freed:
            self.slot_ids[torch.as_tensor(freed, dtype=torch.int64).to(self.device)] = -1
            self.free.extend(freed)

    def _slots_for(self, ids: list[int]) -> list[int]:
        """Each id's slot: its current one, else a freed one, else a new one at the end."""
        slots = []
        for vector_id in ids:
            slot = self.slot_of.get(vector_id)
            if slot is None:
                slot = self.free.pop() if self.free else self._next_slot()
                self.slot_of[vector_id] = slot
            slots.append(slot)
        return slots

    def _next_slot(self) -> int:
        if self.used == len(self.rows):
            self._grow(max(1024, 2 * len(self.rows)))
        self.used += 1
        return self.used - 1

    def _grow(self, capacity: int) -> None:
        rows = torch.zeros((capacity, self.dim), dtype=self.dtype, device=self.device)
        rows[: self.used] = self.rows[: self.used]
        slot_ids = torch.full((capacity,), -1, dtype=torch.int64, device=self.device)
        slot_ids[: self.used] = self.slot_ids[: self.used]
        self.rows, self.slot_ids = rows, slot_ids

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each Q x min(k, size), best first."""
        k = min(k, len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        query = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        query = query.to(self.device).to(self.dtype)
        scores, slots = self._top_slots(query, k)
        ids = self.slot_ids[slots]
        return scores.float().cpu().numpy(), ids.cpu().numpy()

    def _top_slots(self, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = max(k, SCORE_BUDGET // max(1, len(query)))
        best: list[tuple[torch.Tensor, torch.Tensor]] = []
        for start in range(0, self.used, chunk):
            stop = min(self.used, start + chunk)
            scores = query @ self.rows[start:stop].T
            scores.masked_fill_(self.slot_ids[start:stop] < 0, float("-inf"))
            top = scores.topk(min(k, stop - start), dim=1)
            best.append((top.values, top.indices + start))
        if len(best) == 1:
            return best[0]
        values = torch.cat([v for v, _ in best], dim=1)
        slots = torch.cat([s for _, s in best], dim=1)
        top = values.topk(k, dim=1)
        return top.values, slots.gather(1, top.indices)


def warm_up(dim: int, device: torch.device) -> None:
    """One small search, so the first request does not pay for the BLAS/top-k initialisation."""
    matrix = DeviceMatrix(dim, device)
    vectors = np.eye(2, dim, dtype=np.float32)
    matrix.upsert(np.array([1, 2]), vectors)
    matrix.search(vectors, 2)


class DeviceFlatVectors(FlatVectors):
    """A FAISS flat index whose searches run on a torch device."""

    def __init__(self, dim: int, device: torch.device, index: Any = None) -> None:
        super().__init__(dim, index)
        self.matrix = DeviceMatrix(dim, device)
        if len(self):
            self.matrix.upsert(self.ids(), self.vectors())

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        super().upsert(ids, vectors)
        self.matrix.upsert(np.asarray(ids, dtype=np.int64), vectors)

    def remove(self, ids: np.ndarray) -> None:
        super().remove(ids)
        self.matrix.remove(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.matrix.search(queries, k)
