"""Segment commits: a small change writes one small segment and a deletion list; segments are
merged past [segments] max_count; readers see one index and keep the segments they loaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qabot import bm25, store, vectors
from qabot.config import SearchOptions, SegmentSettings, Settings, VectorSettings
from qabot.errors import IndexOutdated
from qabot.indexer import run_index
from qabot.manifest import Segment, from_json
from qabot.reader import Retriever, open_index
from qabot.retrieve import search
from qabot.vectors import Layout
from tests.fakes import FakeEmbedder, fake_corpus, fake_settings, index
from tests.test_store import DIM, clustered

TOPICS = ["penguins waddle on ice", "tax reform passes parliament", "storm floods the harbour",
          "rocket reaches orbit", "museum opens art wing", "strike halts rail traffic"]


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    settings = fake_corpus(tmp_path / "seeds")
    for i, topic in enumerate(TOPICS):  # nine articles: one removed stays under a quarter deleted
        (settings.seeds / f"extra{i}.txt").write_text(f" date 2024-02-0{i + 1} About {topic}. " * 3)
    return settings, FakeEmbedder()


def stats(index_dir: Path, manifest: store.Manifest) -> dict[str, tuple[int, int, int]]:
    return {f: ((s := (index_dir / f).stat()).st_ino, s.st_mtime_ns, s.st_size) for f in manifest.files}


def ask(settings: Settings, fake: FakeEmbedder, q: str, mode: str = "hybrid",
        k: int = 5) -> list[tuple[str, float]]:
    hits = search(Retriever(settings.index, embedder=fake), q, SearchOptions(k=k, mode=mode),
                  floor=False, answers=False)
    return [(h.doc_id, h.score) for h in hits]


def test_a_new_article_is_one_small_segment_and_the_old_files_are_not_touched(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    index(settings, fake)
    first = store.load_manifest(settings.index)
    assert first is not None and len(first.segments) == 1
    before = stats(settings.index, first)
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    fake.embedded.clear()
    report = index(settings, fake)
    assert report.added == 1 and fake.embedded == ["Walruses sunbathe on the beach."]
    now = store.load_manifest(settings.index)
    assert now is not None and len(now.segments) == 2 and now.deleted is None
    assert now.segments[0] == first.segments[0] and now.segments[1].passage_count == 1
    assert stats(settings.index, first) == before  # not rewritten, not even opened for writing
    assert now.passage_count == first.passage_count + 1
    assert ask(settings, fake, "walruses sunbathe beach")[0][0] == "new.txt"


def test_a_changed_or_removed_article_leaves_through_the_deletion_list(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    index(settings, fake)
    (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves from tall trees.")
    (settings.seeds / "extra1.txt").unlink()
    report = index(settings, fake)
    assert report.updated == 1 and report.removed == 1
    snap = store.load_snapshot(settings.index)
    manifest = snap.manifest
    assert len(manifest.segments) == 2 and manifest.deleted is not None
    assert "extra1.txt" not in snap.articles and len(snap.articles) == 8
    texts = [p.text for p in snap.passages.values()]
    assert not any("volcano" in t or "tax reform" in t for t in texts)
    assert snap.vectors.ntotal == len(texts) == manifest.passage_count == len(snap.rows.ids)
    assert [d for d, _ in ask(settings, fake, "giraffes tall trees")][0] == "0.txt"
    for mode in ("hybrid", "dense", "bm25"):
        found = [d for d, _ in ask(settings, fake, "volcano lava Iceland tax reform", mode, k=10)]
        assert "extra1.txt" not in found and all(d != "0.txt" or mode == "dense" for d in found[:1])
    # the catalog reads agree: hashes, summary, the newest first
    assert set(snap.catalog.hashes()) == {p.name for p in settings.seeds.iterdir()}
    assert snap.catalog.summary().articles == 8


def test_segments_past_max_count_are_merged_without_embedding_again(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    settings = replace(settings, segments=SegmentSettings(max_count=3))
    index(settings, fake)
    ids = store.load_snapshot(settings.index).articles["1.txt"].ids
    for i in range(2):
        (settings.seeds / f"n{i}.txt").write_text(f" date 2024-03-0{i + 1} Walrus number {i} dives.")
        index(settings, fake)
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and len(manifest.segments) == 3
    fake.embedded.clear()
    (settings.seeds / "n2.txt").write_text(" date 2024-03-05 Walrus number 2 dives.")
    report = index(settings, fake)
    assert report.added == 1 and fake.embedded == ["Walrus number 2 dives."]  # only the new one
    merged = store.load_snapshot(settings.index)
    assert len(merged.manifest.segments) == 1 and merged.manifest.deleted is None
    assert merged.articles["1.txt"].ids == ids and len(merged.articles) == 12
    assert ask(settings, fake, "walrus number 2 dives")[0][0] == "n2.txt"
    # the previous generation's four folders stay for readers that opened it; no other is left
    assert {p.name for p in settings.index.glob("gen-*")} == {f"gen-00000{i}" for i in range(1, 6)}


def test_a_run_with_nothing_to_index_finishes_a_merge_left_due(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run killed inside its merge leaves the segment commit (the new article answerable) and
    too many segments. The next run, with no change to index, still merges them."""
    settings, fake = env
    settings = replace(settings, segments=SegmentSettings(max_count=2))
    index(settings, fake)
    (settings.seeds / "n0.txt").write_text(" date 2024-03-01 Walrus number 0 dives.")
    index(settings, fake)

    def killed(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt  # as SIGINT inside the merge: the commit before it stands

    monkeypatch.setattr(store.Writer, "merge", killed)  # a full merge
    monkeypatch.setattr(store.Writer, "merge_small", killed)  # or the small segments'
    (settings.seeds / "n1.txt").write_text(" date 2024-03-02 Walrus number 1 dives.")
    with pytest.raises(KeyboardInterrupt):
        index(settings, fake)
    monkeypatch.undo()
    left = store.load_manifest(settings.index)
    assert left is not None and len(left.segments) == 3  # over max_count: the merge was due
    fake.embedded.clear()
    report = index(settings, fake)
    merged = store.load_manifest(settings.index)
    assert report.committed and report.added == report.updated == report.removed == 0
    assert merged is not None and len(merged.segments) <= 2 and fake.embedded == []
    assert ask(settings, fake, "walrus number 1 dives")[0][0] == "n1.txt"
    assert not index(settings, fake).committed  # and then it is up to date


def test_past_max_count_the_small_segments_are_folded_and_the_first_is_not_touched(
    env: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = env
    for i in range(20):  # a first segment many times the size of what is added after
        (settings.seeds / f"bulk{i}.txt").write_text(f" date 2024-01-{i + 1:02d} Bulk story {i}. " * 9)
    settings = replace(settings, segments=SegmentSettings(max_count=3))
    index(settings, fake)
    first = store.load_manifest(settings.index)
    assert first is not None
    before = stats(settings.index, first)
    (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves.")  # old one deleted
    index(settings, fake)
    for i in range(2):
        (settings.seeds / f"n{i}.txt").write_text(f" date 2024-03-0{i + 1} Walrus number {i} dives.")
        index(settings, fake)
    folded = store.load_manifest(settings.index)  # a fourth segment: the three small ones folded
    assert folded is not None and len(folded.segments) == 2 and folded.segments[1].passage_count == 3
    fake.embedded.clear()
    (settings.seeds / "n1.txt").write_text(" date 2024-03-09 Walrus number 1 swims.")  # in a small one
    (settings.seeds / "n2.txt").write_text(" date 2024-03-09 Walrus number 2 sleeps.")
    index(settings, fake)
    (settings.seeds / "n3.txt").write_text(" date 2024-03-10 Walrus number 3 eats.")
    index(settings, fake)
    assert sorted(fake.embedded) == ["Walrus number 1 swims.", "Walrus number 2 sleeps.",
                                     "Walrus number 3 eats."]
    snap = store.load_snapshot(settings.index)
    manifest = snap.manifest
    assert len(manifest.segments) == 2 and manifest.segments[0] == first.segments[0]
    assert stats(settings.index, first) == before  # the first segment is as it was written
    # giraffes, walrus 0, 1 (its new version: the old one is dropped for good), 2 and 3
    assert manifest.segments[1].passage_count == 5
    assert manifest.deleted is not None and len(snap.deleted.articles) == 1  # 0.txt's old version
    assert snap.vectors.ntotal == manifest.passage_count == len(snap.rows.ids) == len(snap.passages)
    assert sorted(snap.articles) == sorted(p.name for p in settings.seeds.iterdir())
    assert ask(settings, fake, "walrus swims")[0][0] == "n1.txt"
    assert ask(settings, fake, "giraffes leaves")[0][0] == "0.txt"
    found = [d for d, _ in ask(settings, fake, "volcano lava Iceland", "bm25", k=10)]
    assert "0.txt" not in found


def test_scores_over_segments_equal_the_merged_index(env: tuple[Settings, FakeEmbedder]) -> None:
    """BM25's statistics are the whole index's, not each segment's: with nothing deleted, a
    question scores the same over three segments as over the one they merge into."""
    settings, fake = env
    index(settings, fake)
    for i, topic in enumerate(["walrus colony grows", "harbour storm warning issued"]):
        (settings.seeds / f"n{i}.txt").write_text(f" date 2024-03-0{i + 1} The {topic}. " * 2)
        index(settings, fake)
    assert len(store.load_snapshot(settings.index).manifest.segments) == 3
    questions = ["storm harbour", "walrus colony", "penguins on ice", "rail strike traffic"]
    split = {(q, m): ask(settings, fake, q, m) for q in questions for m in ("bm25", "hybrid", "dense")}
    whole = settings.at(index=settings.index.parent / "whole")  # the same seeds in one run
    index(whole, fake)
    assert len(store.load_snapshot(whole.index).manifest.segments) == 1
    for (q, m), found in split.items():
        again = ask(whole, fake, q, m)
        assert [d for d, _ in again] == [d for d, _ in found], (q, m)
        assert [s for _, s in again] == pytest.approx([s for _, s in found], abs=1e-4), (q, m)


def test_a_running_reader_reads_only_the_new_segment(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    reader = Retriever(settings.index, embedder=fake)
    old = reader.snapshot()
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    index(settings, fake)
    new = reader.snapshot()
    assert new is not old and len(new.loaded) == 2
    assert new.loaded[0] is old.loaded[0]  # the big segment's vectors, catalog and BM25 kept
    hits = search(reader, "walruses sunbathe", SearchOptions(k=1), floor=False, answers=False)
    assert hits[0].doc_id == "new.txt"


KILLER = textwrap.dedent("""
    import os, signal, sys
    from qabot import bm25, store
    from tests.fakes import FakeEmbedder, index
    from tests.test_segments import settings_at
    calls = [0]
    real = store.fsync_path
    def fsync(path):
        calls[0] += 1
        if calls[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
        real(path)
    store.fsync_path = fsync
    index(settings_at(sys.argv[1], int(sys.argv[3])), FakeEmbedder())
    print(calls[0])
""")


def settings_at(root: str, max_count: int) -> Settings:
    """fake_corpus's settings over `root` (for the killed child process)."""
    return replace(fake_settings(Path(root) / "seeds"), segments=SegmentSettings(max_count=max_count))


@pytest.mark.parametrize("max_count", [8, 2, 1],
                         ids=["segment commit", "commit then small merge", "commit then merge"])
def test_sigkill_at_any_point_of_a_commit_leaves_a_whole_index(
    env: tuple[Settings, FakeEmbedder], max_count: int, tmp_path: Path,
) -> None:
    """Killed after each fsync of the commit in turn (every file written so far, none after), the
    index still loads whole as the previous or the new generation, and the next run completes."""
    settings, fake = env
    index(settings, fake)
    root = str(settings.seeds.parent)
    cmd = [sys.executable, "-c", KILLER, root]
    environ = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    n, seen = 1, set()
    while True:
        (settings.seeds / f"k{n}.txt").write_text(f" date 2024-04-01 Kill test story {n} about otters.")
        proc = subprocess.run([*cmd, str(n), str(max_count)], capture_output=True, text=True,
                              env=environ, timeout=120)
        snap = store.load_snapshot(settings.index)  # whole, whatever the moment
        seen.add(f"k{n}.txt" in snap.articles)
        assert snap.vectors.ntotal == len(snap.rows.ids) == snap.manifest.passage_count
        if proc.returncode == 0:  # the kill came after the last fsync: the run completed
            break
        assert proc.returncode == -9, proc.stderr
        n += 1
    assert n > 3 and seen == {False, True}
    report = index(replace(settings, segments=SegmentSettings(max_count=max_count)), fake)
    assert report.added + report.unchanged == len(list(settings.seeds.iterdir()))
    snap = store.load_snapshot(settings.index)
    assert {p.name for p in settings.seeds.iterdir()} == set(snap.articles)
    assert np.array_equal(np.sort(snap.rows.ids), snap.rows.ids)


def as_format_2(index_dir: Path) -> None:
    """Rewrite a one-segment index as qabot wrote it in format 2: the manifest's old keys, and
    BM25 weights computed at commit time (the Lucene formula bm25s uses) in the old members."""
    manifest = store.load_manifest(index_dir)
    assert manifest is not None and len(manifest.segments) == 1 and manifest.build.lexical
    seg, params = manifest.segments[0], manifest.build.lexical.params
    part = store.load_snapshot(index_dir, for_merge=True).lexical
    assert part is not None
    lex = part.parts[0]
    n, df = len(lex.ids), np.diff(lex.indptr)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    term = np.repeat(np.arange(len(df)), df)
    norm = params.k1 * ((1 - params.b) + params.b * lex.lengths / lex.lengths.mean())
    tf = lex.tf.astype(np.float64)
    data = (idf[term] * tf / (norm[lex.indices] + tf)).astype(np.float32)
    arrays = dict(ids=np.array(lex.ids), data=data, indices=np.array(lex.indices),
                  indptr=np.array(lex.indptr), idf=idf.astype(np.float32), tokens=np.array(lex.tokens),
                  offsets=np.array(lex.offsets))
    files = format_3_files(seg)
    (index_dir / files["bm25_matrix"]).unlink()
    np.savez(index_dir / files["bm25_matrix"], **arrays)
    old = json.loads((index_dir / "manifest.json").read_text())
    for key in ("segments", "next_article", "deleted"):
        old.pop(key)
    old.update(format_version=2, vectors=files["vectors"], passages=files["passages"], rows=files["rows"],
               vectors_index=seg.layout.as_dict(), sizes={})
    old["bm25"].update(matrix=files["bm25_matrix"], vocab=files["bm25_vocab"])
    (index_dir / "manifest.json").write_text(json.dumps(old))


def format_3_files(seg: Segment) -> dict[str, str]:
    """A segment's files under the keys format 3 gave them (one field per file)."""
    (passages, rows), (vectors,) = seg.files_of("catalog") or (), seg.files_of("vectors") or ()
    out = {"vectors": vectors, "passages": passages, "rows": rows}
    if (lexical := seg.files_of("bm25")) is not None:
        out.update(bm25_matrix=lexical[0], bm25_vocab=lexical[1])
    return out


def as_format_3(path: Path) -> None:
    """Rewrite a manifest (manifest.json or a generation's copy) as qabot wrote it in format 3:
    each segment a field per file; the files themselves are as format 3 wrote them."""
    data = json.loads(path.read_text())
    manifest = from_json(data)
    data["format_version"] = 3
    data["segments"] = [{"first_id": s.first_id, "passage_count": s.passage_count,
                         "article_count": s.article_count, "vectors_index": s.layout.as_dict(),
                         **format_3_files(s)} for s in manifest.segments]
    path.write_text(json.dumps(data, indent=1))


def test_a_format_2_index_is_upgraded_without_embedding_or_tokenizing_again(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, fake = env
    index(settings, fake)
    questions = ["storm harbour", "penguins on ice", "volcano lava"]
    before = {(q, m): ask(settings, fake, q, m) for q in questions for m in ("bm25", "hybrid")}
    as_format_2(settings.index)
    with pytest.raises(IndexOutdated, match="older qabot.*qabot index"):
        store.load_snapshot(settings.index)
    fake.embedded.clear()
    monkeypatch.setattr(bm25, "tokenize", lambda *a, **k: pytest.fail("tokenized again"))
    report = index(settings, fake)
    monkeypatch.undo()
    assert not report.committed and fake.embedded == []  # the upgrade itself is the only commit
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and manifest.generation == 2 and len(manifest.segments) == 1
    # vectors and catalog kept in place
    assert all(f.startswith("gen-000001/") for p in ("vectors", "catalog")
               for f in manifest.segments[0].files_of(p) or ["missing"])
    for (q, m), found in before.items():
        again = ask(settings, fake, q, m)
        assert [d for d, _ in again] == [d for d, _ in found]
        assert [s for _, s in again] == pytest.approx([s for _, s in found], abs=1e-4)
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    assert index(settings, fake).added == 1 and ask(settings, fake, "walruses beach")[0][0] == "new.txt"


def test_a_front_end_opening_a_format_2_index_upgrades_it_first(env: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = env
    index(settings, fake)
    articles = set(store.load_snapshot(settings.index).articles)
    as_format_2(settings.index)
    said: list[str] = []
    snap = open_index(settings, log=said.append).snapshot()
    assert set(snap.articles) == articles and snap.lexical is not None
    assert any("Upgrading the index" in m for m in said)


# --- Deleted vectors never take a place among the k nearest -------------------------------------
#
# On an exact index search() scores every live row itself; on an approximate or compressed one it
# asks FAISS for the nearest candidates, and FAISS must skip the deleted vectors: otherwise they
# fill the candidate slots and the live passages they push out are never found.


@pytest.mark.parametrize("layout", [Layout(), Layout("flat", "sq8"), Layout("ivf", "none", 32, 3000)],
                         ids=["flat", "flat-sq8", "ivf"])
def test_a_search_over_segments_with_many_deletions_gives_k_live_vectors(layout: Layout) -> None:
    """Three quarters of the vectors deleted, the nearest to each query among them: the k found
    are k live ones, and exactly what the same parts without the deleted vectors give."""
    rng = np.random.default_rng(7)
    corpus, queries = clustered(rng, 4000), clustered(rng, 30)
    ids = np.arange(4000, dtype=np.int64)
    near = np.argsort(-(queries @ corpus.T), axis=1)[:, :40].ravel()  # each query's 40 nearest
    deleted = np.union1d(near, rng.choice(ids, 3000, replace=False))
    assert len(deleted) > 3000

    def parts(without: np.ndarray) -> list[vectors.Part]:
        """A large segment of `layout` (ids 0-2999) and a small exact one (3000-3999)."""
        big = vectors.new_index(layout, DIM, corpus[:3000])
        vectors.add(big, ids[:3000], corpus[:3000])
        small = vectors.new_index(Layout(), DIM)
        vectors.add(small, ids[3000:], corpus[3000:])
        for part in (big, small):
            vectors.remove(part, without.tolist())
        return [vectors.Part(big, layout, 0), vectors.Part(small, Layout(), 3000)]

    stack = vectors.Stack(parts(np.zeros(0, np.int64)), deleted)
    live = vectors.Stack(parts(deleted))  # the index that never held them
    assert stack.ntotal == live.ntotal == 4000 - len(deleted)
    for q in queries:
        scores, found = stack.search(q, 10, nprobe=8)
        assert len(found) == 10 and not np.isin(found, deleted).any()
        want_scores, want = live.search(q, 10, nprobe=8)
        assert found.tolist() == want.tolist()
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
        if layout.exact:  # and that is the brute-force answer over the live vectors
            keep = np.setdiff1d(ids, deleted)
            assert found.tolist() == keep[np.argsort(-(corpus[keep] @ q), kind="stable")[:10]].tolist()


def test_a_dense_search_of_an_approximate_index_with_many_deletions_finds_the_live_passages(
    tmp_path: Path,
) -> None:
    """search() on a compressed (so not exhaustively scored) index: 210 deleted passages nearer to
    the question than the live answers, more than the candidates FAISS is asked for, still leave
    the k answers of an index built without them."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    question = "walrus herd hauled out on the ice floe near the coast"
    for i in range(210):  # the question's own words: nearer than any live passage
        (seeds / f"decoy{i:03d}.txt").write_text(f" date 2024-01-01 Walrus herd hauled out on the ice "
                                                 f"floe near the coast, {i}.")
    live = ["A walrus herd hauled out on an ice floe.", "Ice floe off the coast holds a walrus herd.",
            "Near the coast, walrus rest on floe ice.", "The herd of walrus hauled out near shore.",
            "Walrus on the ice: a herd seen from the coast."]
    for i, text in enumerate(live):  # five stories, not near-copies (those would be one result)
        (seeds / f"live{i}.txt").write_text(f" date 2024-02-0{i + 1} {text}")
    words = ["budget", "council", "school", "bridge", "tennis", "opera", "harvest", "railway",
             "senate", "museum", "vaccine", "satellite", "election", "tariff", "festival"]
    for i in range(660):  # under a quarter of the passages deleted: no merge drops them
        a, b, c = words[i % 15], words[(i // 15) % 15], words[(i // 7) % 15]
        (seeds / f"other{i:03d}.txt").write_text(f" date 2024-03-01 {a} {b} {c} report {i}.")
    settings = replace(fake_settings(seeds), vectors=VectorSettings(type="flat", codec="sq8"))
    fake = FakeEmbedder()
    index(settings, fake)
    for i in range(210):
        (seeds / f"decoy{i:03d}.txt").unlink()
    index(settings, fake)
    snap = store.load_snapshot(settings.index)
    assert snap.manifest.deleted is not None and len(snap.deleted.passages) == 210
    assert not snap.vectors.exact and snap.vectors.ntotal == 665  # the candidates path
    fresh = settings.at(index=tmp_path / "fresh")  # the same live seeds, never holding the decoys
    index(fresh, fake)
    assert not store.load_snapshot(fresh.index).manifest.deleted
    found = ask(settings, fake, question, "dense", k=5)
    assert sorted(d for d, _ in found) == [f"live{i}.txt" for i in range(5)]
    want = ask(fresh, fake, question, "dense", k=5)
    assert [d for d, _ in found] == [d for d, _ in want]
    # sq8 codes trained with and without the decoys decode a little differently
    assert [s for _, s in found] == pytest.approx([s for _, s in want], abs=0.01)


def without_stories(segment: Segment) -> Segment:
    """The segment as recorded without its article fingerprints (formats 2 and 3 had none)."""
    return replace(segment, parts=tuple(f for f in segment.parts if f.part != "stories"))


def as_format_3_index(index_dir: Path) -> None:
    """Rewrite an index's manifest and its generations' copies as format 3 wrote them."""
    for path in (index_dir / "manifest.json", *index_dir.glob("gen-*/manifest.json")):
        as_format_3(path)


def test_a_format_3_index_is_upgraded_in_place_and_recovered_from_its_copies(
    env: tuple[Settings, FakeEmbedder], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, fake = env
    index(settings, fake)
    (settings.seeds / "new.txt").write_text(" date 2024-03-01 Walruses sunbathe on the beach.")
    (settings.seeds / "extra1.txt").unlink()
    index(settings, fake)  # two segments and a deletion list
    questions = ["storm harbour", "penguins on ice", "walruses beach", "tax reform"]
    before = {(q, m): ask(settings, fake, q, m) for q in questions for m in ("bm25", "hybrid")}
    old = store.load_manifest(settings.index)
    assert old is not None and len(old.segments) == 2 and old.deleted is not None
    as_format_3_index(settings.index)
    with pytest.raises(IndexOutdated, match="older qabot.*qabot index"):
        store.load_snapshot(settings.index)
    fake.embedded.clear()
    monkeypatch.setattr(bm25, "tokenize", lambda *a, **k: pytest.fail("tokenized again"))
    said: list[str] = []
    report = run_index(settings, log=said.append, embedder=fake)
    assert not report.committed and fake.embedded == [] and any("Upgrading the index" in m for m in said)
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and manifest.generation == old.generation + 1
    # the same segments, every file where it was: only the deletion list is written again, and
    # each segment's article fingerprints (format 3 had none) are taken from its stored passages
    assert [without_stories(s) for s in manifest.segments] == [without_stories(s) for s in old.segments]
    assert manifest.passage_count == old.passage_count
    assert {p.name for p in (settings.index / manifest.folder).iterdir()} == {
        "manifest.json", "deleted.npz", *(f"stories-{s.first_id}.npz" for s in old.segments)}
    assert store.complete(manifest)
    monkeypatch.undo()
    for (q, m), found in before.items():
        assert ask(settings, fake, q, m) == found

    # a damaged manifest.json of a format-3 index is recovered from its generation's copy
    shutil.rmtree(settings.index)
    settings.index.mkdir()
    index(settings, fake)
    as_format_3_index(settings.index)
    (settings.index / "manifest.json").write_text("{damaged")
    fake.embedded.clear()
    said.clear()
    report = run_index(settings, log=said.append, embedder=fake)
    assert fake.embedded == [] and report.unchanged == len(list(settings.seeds.iterdir()))
    assert any("recovered generation 2" in m for m in said), said
    assert store.load_manifest(settings.index) is not None


@pytest.mark.parametrize("version", [3, 2])
def test_sigkill_at_any_point_of_an_upgrade_leaves_the_old_index_answering(
    env: tuple[Settings, FakeEmbedder], version: int, tmp_path: Path,
) -> None:
    """Killed after each fsync of the upgrade in turn, the index is the old one, untouched, or
    the upgraded one; either way a front end opening it answers as before."""
    settings, fake = env
    index(settings, fake)
    if version == 3:  # with a second segment and a deletion list
        (settings.seeds / "0.txt").write_text(" date 2024-01-01 Giraffes eat leaves from tall trees.")
        index(settings, fake)
    questions = ["storm harbour", "giraffes leaves", "volcano lava"]
    before = {(q, m): ask(settings, fake, q, m) for q in questions for m in ("bm25", "hybrid")}
    as_format_3_index(settings.index) if version == 3 else as_format_2(settings.index)
    pristine = tmp_path / "pristine"
    shutil.copytree(settings.index, pristine)
    old = (pristine / "manifest.json").read_text()
    raw = store.read_old_manifest(pristine)
    records = raw.get("segments", [raw, raw["bm25"]])  # format 2: its BM25 files in their own record
    named = [f for s in records for f in s.values() if str(f).startswith("gen-")]
    cmd = [sys.executable, "-c", KILLER, str(settings.seeds.parent)]
    environ = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    n, seen = 1, set()
    while True:
        shutil.rmtree(settings.index)
        shutil.copytree(pristine, settings.index)
        proc = subprocess.run([*cmd, str(n), "8"], capture_output=True, text=True, env=environ, timeout=120)
        now = (settings.index / "manifest.json").read_text()
        seen.add(json.loads(now)["format_version"])
        if now == old:  # killed before the commit: the old index, every file it names as it was
            assert named and all((settings.index / f).read_bytes() == (pristine / f).read_bytes()
                                 for f in named)
        open_index(settings)  # what a front end does: upgrades the old one, if it is still there
        for (q, m), found in before.items():
            assert ask(settings, fake, q, m) == found, (n, q, m)
        if proc.returncode == 0:  # the kill came after the last fsync: the upgrade completed
            break
        assert proc.returncode == -9, proc.stderr
        n += 1
    assert n >= 2 and seen == {version, 4}
