"""Sharded search without Ray: shards in this process, merged by the router, equal one process."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

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


def router(index: Path, n: int) -> shards.Router:
    return shards.Router(index, shards.InProcess([shards.Shard(index) for _ in range(n)]))


def test_the_fixture_has_several_segments(corpus: Settings) -> None:
    manifest = store.load_manifest(corpus.index)
    assert manifest is not None and len(manifest.segments) == 3


def test_plan_gives_every_segment_to_one_shard_and_keeps_them_even(corpus: Settings) -> None:
    manifest = store.load_manifest(corpus.index)
    assert manifest is not None
    for n in (1, 2, 3, 5):
        shares = shards.plan(manifest, n)
        held = [s.first_id for share in shares for s in share]
        assert sorted(held) == sorted(s.first_id for s in manifest.segments)  # each once
        assert len(shares) == n
        # every shard gets a segment while there are enough (all on one shard would be even)
        assert sum(bool(share) for share in shares) == min(n, len(manifest.segments))
        sizes = [sum(s.passage_count for s in share) for share in shares if share]
        biggest = max(s.passage_count for s in manifest.segments)
        assert max(sizes) - min(sizes) <= biggest


@pytest.mark.parametrize(("mode", "n"), [("hybrid", 2), ("dense", 2), ("bm25", 2), ("hybrid", 3)])
def test_sharded_search_equals_one_process(corpus: Settings, mode: str, n: int) -> None:
    local = Retriever.for_settings(corpus)
    sharded = router(corpus.index, n)
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
    first = shards.Part(replace(manifest, segments=shards.plan(manifest, 2)[0]))
    shard0 = {a.doc_id for a in shards.Shard(corpus.index).snapshot(first).catalog.articles()}
    assert got and {p.doc_id for p in got} <= shard0  # the answering shard's results, merged


def test_more_shards_than_segments_leaves_some_idle_and_answers_the_same(corpus: Settings) -> None:
    local = Retriever.for_settings(corpus)
    sharded = router(corpus.index, 5)  # three segments: two shards hold nothing
    for question in shard_corpus.QUESTIONS[:3]:
        want = fmt.to_json(respond(local, question, as_of=AS_OF))
        assert fmt.to_json(respond(sharded, question, as_of=AS_OF)) == want
