"""Sharded search without Ray: shards in this process, merged by the router, equal one process."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qabot import format as fmt
from qabot import shards, store
from qabot.answer import respond
from qabot.config import SearchOptions, Settings
from qabot.errors import ShardUnavailable
from qabot.reader import Retriever
from qabot.retrieve import search
from tests import shard_corpus

AS_OF = dt.date(2026, 12, 1)
MODES = ("hybrid", "dense", "bm25")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Settings:
    return shard_corpus.build(tmp_path_factory.mktemp("sharded"), encoder_cache)


@pytest.fixture(scope="module")
def merged(corpus: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The corpus in ONE segment, as a full merge leaves it (an article removed before the
    merge: the merged segment keeps the other passages' ids, with a gap)."""
    from qabot.indexer import run_index

    settings = shard_corpus.copy(corpus, tmp_path_factory.mktemp("merged"))
    (settings.seeds / "b1_03.txt").unlink()
    run_index(settings, log=lambda msg: None)
    with store.open_writer(settings, log=lambda msg: None) as writer:
        writer.merge()
    return settings


def router(index: Path, n: int) -> shards.Router:
    return shards.Router(index, shards.InProcess([shards.Shard(index) for _ in range(n)]))


def test_the_fixture_has_several_segments(corpus: Settings) -> None:
    manifest = store.load_manifest(corpus.index)
    assert manifest is not None and len(manifest.segments) == 3


def held(index: Path, n: int) -> list[tuple[np.ndarray, int]]:
    """Each of n shards' live passage ids, and how many stored rows (deleted ones too) it holds."""
    manifest = store.load_manifest(index)
    assert manifest is not None
    out = []
    for part in shards.plan(manifest, n):
        if not part.manifest.segments:  # a run of no rows (more shards than passages): not asked
            out.append((np.zeros(0, np.int64), 0))
            continue
        shard = shards.Shard(index)
        snap = shard.snapshot(part)
        lexical = shard.totals(part).lexical
        out.append((snap.rows.ids, lexical.rows if lexical is not None else -1))
    return out


def assert_split_evenly(index: Path, n: int) -> None:
    """Every live passage in exactly one of n shards, each shard's stored rows within one
    article of an even split, and its statistics (BM25's, its passages, articles and days)
    summing to the whole index's."""
    whole = store.load_snapshot(index)
    ids = [i for i, _ in held(index, n)]
    assert np.array_equal(np.sort(np.concatenate(ids)), whole.rows.ids)  # each once, none lost
    assert all(len(i) for i in ids), [len(i) for i in ids]  # no shard idle
    stored = [rows for _, rows in held(index, n)]
    longest = int(np.bincount(np.unique(whole.rows.doc, return_inverse=True)[1]).max())
    total = sum(s.passage_count for s in whole.manifest.segments)
    assert sum(stored) == total and max(abs(s - total / n) for s in stored) <= longest, stored
    # The shards' statistics add up to the whole index's, exactly: BM25's, and the counts.
    got = [shards.Shard(index).totals(p) for p in shards.plan(whole.manifest, n) if p.manifest.segments]
    assert sum(t.passages for t in got) == len(whole.rows.ids)
    assert sum(t.articles for t in got) == whole.catalog.summary().articles
    assert np.array_equal(np.unique(np.concatenate([t.days for t in got])), np.unique(whole.rows.day))
    sums = [t.lexical for t in got]
    assert whole.lexical is not None and all(t is not None for t in sums)
    summed = sums[0]
    for t in sums[1:]:
        assert summed is not None and t is not None
        summed = summed.plus(t)
    assert summed == whole.lexical.totals()


def test_plan_cuts_the_passages_in_even_runs_of_whole_articles(corpus: Settings) -> None:
    manifest = store.load_manifest(corpus.index)
    assert manifest is not None
    for n in (1, 2, 3, 5):
        parts = shards.plan(manifest, n)
        assert len(parts) == n and all(p.manifest.segments for p in parts)
        assert parts[0].start == 0 and parts[-1].stop is None
        assert all(p.manifest.generation == manifest.generation for p in parts)
        assert_split_evenly(corpus.index, n)
    assert shards.plan(manifest, 3) == shards.plan(manifest, 3)  # the manifest alone decides


def test_a_cut_moves_to_the_nearest_article_start() -> None:
    doc = np.array([4, 4, 4, 7, 7, 9, 9, 9, 9, 9])  # articles start at rows 0, 3, 5 (and end at 10)
    assert [shards.nearest_article_start(doc, at) for at in range(11)] == [0, 0, 3, 3, 3, 5, 5, 5, 10, 10, 10]
    assert shards.nearest_article_start(doc, -1) == 0 and shards.nearest_article_start(doc, 12) == 10


def _rows_to_send_by_sorting_all(ids: np.ndarray, doc: np.ndarray, scores: np.ndarray, depth: int, walk: int,
                                 shown: int) -> tuple[list[int], list[int], float]:
    """What rows_to_send gives, worked out the plain way: every row sorted."""
    order = sorted(range(len(ids)), key=lambda r: (-scores[r], ids[r]))
    seen: Counter[int] = Counter()
    nth = {}
    for r in order:
        nth[r] = seen[doc[r]]
        seen[doc[r]] += 1
    useful = [r for r in order if nth[r] < walk]
    top = useful[:depth]
    bound = float(scores[useful[depth]]) if len(useful) > depth else -np.inf
    chosen = {doc[r] for r in top}
    keep = sorted(set(top) | {r for r in order if doc[r] in chosen and nth[r] < shown}, key=lambda r: ids[r])
    return top, keep, bound


@pytest.mark.parametrize("seed", range(6))
def test_rows_to_send_sorts_the_best_rows_only_and_sends_what_sorting_all_would(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties, an article with many of the best rows, too few articles among them: the head
    decides when it can, and every row is sorted when it can't (HEAD_ROWS made small to reach
    both)."""
    monkeypatch.setattr(shards, "HEAD_ROWS", 40)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    ids = rng.permutation(n * 3)[:n].astype(np.int64)
    doc = rng.integers(0, int(rng.integers(2, 60)), n).astype(np.int64)
    doc[: n // 3] = 7  # one article holds many rows, and many of the best
    scores = np.round(rng.random(n), 2).astype(np.float32)  # rounded: ties
    scores[: n // 3] += 1.0
    for depth, walk, shown in ((3, 1, 4), (5, 2, 2), (32, 1, 12), (1, 1, 1)):
        top, keep, bound = shards.rows_to_send(ids, doc, scores, depth, walk, shown)
        want_top, want_keep, want_bound = _rows_to_send_by_sorting_all(ids, doc, scores, depth, walk, shown)
        assert top.tolist() == want_top and keep.tolist() == want_keep and bound == want_bound


@pytest.mark.parametrize(("mode", "n"), [("hybrid", 2), ("dense", 2), ("bm25", 2), ("hybrid", 3)])
def test_sharded_search_equals_one_process(corpus: Settings, mode: str, n: int) -> None:
    assert_same_search(Retriever.for_settings(corpus), router(corpus.index, n), mode)


def assert_same_search(local: Retriever, sharded: shards.Router, mode: str) -> None:
    options = replace(SearchOptions(), mode=mode)
    for question in shard_corpus.QUESTIONS:
        for opts, more in ((options, 0), (replace(options, k=3, per_article=2), 2)):
            want = search(local, question, opts, floor=False, as_of=AS_OF, more=more)
            got = sharded.search(question, opts, floor=False, as_of=AS_OF, more=more)
            assert [p.doc_id for p in got] == [p.doc_id for p in want], question
            assert [(p.start, p.answer_start, p.answer_end) for p in got] == \
                [(p.start, p.answer_start, p.answer_end) for p in want]
            assert np.allclose([p.score for p in got], [p.score for p in want], atol=1e-5, rtol=0)
            assert [[m.start for m in p.more] for p in got] == [[m.start for m in p.more] for p in want]
            assert [[d.doc_id for d in p.duplicates] for p in got] == \
                [[d.doc_id for d in p.duplicates] for p in want]


def test_a_full_merge_leaves_one_segment_split_between_the_shards(merged: Settings) -> None:
    manifest = store.load_manifest(merged.index)
    assert manifest is not None and len(manifest.segments) == 1
    for n in (2, 3):
        assert all(p.manifest.segments == manifest.segments for p in shards.plan(manifest, n))
        assert_split_evenly(merged.index, n)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_one_segment_in_shards_answers_as_one_process(merged: Settings, mode: str, n: int) -> None:
    assert_same_search(Retriever.for_settings(merged), router(merged.index, n), mode)


def test_deleted_rows_in_a_split_segment_are_counted_once(merged: Settings, tmp_path: Path) -> None:
    """BM25 counts a deleted passage until a merge: each shard counts those of its own run."""
    from qabot.indexer import run_index

    settings = shard_corpus.copy(merged, tmp_path)
    for name in ("b0_05.txt", "b2_01.txt"):
        (settings.seeds / name).unlink()
    run_index(settings, log=lambda msg: None)
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and len(manifest.segments) == 1 and manifest.deleted
    assert_split_evenly(settings.index, 3)
    local, sharded = Retriever.for_settings(settings), router(settings.index, 3)
    options = replace(SearchOptions(), mode="bm25")
    for question in shard_corpus.QUESTIONS:
        want = fmt.to_json(respond(local, question, options, as_of=AS_OF))
        assert fmt.to_json(respond(sharded, question, options, as_of=AS_OF)) == want, question


def test_an_ivf_segment_in_shards_answers_as_one_process(merged: Settings, tmp_path: Path) -> None:
    """The rows outside a shard's run are left out of an IVF search too (FAISS's id selector);
    two cells, both scanned: the union of the shards' nearest is one process's."""
    from qabot.vectors import Layout

    settings = shard_corpus.copy(merged, tmp_path)
    with store.open_writer(settings, log=lambda msg: None) as writer:
        writer.merge(layout=Layout(type="ivf", nlist=2))
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and [s.layout.type for s in manifest.segments] == ["ivf"]
    local, sharded = Retriever.for_settings(settings), router(settings.index, 2)
    for mode in ("dense", "hybrid"):
        for question in shard_corpus.QUESTIONS:
            want = fmt.to_json(respond(local, question, replace(SearchOptions(), mode=mode), as_of=AS_OF))
            assert fmt.to_json(respond(sharded, question, replace(SearchOptions(), mode=mode), as_of=AS_OF)) \
                == want, (mode, question)


@pytest.mark.parametrize("n", [2, 3])
def test_an_approximate_index_in_shards_scores_one_process_candidates(
    merged: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int,
) -> None:
    """One process scores the ANN's and BM25's best CANDIDATES of the whole index; were each
    shard to score its own best as many, the shards together would score more (an article
    reached through a passage one process never met). With candidates fewer than the passages
    (~90 here), the router's first round finds the whole index's and each shard scores those."""
    from qabot import retrieve
    from qabot.vectors import Layout

    settings = shard_corpus.copy(merged, tmp_path)
    with store.open_writer(settings, log=lambda msg: None) as writer:
        writer.merge(layout=Layout(type="ivf", nlist=2))
    monkeypatch.setattr(retrieve, "CANDIDATES", 4)  # pools of max(4, 4 × k × per_article) rows

    local, sharded = Retriever.for_settings(settings), router(settings.index, n)
    for mode in MODES:
        assert_same_search(local, sharded, mode)
        for question in shard_corpus.QUESTIONS:
            options = replace(SearchOptions(), mode=mode, k=2)
            want = fmt.to_json(respond(local, question, options, as_of=AS_OF))
            assert fmt.to_json(respond(sharded, question, options, as_of=AS_OF)) == want, (mode, question)


@pytest.mark.parametrize("mode", MODES)
def test_sharded_reply_is_the_same_json(corpus: Settings, mode: str) -> None:
    local = Retriever.for_settings(corpus)
    sharded = router(corpus.index, 2)
    options = replace(SearchOptions(), mode=mode)
    for question in [*shard_corpus.QUESTIONS, "hello!", "what happened this week?"]:
        want = fmt.to_json(respond(local, question, options, as_of=AS_OF))
        assert fmt.to_json(respond(sharded, question, options, as_of=AS_OF)) == want, question


def test_few_rows_a_shard_means_asking_again_not_another_answer(corpus: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    local = Retriever.for_settings(corpus)
    sharded = router(corpus.index, 3)
    asked: list[int] = []
    real = shards.Shard.candidates

    def candidates(self: shards.Shard, ask: shards.Ask) -> shards.Candidates:
        asked.append(ask.depth)
        return real(self, ask)

    monkeypatch.setattr(shards, "DEPTH", 1)
    monkeypatch.setattr(shards.Shard, "candidates", candidates)
    for question in shard_corpus.QUESTIONS[:4]:
        want = search(local, question, SearchOptions(), floor=False, as_of=AS_OF, more=2)
        got = sharded.search(question, SearchOptions(), floor=False, as_of=AS_OF, more=2)
        assert [(p.doc_id, p.start, p.score) for p in got] == [(p.doc_id, p.start, p.score) for p in want]
    assert max(asked) > 1  # the walk needed more than one row a shard, and got it


def test_a_commit_reaches_the_shards_one_generation_a_reply(corpus: Settings, tmp_path: Path) -> None:
    from qabot.indexer import run_index

    settings = shard_corpus.copy(corpus, tmp_path)
    sharded = router(settings.index, 2)
    question = "How many orange-bellied parrots returned to Melaleuca?"
    before = respond(sharded, question, as_of=AS_OF)
    assert all("parrot" not in p.text for p in before.results)
    (settings.seeds / "parrots.txt").write_text(
        " date 2024-03-01 Rangers in Tasmania counted 412 orange-bellied parrots returning to Melaleuca "
        "this spring, the highest tally in a decade.\n", encoding="utf-8")
    run_index(settings, log=lambda msg: None)
    after = respond(sharded, question, as_of=AS_OF)
    assert after.results[0].doc_id == "parrots.txt"
    assert fmt.to_json(after) == fmt.to_json(respond(Retriever.for_settings(settings), question, as_of=AS_OF))
    with sharded.pinned():  # a reply pinned before a commit keeps its generation throughout
        gen = sharded.generation().manifest.generation
        (settings.seeds / "parrots.txt").unlink()
        run_index(settings, log=lambda msg: None)
        assert sharded.generation().manifest.generation == gen
        assert sharded.search(question, SearchOptions(), as_of=AS_OF)[0].doc_id == "parrots.txt"
    assert sharded.generation().manifest.generation == gen + 1


class Counting(shards.InProcess):
    """Shards in this process that count the calls made to them, by method."""

    def __init__(self, members: list[shards.Shard]) -> None:
        super().__init__(members)
        self.calls: Counter[str] = Counter()

    def call(self, method: str, args: dict[int, Any], deadline: float) -> dict[int, Any]:
        self.calls[method] += 1
        return super().call(method, args, deadline)


def test_the_shown_passages_come_with_the_candidates(corpus: Settings) -> None:
    local = Retriever.for_settings(corpus)
    for texts in (True, False):
        transport = Counting([shards.Shard(corpus.index) for _ in range(2)])
        sharded = shards.Router(corpus.index, transport, texts=texts)
        for question in shard_corpus.QUESTIONS:
            want = fmt.to_json(respond(local, question, as_of=AS_OF))
            assert fmt.to_json(respond(sharded, question, as_of=AS_OF)) == want, question
        assert transport.calls["candidates"] == len(shard_corpus.QUESTIONS)
        # one round trip a reply (fingerprints aside), or a second one for the texts
        assert transport.calls["passages"] == (0 if texts else len(shard_corpus.QUESTIONS)), transport.calls
        # the sentence vectors of those texts come with them (the answer layer's cosines)
        assert transport.calls["sentences"] == (0 if texts else len(shard_corpus.QUESTIONS)), transport.calls


def test_the_fingerprints_a_router_lacks_come_with_the_candidates(corpus: Settings) -> None:
    """A fresh router gets the fingerprints of each shard's best articles with its candidates (no
    call of their own) and then, knowing them, is not sent them again; replies unchanged."""
    local = Retriever.for_settings(corpus)
    sent: list[int] = []

    class Watching(Counting):
        def call(self, method: str, args: dict[int, Any], deadline: float) -> dict[int, Any]:
            got = super().call(method, args, deadline)
            if method == "candidates":
                sent.extend(n for c in got.values() for n in c.prints)
            return got

    transport = Watching([shards.Shard(corpus.index) for _ in range(2)])
    sharded = shards.Router(corpus.index, transport)
    for _ in range(2):
        for question in shard_corpus.QUESTIONS:
            assert fmt.to_json(respond(sharded, question, as_of=AS_OF)) == fmt.to_json(
                respond(local, question, as_of=AS_OF)), question
    assert sent and len(sent) == len(set(sent))  # each article's fingerprint sent once
    assert set(sent) <= set(sharded.prints)
    for n in sent:  # the fingerprint the shard holds
        assert np.array_equal(sharded.prints[n], local.tables(local.snapshot()).fingerprint(n))
    assert transport.calls["prints"] < len(shard_corpus.QUESTIONS), transport.calls


def test_the_known_filter_never_misses_an_article_it_holds() -> None:
    held = np.arange(0, 40_000, 9)[:4096]
    known = shards.known_filter(held.tolist())
    assert known.nbytes == shards.KNOWN_BITS // 8
    assert shards.in_filter(known, held).all()
    others = np.arange(1, 40_000, 9)
    wrongly = shards.in_filter(known, others).mean()
    assert wrongly < 0.1, wrongly  # ~5% read as held: fetched when needed
    assert not shards.in_filter(shards.known_filter([]), others).any()


def test_sharded_cosines_are_the_stored_ones(corpus: Settings) -> None:
    local = Retriever.for_settings(corpus)
    sharded = router(corpus.index, 2)
    question = shard_corpus.QUESTIONS[0]
    found = search(local, question, SearchOptions(), as_of=AS_OF, more=2)
    ids = [p.id for p in found] + [m.id for p in found for m in p.more]
    want = local.sentences(question, ids)
    with sharded.pinned():
        sharded.search(question, SearchOptions(), as_of=AS_OF, more=2)
        got = sharded.sentences(question, ids)
    assert want is not None and got is not None and want.found.keys() == got.found.keys() == set(ids)
    for pid in ids:
        assert np.array_equal(want.found[pid].values, got.found[pid].values)
        assert np.array_equal(want.found[pid].spans, got.found[pid].spans)


class Broken(shards.Shard):
    def candidates(self, ask: shards.Ask) -> shards.Candidates:
        raise TimeoutError("late")


def test_a_missing_shard_is_named_or_left_out_with_partial(corpus: Settings) -> None:
    members = [shards.Shard(corpus.index), Broken(corpus.index)]
    sharded = shards.Router(corpus.index, shards.InProcess(members))
    question = shard_corpus.QUESTIONS[1]
    with pytest.raises(ShardUnavailable, match="shard 1 of 2") as err:
        sharded.search(question, SearchOptions(), as_of=AS_OF)
    assert err.value.shards == (1,)
    with sharded.pinned(partial=True) as coverage:
        got = sharded.search(question, replace(SearchOptions(), k=20), floor=False, as_of=AS_OF)
    assert coverage.missing == (1,) and coverage.answered == 1
    manifest = store.load_manifest(corpus.index)
    assert manifest is not None
    first = shards.plan(manifest, 2)[0]
    shard0 = {a.doc_id for a in shards.Shard(corpus.index).snapshot(first).catalog.articles()}
    assert got and {p.doc_id for p in got} <= shard0  # the answering shard's results, merged


def test_more_shards_than_segments_each_hold_some_and_answer_the_same(corpus: Settings) -> None:
    local = Retriever.for_settings(corpus)
    sharded = router(corpus.index, 5)  # three segments: some are split
    assert_split_evenly(corpus.index, 5)
    for question in shard_corpus.QUESTIONS[:3]:
        want = fmt.to_json(respond(local, question, as_of=AS_OF))
        assert fmt.to_json(respond(sharded, question, as_of=AS_OF)) == want


def test_more_shards_than_articles_leaves_some_empty_and_answers_the_same(corpus: Settings) -> None:
    local = Retriever.for_settings(corpus)
    manifest = store.load_manifest(corpus.index)
    assert manifest is not None
    n = manifest.article_count * 2
    sharded = router(corpus.index, n)
    parts = shards.plan(manifest, n)
    ids = [i for i, _ in held(corpus.index, n)]
    assert any(not p.manifest.segments for p in parts)  # runs of no rows
    # runs within one article: their cuts move to the same article start, and they hold nothing
    assert any(p.manifest.segments and not len(i) for p, i in zip(parts, ids, strict=True))
    for question in shard_corpus.QUESTIONS[:2]:
        want = fmt.to_json(respond(local, question, as_of=AS_OF))
        assert fmt.to_json(respond(sharded, question, as_of=AS_OF)) == want
