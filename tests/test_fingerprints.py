"""Article fingerprints (the `stories` part): taken when an article is indexed, kept through new
segments, deletions and merges, built for an index written before them without embedding, and
deciding "one story" exactly as the shingle sets did, without reading a text at question time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qabot import fingerprints, parts, rank, store
from qabot.catalog import Stack
from qabot.config import SegmentSettings, Settings
from qabot.reader import Retriever, Tables
from tests.fakes import FakeEmbedder, fake_corpus, index

SYNDICATED = ("Lava from the volcano reached the fishing town of Grindavik on Tuesday night, "
              "officials said, as hundreds of residents left their homes in the dark. ")


def as_array(s: frozenset[int]) -> np.ndarray:
    return np.array(sorted(s), dtype=np.uint32)


hashes = st.frozensets(st.integers(0, 40), max_size=30)
shares = st.sampled_from([0.0, 0.01, 0.3, 0.5, 0.9, 1.0, 1.01, 2.0]) | st.floats(0.0, 2.0)


@settings(max_examples=400, deadline=None)
@given(hashes, hashes, shares, shares)
def test_arrays_decide_one_story_exactly_as_the_shingle_sets(
    a: frozenset[int], b: frozenset[int], threshold: float, contained: float,
) -> None:
    assert fingerprints.same_story(as_array(a), as_array(b), threshold, contained) == \
        rank.same_story(a, b, threshold, contained)


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    settings = fake_corpus(tmp_path / "seeds")
    (settings.seeds / "wire.txt").write_text(" date 2024-02-01 " + SYNDICATED * 3)
    (settings.seeds / "copy.txt").write_text(" date 2024-02-02 " + SYNDICATED * 3 + "Reuters.")
    return replace(settings, segments=SegmentSettings(max_count=8)), FakeEmbedder()


def from_texts(snap: store.Snapshot) -> dict[int, list[int]]:
    """Every live article's fingerprint hashed from its stored passages now."""
    catalog: Stack = snap.catalog
    out = {}
    for art in catalog.articles():
        nums = {int(snap.rows.doc[np.searchsorted(snap.rows.ids, i)]) for i in art.ids}
        (num,) = nums
        out[num] = fingerprints.of_text(p.text for p in catalog.passages(list(art.ids))).tolist()
    return out


def stored(snap: store.Snapshot) -> dict[int, list[int]]:
    """What the stories part gives readers for every live article."""
    prints = snap.stack(parts.STORIES)
    out = {}
    for num in np.unique(snap.rows.doc).tolist():
        found = prints.of(num)
        assert found is not None, f"article {num} has no stored fingerprint"
        out[num] = found.tolist()
    return out


def test_fingerprints_follow_segments_deletions_and_merges(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    snap = store.load_snapshot(settings.index)
    assert snap.manifest.segments[0].files_of("stories") == ("gen-000001/stories.npz",)
    assert stored(snap) == from_texts(snap) and len(stored(snap)) == 5

    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves from tall trees.")
    (settings.seeds / "1.txt").unlink()
    index(settings, fake)
    snap = store.load_snapshot(settings.index)
    assert len(snap.manifest.segments) == 2 and len(snap.deleted.articles) == 2
    assert stored(snap) == from_texts(snap)

    with store.open_writer(settings, log=lambda msg: None) as writer:
        merged = writer.merge()
    assert len(merged.segments) == 1
    snap = store.load_snapshot(settings.index)
    prints = snap.stack(parts.STORIES).parts[0]
    assert prints is not None and prints.passage_count == merged.passage_count
    assert stored(snap) == from_texts(snap)
    assert len(prints.docs) == merged.article_count  # the deleted articles' hashes are gone


def test_a_question_decides_duplicates_without_reading_a_text(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, fake = env
    index(settings, fake)
    tables = Tables(store.load_snapshot(settings.index))
    monkeypatch.setattr(Stack, "passages", lambda *a, **k: pytest.fail("a text was read"))
    by_id = {a.doc_id: n for n, a in tables.articles(np.unique(tables.doc).tolist()).items()}
    opts = settings.search
    assert tables.same_story(by_id["wire.txt"], by_id["copy.txt"], opts.duplicate_threshold,
                             opts.duplicate_containment)
    assert not tables.same_story(by_id["wire.txt"], by_id["0.txt"], opts.duplicate_threshold,
                                 opts.duplicate_containment)


def test_an_index_without_fingerprints_answers_alike_and_gets_them_at_the_next_run(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, fake = env
    # Written as the previous qabot wrote it: segments without the stories part.
    monkeypatch.setattr(parts, "PARTS", tuple(p for p in parts.PARTS if p is not parts.STORIES))
    index(settings, fake)
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    index(settings, fake)
    monkeypatch.undo()
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and len(manifest.segments) == 2 and not store.complete(manifest)

    snap = store.load_snapshot(settings.index)
    tables = Tables(snap)
    assert snap.stack(parts.STORIES).parts == (None, None)
    want = from_texts(snap)
    assert {n: tables.fingerprint(n).tolist() for n in want} == want  # hashed from the texts meanwhile
    retriever = Retriever(settings.index, embedder=fake)
    asked = [(p.doc_id, p.duplicates) for p in _ask(retriever, "lava volcano Grindavik residents")]

    fake.embedded.clear()
    said: list[str] = []
    from qabot.indexer import run_index

    report = run_index(settings, log=said.append, embedder=fake)
    assert report.committed and fake.embedded == []
    assert any("fingerprints of 6 articles from their stored passages" in m for m in said), said
    snap = store.load_snapshot(settings.index)
    assert store.complete(snap.manifest) and stored(snap) == want
    assert [(p.doc_id, p.duplicates) for p in _ask(retriever, "lava volcano Grindavik residents")] == asked
    assert any(p.duplicates for p in _ask(retriever, "lava volcano Grindavik residents"))


def _ask(retriever: Retriever, question: str) -> list:  # type: ignore[type-arg]
    from qabot.retrieve import search

    return search(retriever, question, floor=False, answers=False)
