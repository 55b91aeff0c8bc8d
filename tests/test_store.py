"""Store contract: exact search equals brute force; save → load is identical; ids behave."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qabot import store
from qabot.errors import IndexIncompatible, IndexNotFound


def unit(rng: np.random.Generator, n: int, d: int = 32) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(ids: np.ndarray) -> list[store.PassageRecord]:
    return [store.PassageRecord(int(i), f"doc{int(i) % 7}.txt", 0, 4, f"text {i}") for i in ids]


def manifest(dim: int = 32) -> dict:
    return {"model": {"name": "m", "dim": dim}, "chunker": {}, "encoder": None, "seeds": ".",
            "next_id": 0, "articles": {}}


def test_search_matches_brute_force_and_survives_save_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs, queries = unit(rng, 500), unit(rng, 20)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = store.new_vectors(32)
    index.add_with_ids(vecs, ids)
    scores, got = index.search(queries, 10)
    brute = np.argsort(-(queries @ vecs.T), axis=1)[:, :10] + 1000
    assert (got == brute).all()
    np.testing.assert_allclose(scores, np.sort(queries @ vecs.T, axis=1)[:, ::-1][:, :10], rtol=1e-5)

    store.commit(tmp_path, manifest(), index, records(ids))
    snap = store.load_snapshot(tmp_path)
    s2, g2 = snap.vectors.search(queries, 10)
    assert (g2 == got).all() and np.array_equal(s2, scores)
    assert len(snap.passages) == 500 and snap.manifest["passage_count"] == 500


def test_remove_and_add_change_count_and_results() -> None:
    rng = np.random.default_rng(1)
    vecs = unit(rng, 100)
    index = store.new_vectors(32)
    index.add_with_ids(vecs, np.arange(100, dtype=np.int64))
    store.remove_ids(index, range(10))
    assert index.ntotal == 90
    _, got = index.search(vecs[:10], 1)
    assert not set(got[:, 0].tolist()) & set(range(10))
    index.add_with_ids(vecs[:1], np.array([555], dtype=np.int64))
    _, got = index.search(vecs[:1], 1)
    assert index.ntotal == 91 and got[0, 0] == 555


def test_load_refuses_mismatches_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="qabot index"):
        store.load_snapshot(tmp_path)
    index = store.new_vectors(32)
    store.commit(tmp_path, manifest(), index, [])
    with pytest.raises(IndexIncompatible, match="built with model 'm'.*--rebuild"):
        store.load_snapshot(tmp_path, model="other")
    data = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(dict(data, format_version=99)))
    with pytest.raises(IndexIncompatible, match="format version 99.*--rebuild"):
        store.load_snapshot(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(dict(data, model={"name": "m", "dim": 64})))
    with pytest.raises(IndexIncompatible, match="inconsistent"):
        store.load_snapshot(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IndexIncompatible, match="not valid JSON"):
        store.load_snapshot(tmp_path)
