"""Running searches against a collection index: one at a time, or batched across requests.

A request syncs its index first (so the search sees every write committed before it began),
then hands its query to a searcher. `BatchedSearch` stacks the queries that concurrent requests
aim at the same vector set into one matrix product, which is where a GPU earns its keep: a
10M-vector scan costs about the same for 1 query as for 100. The index lock is held only while
the vectors are read, never while a request waits in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from service.batching import BatchedStage
from service.index.collection_index import CollectionIndex

Among = Literal["faces", "users"]
Found = tuple[np.ndarray, np.ndarray]  # (scores, ids) of one query, best first


@dataclass(frozen=True)
class SearchRequest:
    index: CollectionIndex
    among: Among  # the collection's face vectors or its user vectors
    query: np.ndarray  # one unit vector
    k: int


class Searcher(Protocol):
    def search(self, request: SearchRequest) -> Found: ...

    def close(self) -> None: ...


def search_together(requests: list[SearchRequest]) -> list[Found]:
    """Each request's hits; requests on the same vector set share one search call."""
    groups: dict[tuple[int, Among], list[int]] = {}
    for position, request in enumerate(requests):
        groups.setdefault((id(request.index), request.among), []).append(position)
    found: dict[int, Found] = {}
    for positions in groups.values():
        first = requests[positions[0]]
        queries = np.stack([requests[p].query for p in positions]).astype(np.float32)
        k = max(requests[p].k for p in positions)
        with first.index.lock:
            vectors = first.index.users if first.among == "users" else first.index.faces
            scores, ids = vectors.search(queries, k)
        for row, position in enumerate(positions):
            wanted = requests[position].k
            found[position] = (scores[row, :wanted], ids[row, :wanted])
    return [found[position] for position in range(len(requests))]


class DirectSearch:
    """Each search runs in its caller's thread."""

    def search(self, request: SearchRequest) -> Found:
        return search_together([request])[0]

    def close(self) -> None:
        pass


class BatchedSearch(BatchedStage[SearchRequest, Found]):
    """Searches from concurrent requests share passes, through a bounded queue and a worker."""

    def __init__(
        self, max_batch: int, max_wait_s: float, max_queue: int, timeout_s: float = 60.0
    ) -> None:
        super().__init__("search", search_together, max_batch, max_wait_s, max_queue, timeout_s)

    def search(self, request: SearchRequest) -> Found:
        return self.call(request)
