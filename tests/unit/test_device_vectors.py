"""Exact search on a torch device against FAISS: same neighbours, same scores within the
precision of the device's dtype, through upserts, removals, slot reuse and chunked scans."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from service.index import device_vectors
from service.index.collection_index import CollectionIndex, IndexOptions
from service.index.device_vectors import DeviceFlatVectors, DeviceMatrix
from service.index.searcher import BatchedSearch, DirectSearch, SearchRequest
from service.index.vectors import FlatVectors, deserialize

CPU = torch.device("cpu")


def units(count: int, seed: int, dim: int = 32) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def churned(vector_sets: list[FlatVectors | DeviceMatrix]) -> np.ndarray:
    """Apply the same adds, replacements and removals to each set; returns queries."""
    data, replacements = units(3000, seed=1), units(2, seed=9)
    for vectors in vector_sets:
        vectors.upsert(np.arange(1, 2001), data[:2000])
        vectors.remove(np.arange(1, 2001, 3))  # frees slots in the middle
        vectors.upsert(np.arange(2001, 3001), data[2000:])  # reuses them, then grows
        vectors.upsert(np.array([2, 5]), replacements)  # replaced in place
        vectors.remove(np.array([3, 99_999]))  # an unknown id is a no-op
    return np.vstack([replacements, data[2500:2510], units(20, seed=2)])


def assert_same_hits(
    expected: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], atol: float
) -> None:
    (want_scores, want_ids), (scores, ids) = expected, got
    assert scores.shape == want_scores.shape and ids.shape == want_ids.shape
    assert np.allclose(scores, want_scores, atol=atol)
    for row in range(len(ids)):
        # Neighbours whose scores tie within the tolerance may swap places; all others match.
        clear = np.abs(want_scores[row] - want_scores[row][-1]) > 2 * atol
        assert set(ids[row][clear]) == set(want_ids[row][clear])


def test_fp32_matches_faiss_through_churn() -> None:
    faiss_flat, matrix = FlatVectors(32), DeviceMatrix(32, CPU)
    queries = churned([faiss_flat, matrix])
    assert (
        len(matrix) == len(faiss_flat) == 2000 - 667 + 1000 - 1
    )  # id 3 removed, 99,999 never there
    assert_same_hits(faiss_flat.search(queries, 50), matrix.search(queries, 50), atol=1e-5)
    _, ids = matrix.search(queries[:2], 3)
    assert ids[0][0] == 2 and ids[1][0] == 5  # the replaced vectors answer for their ids


def test_fp16_stays_within_half_precision_of_faiss() -> None:
    faiss_flat, matrix = FlatVectors(32), DeviceMatrix(32, CPU, dtype=torch.float16)
    queries = churned([faiss_flat, matrix])
    assert_same_hits(faiss_flat.search(queries, 20), matrix.search(queries, 20), atol=2e-3)


def test_chunked_scan_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = DeviceMatrix(32, CPU)
    queries = churned([matrix])
    whole = matrix.search(queries, 40)
    monkeypatch.setattr(device_vectors, "SCORE_BUDGET", 30 * 100)  # 100-row chunks
    chunked = matrix.search(queries, 40)
    assert np.array_equal(whole[1], chunked[1]) and np.allclose(whole[0], chunked[0])


def test_removed_vectors_never_come_back_and_small_sets_return_fewer() -> None:
    matrix = DeviceMatrix(32, CPU)
    data = units(3, seed=3)
    matrix.upsert(np.array([10, 11, 12]), data)
    matrix.remove(np.array([10, 12]))
    scores, ids = matrix.search(data, 5)
    assert ids.tolist() == [[11], [11], [11]] and scores.shape == (3, 1)
    matrix.remove(np.array([11]))
    assert matrix.search(data, 5)[1].shape == (3, 0)


def test_device_flat_vectors_restore_from_a_faiss_snapshot() -> None:
    source = DeviceFlatVectors(32, CPU)
    queries = churned([source])
    restored = DeviceFlatVectors(32, CPU, deserialize(32, source.serialize(), nprobe=1).index)
    assert_same_hits(source.search(queries, 10), restored.search(queries, 10), atol=1e-6)
    assert_same_hits(FlatVectors.search(restored, queries, 10), restored.search(queries, 10), 1e-5)


def test_index_options_choose_the_search_device() -> None:
    assert type(IndexOptions("flat", 200_000, 512, "").exact(8)) is FlatVectors
    assert type(IndexOptions("flat", 200_000, 512, "cpu").exact(8)) is DeviceFlatVectors


def filled_index(pk: int, seed: int) -> CollectionIndex:
    index = CollectionIndex(pk, 32, "m", IndexOptions("flat", 200_000, 512, "cpu"))
    index.faces.upsert(np.arange(1, 501), units(500, seed=seed))
    index.users.upsert(np.arange(1, 51), units(50, seed=seed + 1))
    return index


def test_batched_search_answers_each_request_as_alone() -> None:
    indexes = [filled_index(1, seed=10), filled_index(2, seed=20)]
    requests = [
        SearchRequest(
            indexes[i % 2], among="users" if i % 3 == 0 else "faces", query=query, k=1 + i % 7
        )
        for i, query in enumerate(units(60, seed=30))
    ]
    expected = [DirectSearch().search(request) for request in requests]
    batched = BatchedSearch(max_batch=16, max_wait_s=0.02, max_queue=64)
    with ThreadPoolExecutor(len(requests)) as clients:  # concurrent callers
        results = list(clients.map(batched.search, requests))
    batched.close()
    for position, (scores, ids) in enumerate(expected):
        assert np.array_equal(results[position][1], ids)
        assert np.allclose(results[position][0], scores, atol=1e-6)


@pytest.mark.cuda
def test_cuda_fp16_search_matches_faiss() -> None:
    faiss_flat, matrix = FlatVectors(32), DeviceMatrix(32, torch.device("cuda"))
    assert matrix.dtype == torch.float16
    queries = churned([faiss_flat, matrix])
    assert_same_hits(faiss_flat.search(queries, 20), matrix.search(queries, 20), atol=2e-3)
