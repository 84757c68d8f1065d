from __future__ import annotations

import numpy as np
import pytest

from service.index.vectors import FlatVectors, IvfVectors, deserialize


def units(count: int, seed: int, dim: int = 16) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def test_flat_upsert_replaces_instead_of_duplicating() -> None:
    flat = FlatVectors(16)
    vectors = units(5, seed=1)
    flat.upsert(np.arange(5), vectors)
    flat.upsert(np.array([2]), vectors[4:5])
    assert len(flat) == 5
    scores, ids = flat.search(vectors[4:5], 2)
    assert set(ids[0]) == {2, 4} and np.allclose(scores[0], 1.0, atol=1e-5)


def test_flat_remove_and_empty_search() -> None:
    flat = FlatVectors(16)
    assert flat.search(units(1, seed=2), 5)[1].shape == (1, 0)
    flat.upsert(np.array([7, 8]), units(2, seed=3))
    flat.remove(np.array([7, 99]))
    assert flat.ids().tolist() == [8]


@pytest.mark.parametrize("cls", ["flat", "ivf"])
def test_serialise_round_trip(cls: str) -> None:
    flat = FlatVectors(16)
    flat.upsert(np.arange(2000), units(2000, seed=4))
    vectors = flat if cls == "flat" else IvfVectors.train_from(flat, nprobe=64)
    restored = deserialize(16, vectors.serialize(), nprobe=64)
    assert type(restored) is type(vectors)
    assert sorted(restored.ids().tolist()) == list(range(2000))


def test_ivf_finds_exact_neighbours_with_enough_probes_and_removes() -> None:
    flat = FlatVectors(16)
    data = units(3000, seed=5)
    flat.upsert(np.arange(3000), data)
    ivf = IvfVectors.train_from(flat, nprobe=10_000)  # probing every list is exact
    _, exact = flat.search(data[:20], 5)
    _, approx = ivf.search(data[:20], 5)
    assert (exact == approx).all()
    ivf.remove(np.array([0, 1]))
    ivf.upsert(np.array([5]), data[6:7])
    assert len(ivf) == 2998
    assert 0 not in ivf.search(data[:1], 5)[1][0]
