"""Store contract, for every vector index type: search against brute force, save → load gives
identical results, add/remove/update behave, switching type keeps every passage findable."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qabot import catalog, store, vectors
from qabot.config import PathSettings, Settings, VectorSettings
from qabot.errors import IndexIncompatible, IndexNotFound
from qabot.manifest import Build, Manifest, Model
from qabot.vectors import Layout

DIM = 32
# (layout, recall@10 it must reach against brute force on clustered data). PQ is lossy by
# design: 4 bytes a vector at 32-d here (48 at 384-d), so its floor is low.
NPROBE = 8  # of the 32 cells of the ivf layouts below: the approximate path
LAYOUTS = {
    "flat": (Layout("flat", "none"), 1.0),
    "flat-float16": (Layout("flat", "float16"), 0.99),
    "flat-sq8": (Layout("flat", "sq8"), 0.9),
    "flat-pq": (Layout("flat", "pq"), 0.3),
    "ivf": (Layout("ivf", "none", nlist=32, trained_on=4000), 0.9),
    "ivf-sq8": (Layout("ivf", "sq8", nlist=32, trained_on=4000), 0.85),
    "ivf-pq": (Layout("ivf", "pq", nlist=32, trained_on=4000), 0.3),
}


def clustered(rng: np.random.Generator, n: int, topics: int = 40) -> np.ndarray:
    """Unit vectors around topic centres, like embeddings (uniform ones have no neighbours)."""
    centres = rng.standard_normal((topics, DIM))
    v = centres[rng.integers(0, topics, n)] + 0.8 * rng.standard_normal((n, DIM))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute(corpus: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    return ids[np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :k]]


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / truth.shape[1]
                          for f, t in zip(found, truth, strict=True)]))


def search_all(index: object, layout: Layout, queries: np.ndarray, k: int = 10,
               nprobe: int = NPROBE) -> list[np.ndarray]:
    return [vectors.search(index, layout, q, k, nprobe=nprobe)[1] for q in queries]


def changes_for(ids: np.ndarray, per_article: int = 10) -> catalog.Changes:
    """Synthetic articles of `per_article` passages each over these passage ids."""
    changes = catalog.Changes()
    for a in range(0, len(ids), per_article):
        doc = f"doc{int(ids[a])}.txt"
        recs = [catalog.PassageRecord(int(i), doc, 10 * j, 10 * j + 9, f"passage {int(i)}")
                for j, i in enumerate(ids[a : a + per_article])]
        changes.articles.append((catalog.ArticleRecord(doc, f"h{a}", "2024-01-02", f"Title {a}"), recs))
    return changes


def manifest(dim: int = DIM) -> Build:
    return Build(Model("m", dim), next_id=0, seeds=".")


def commit(index_dir: Path, build: Build, vecs: np.ndarray, layout: Layout,
           changes: catalog.Changes) -> Manifest:
    """Commit one segment of every live passage with `changes` applied, through the writer."""
    settings = Settings(paths=PathSettings(seeds=index_dir / "seeds", index=index_dir))
    with store.open_writer(settings, log=lambda msg: None) as writer:
        return writer.merge(build, changes, vecs, layout=layout)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    corpus = clustered(rng, 4000)
    queries = clustered(rng, 50)
    return corpus, np.arange(100, 4100, dtype=np.int64), queries


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_search_against_brute_force_and_save_load(name: str, data: tuple, tmp_path: Path) -> None:
    corpus, ids, queries = data
    layout, floor = LAYOUTS[name]
    index = vectors.new_index(layout, DIM, corpus)
    vectors.add(index, ids, corpus)
    assert index.ntotal == len(ids)
    found = search_all(index, layout, queries)
    truth = brute(corpus, ids, queries)
    got = recall(found, truth)
    assert got >= floor, f"{name}: recall@10 {got:.3f} < {floor}"
    if layout.exact:
        assert all((f == t).all() for f, t in zip(found, truth, strict=True))
        scores, _ = vectors.search(index, layout, queries[0], 10, nprobe=NPROBE)
        np.testing.assert_allclose(scores, np.sort(queries[0] @ corpus.T)[::-1][:10], rtol=1e-5)

    # the part writes its index from the same vectors, as the test did: the same index
    committed = commit(tmp_path, manifest(), corpus, layout, changes_for(ids))
    assert committed.layout == layout and committed.passage_count == len(ids)
    snap = store.load_snapshot(tmp_path)
    assert snap.layout == layout
    for q, before in zip(queries, found, strict=True):
        s1, i1 = vectors.search(index, layout, q, 10, nprobe=NPROBE)
        s2, i2 = snap.vectors.search(q, 10, nprobe=NPROBE)
        assert (i1 == i2).all() and (i2 == before).all() and np.array_equal(s1, s2)
    assert len(snap.passages) == len(ids) and snap.passages[int(ids[5])].text == f"passage {ids[5]}"
    assert (snap.rows.ids == ids).all()


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_add_remove_update(name: str, data: tuple) -> None:
    corpus, ids, _ = data
    layout, _ = LAYOUTS[name]
    index = vectors.new_index(layout, DIM, corpus)
    vectors.add(index, ids, corpus)
    gone = ids[:100]
    vectors.remove(index, gone.tolist())
    assert index.ntotal == len(ids) - 100
    for q in corpus[:100]:
        assert not set(vectors.search(index, layout, q, 10, nprobe=NPROBE)[1].tolist()) & set(gone.tolist())
    assert sorted(vectors.all_ids(index).tolist()) == ids[100:].tolist()
    # an update is the old id removed and the new vector added under a fresh id
    vectors.remove(index, [int(ids[200])])
    vectors.add(index, np.array([99_999]), corpus[200:201])
    assert index.ntotal == len(ids) - 100
    assert 99_999 in vectors.search(index, layout, corpus[200], 10, nprobe=NPROBE)[1].tolist()
    assert int(ids[200]) not in vectors.search(index, layout, corpus[200], 10, nprobe=NPROBE)[1].tolist()
    back = vectors.vectors_of(index, np.array([99_999]))[0]
    # stored exactly, or decoded close to it
    assert float(back @ corpus[200]) > {"none": 0.9999, "float16": 0.999, "sq8": 0.99}.get(layout.codec, 0.7)


def test_the_flat_matrix_is_each_ids_stored_vector(data: tuple) -> None:
    corpus, ids, _ = data
    index = vectors.new_index(Layout(), DIM)
    empty, none = vectors.flat_matrix(index)
    assert empty.shape == (0, DIM) and len(none) == 0
    vectors.add(index, ids[1:], corpus[1:])
    vectors.remove(index, ids[1:100:3].tolist())
    vectors.add(index, ids[:1], corpus[:1])  # the smallest id last: rows are not in id order
    matrix, matrix_ids = vectors.flat_matrix(index)
    assert matrix_ids[-1] == ids[0]
    assert sorted(matrix_ids.tolist()) == sorted(set(ids.tolist()) - set(ids[1:100:3].tolist()))
    assert np.array_equal(matrix, corpus[np.searchsorted(ids, matrix_ids)])


def test_switching_type_at_the_threshold_keeps_every_passage_findable(data: tuple) -> None:
    corpus, ids, queries = data
    # auto: flat below the threshold, ivf from it, back to flat below half of it
    auto = VectorSettings(type="auto", ann_threshold=2600)
    assert vectors.choose(2599, auto).type == "flat"
    grown = vectors.choose(2600, auto)
    assert grown.type == "ivf" and grown.trained_on == 2600
    # the query-time default scans part of the cells at this size: the approximate path
    assert 8 <= vectors.nprobe_for(grown.nlist, 0) < grown.nlist, grown
    assert vectors.choose(1500, auto, grown) == grown  # hysteresis
    assert vectors.choose(1299, auto, grown).type == "flat"
    assert vectors.choose(10401, auto, grown).trained_on == 10401  # retrained
    assert vectors.choose(3000, replace(auto, codec="sq8"), grown).codec == "sq8"

    flat = vectors.new_index(Layout(), DIM)
    vectors.add(flat, ids[:2600], corpus[:2600])
    ivf = vectors.convert(flat, grown)
    vectors.add(ivf, ids[2600:], corpus[2600:])
    truth = brute(corpus, ids, queries)
    for layout, index in ((grown, ivf), (Layout(), vectors.convert(ivf, Layout()))):
        assert index.ntotal == len(ids)
        # a passage's own vector lies in the cell whose centre is nearest to it, the first one
        # probed: every passage is found by its own vector even though most cells are skipped
        own = [vectors.search(index, layout, v, 10)[1] for v in corpus]
        assert all(i in f.tolist() for i, f in zip(ids.tolist(), own, strict=True)), layout
        # other questions' neighbours may sit in unprobed cells: a recall floor, not exactness
        found = search_all(index, layout, queries, nprobe=0)  # the query-time default
        assert recall(found, truth) >= (0.95 if layout.type == "ivf" else 1.0)


def test_commit_applies_changes_to_the_previous_generation(data: tuple, tmp_path: Path) -> None:
    corpus, ids, _ = data
    commit(tmp_path, manifest(), corpus[:100], Layout(), changes_for(ids[:100]))
    base = store.load_snapshot(tmp_path, for_merge=True)
    assert len(base.articles) == 10
    doc = f"doc{int(ids[0])}.txt"
    changes = changes_for(ids[100:110])
    changes.removed.append(doc)
    commit(tmp_path, manifest(), corpus[100:110], Layout(), changes)
    snap = store.load_snapshot(tmp_path)
    assert doc not in snap.articles and f"doc{int(ids[100])}.txt" in snap.articles
    assert sorted(snap.passages) == ids[10:110].tolist() == snap.rows.ids.tolist()
    assert snap.manifest.article_count == 10 and snap.manifest.passage_count == 100
    kept = snap.articles[f"doc{int(ids[10])}.txt"]
    assert kept.ids == tuple(ids[10:20].tolist()) and kept.title == "Title 10"
    assert base.catalog.count("passages") == 100  # the previous generation is untouched


def test_an_index_of_format_1_is_upgraded_without_re_embedding(data: tuple, tmp_path: Path) -> None:
    import faiss

    corpus, ids, _ = data
    gen = tmp_path / "gen-000001"
    gen.mkdir()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    index.add_with_ids(corpus[:20], ids[:20])
    faiss.write_index(index, str(gen / "vectors.faiss"))
    with (gen / "passages.jsonl").open("w") as f:
        for i in ids[:20].tolist():
            f.write(json.dumps({"id": i, "doc_id": "a.txt" if i < 110 else "b.txt", "start": 0,
                                "end": 3, "text": f"t{i}"}) + "\n")
    old = dict(model={"name": "m", "dim": DIM}, next_id=0, seeds=".", format="qabot-index",
               format_version=1, generation=1, passage_count=20,
               vectors="gen-000001/vectors.faiss", passages="gen-000001/passages.jsonl",
               articles={"a.txt": {"hash": "x", "date": None, "title": "A", "ids": ids[:10].tolist()},
                         "b.txt": {"hash": "y", "date": "2024-01-01", "title": "B",
                                   "ids": ids[10:20].tolist()}})
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(IndexIncompatible, match="older qabot.*qabot index"):
        store.load_snapshot(tmp_path)
    store.upgrade(tmp_path)
    snap = store.load_snapshot(tmp_path)
    assert snap.articles["b.txt"].ids == tuple(ids[10:20].tolist()) and snap.articles["b.txt"].date
    assert (snap.vectors.vectors_of(ids[:20]) == corpus[:20]).all()
    assert snap.passages[int(ids[3])].text == f"t{ids[3]}"


def test_load_refuses_mismatches_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="qabot index"):
        store.load_snapshot(tmp_path)
    commit(tmp_path, manifest(), np.zeros((0, DIM), np.float32), Layout(), catalog.Changes())
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


def test_the_scan_kernel_gives_numpys_inner_products() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((1031, DIM)).astype(np.float32)
    query = rng.standard_normal(DIM).astype(np.float32)
    assert np.allclose(vectors.inner_products(matrix, query), matrix @ query, atol=1e-4)
    assert vectors.inner_products(matrix[:0], query).shape == (0,)
