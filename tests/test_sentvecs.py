"""Sentence vectors (the `sentences` part): pooled from the passage's word pieces in the run that
embeds it, stored int8, kept through new segments, deletions and merges, pooled again for an
index written before them, and read at question time as the sentences' cosines."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qabot import answer, parts, sentvecs, store
from qabot.answer import respond
from qabot.chunk import split_sentences
from qabot.config import SegmentSettings, Settings
from qabot.embed import OnnxEmbedder
from qabot.indexer import run_index
from qabot.reader import Retriever
from tests.conftest import link_encoder

QUEEN = (" date 2022-09-09 Queen dies at Balmoral\n"
         "Crowds gathered outside Buckingham Palace in the rain on Friday morning. "
         "Queen Elizabeth II died Thursday at Balmoral Castle in Scotland, the palace said. "
         "Flags were lowered across London.\n")
MARKETS = (" date 2022-09-22 Rates rise again\n"
           "Traders in New York watched screens closely all afternoon. "
           "The Federal Reserve raised interest rates by three-quarters of a percentage point on "
           "Wednesday. Mortgage costs climbed to their highest level in years.\n")


# ----------------------------------------------------------------------------- pure functions


def test_a_sentence_is_the_mean_of_the_word_pieces_inside_it() -> None:
    tokens = np.array([[9, 9], [1, 0], [3, 0], [0, 2], [9, 9]], dtype=np.float32)
    offsets = [(0, 0), (0, 3), (4, 7), (9, 12), (0, 0)]  # [CLS] "one two" | "six" [SEP]
    special = [1, 0, 0, 0, 1]
    got = sentvecs.pool(tokens, offsets, special, [(0, 7), (9, 12), (14, 20)])
    np.testing.assert_allclose(got[0], [1.0, 0.0])  # (1 + 3) / 2, normalised: [CLS] left out
    np.testing.assert_allclose(got[1], [0.0, 1.0])
    np.testing.assert_allclose(got[2], [0.0, 0.0])  # past the model's window: unknown, not guessed


def decoded(part: sentvecs.SentenceVectors, pid: int) -> sentvecs.Pooled:
    """A passage's stored sentences, decoded back to float vectors."""
    found = part.coded(pid)
    assert found is not None, f"passage {pid} is not in the part"
    return found.decoded()


def test_int8_codes_keep_the_cosine(onnx_embedder: OnnxEmbedder) -> None:
    texts = [QUEEN.split("\n")[1], MARKETS.split("\n")[1]]
    _, pooled = onnx_embedder.encode_pooled(texts)
    part = sentvecs.build([(i, sentvecs.Coded.from_pooled(p)) for i, p in enumerate(pooled)],
                          onnx_embedder.dim)
    q = onnx_embedder.encode(["when did queen elizabeth die"])[0]
    for pid, exact in enumerate(pooled):
        coded = decoded(part, pid)
        assert np.array_equal(coded.spans, exact.spans)
        assert np.abs(coded.vectors @ q - exact.vectors @ q).max() < 0.005


def test_stored_cosines_are_used_only_for_the_spans_they_were_pooled_for() -> None:
    found = sentvecs.Scored(np.array([[0, 5], [6, 9]], dtype=np.int32), np.array([0.6, 0.8], np.float32))
    evidence = sentvecs.Evidence({7: found})
    assert evidence.cosines(7, [(0, 5), (6, 9)]) == pytest.approx([0.6, 0.8])
    assert evidence.cosines(7, [(0, 5), (6, 10)]) is None  # the splitter changed since
    assert evidence.cosines(8, [(0, 5)]) is None  # not stored


def test_cosines_are_worked_out_from_the_codes_in_one_product_and_packed_by_passage() -> None:
    """Each sentence's cosine equals its decoded vector's, for the passages asked that the
    part holds, and packs of two parts join into one (as a router joins its shards')."""
    rng = np.random.default_rng(3)
    pooled = []
    for n in (2, 1, 3):
        v = rng.normal(size=(n, 8)).astype(np.float32)
        spans = np.array([[i * 10, i * 10 + 5] for i in range(n)], dtype=np.int32)
        pooled.append(sentvecs.Pooled(spans, v / np.linalg.norm(v, axis=1, keepdims=True)))
    coded = [(pid, sentvecs.Coded.from_pooled(p)) for pid, p in zip((4, 9, 12), pooled, strict=True)]
    part = sentvecs.build(coded, 8)
    q = rng.normal(size=8).astype(np.float32)
    got = part.cosines([12, 5, 4], q)  # 5 is not held
    assert got.ids.tolist() == [12, 4] and got.ends.tolist() == [3, 5]
    scored = got.unpacked()
    for pid in (12, 4):
        exact = decoded(part, pid)
        np.testing.assert_allclose(scored[pid].values, exact.vectors @ q, rtol=1e-5, atol=1e-6)
        assert np.array_equal(scored[pid].spans, exact.spans)
    joined = sentvecs.Cosines.joined([got, part.cosines([9], q)]).unpacked()
    assert sorted(joined) == [4, 9, 12] and len(joined[9].values) == 1
    assert sentvecs.Cosines.joined([part.cosines([], q)]).unpacked() == {}


def test_pooling_in_the_embedding_run_leaves_the_passage_vectors_as_they_were(
    onnx_embedder: OnnxEmbedder,
) -> None:
    texts = [QUEEN, MARKETS, "A line.\nAnother line here, longer than the first one."]
    vecs, pooled = onnx_embedder.encode_pooled(texts)
    np.testing.assert_allclose(vecs, onnx_embedder.encode(texts), atol=1e-6)
    assert [p.spans.tolist() for p in pooled] == [[list(s) for s in split_sentences(t)] for t in texts]
    # The answering sentence is nearer the question than the other sentences of its passage.
    q = onnx_embedder.encode(["when did queen elizabeth die"])[0]
    cos = pooled[0].vectors @ q
    died = next(i for i, (s, e) in enumerate(pooled[0].spans.tolist()) if "died" in QUEEN[s:e])
    assert int(np.argmax(cos)) == died


# ----------------------------------------------------------------------------- through the index


@pytest.fixture
def settings(tmp_path: Path, encoder_cache: Path) -> Settings:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "queen.txt").write_text(QUEEN)
    (seeds / "fed.txt").write_text(MARKETS)
    s = Settings(paths=replace(Settings().paths, seeds=seeds, index=tmp_path / "embeddings"))
    link_encoder(encoder_cache, s.index)
    return replace(s, segments=SegmentSettings(max_count=8))


def stored(index_dir: Path) -> dict[int, tuple[list[list[int]], bytes, bytes]]:
    """Every live passage's stored sentences, by passage id: spans, int8 codes and scales, as
    stored (a merge must copy them bit for bit)."""
    snap = store.load_snapshot(index_dir)
    stack: sentvecs.Stack = snap.stack(parts.SENTENCES)
    out = {}
    for pid in snap.rows.ids.tolist():
        held = [c for part in stack.parts if part is not None and (c := part.coded(pid)) is not None]
        assert len(held) == 1, f"passage {pid} has sentence vectors in {len(held)} segments, not one"
        found = held[0]
        out[pid] = (found.spans.tolist(), found.codes.tobytes(), found.scales.tobytes())
    return out


def test_sentence_vectors_follow_segments_deletions_and_merges(settings: Settings) -> None:
    run_index(settings, log=lambda m: None)
    first = stored(settings.index)
    assert len(first) >= 2
    (settings.seeds / "late.txt").write_text(" date 2022-09-23 Late news\nThe storm reached the "
                                             "coast on Friday night. Thousands lost power.\n")
    run_index(settings, log=lambda m: None)  # a new small segment beside the first
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and len(manifest.segments) == 2
    second = stored(settings.index)
    assert {k: v for k, v in second.items() if k in first} == first and len(second) > len(first)

    (settings.seeds / "fed.txt").unlink()  # a deletion, then a full merge
    run_index(settings, log=lambda m: None)
    writer_said: list[str] = []
    with store.open_writer(settings, log=writer_said.append) as w:
        w.merge()
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and len(manifest.segments) == 1 and store.complete(manifest)
    merged = stored(settings.index)
    assert merged == {k: v for k, v in second.items() if k in merged} and len(merged) < len(second)
    assert not any("Pooling" in m for m in writer_said)  # kept, not pooled again


def test_an_index_without_sentence_vectors_answers_and_gets_them_at_the_next_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Written as the previous qabot wrote it: segments without the sentences part.
    monkeypatch.setattr(parts, "PARTS", tuple(p for p in parts.PARTS if p is not parts.SENTENCES))
    run_index(settings, log=lambda m: None)
    monkeypatch.undo()
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and not store.complete(manifest)
    retriever = Retriever(settings.index)
    before = respond(retriever, "when did queen elizabeth die", as_of=None)
    assert before.answer is not None  # scored without the cosine meanwhile

    said: list[str] = []
    report = run_index(settings, log=said.append)
    assert report.committed and any("Pooling the sentence vectors of" in m for m in said), said
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and store.complete(manifest)
    assert f"Pooled {manifest.passage_count:,} of {manifest.passage_count:,} passages." in said  # progress
    assert len(stored(settings.index)) == manifest.passage_count
    after = respond(retriever, "when did queen elizabeth die")
    assert after.answer is not None and "died Thursday" in after.answer.answer


def test_damaged_sentence_vectors_are_pooled_again(settings: Settings) -> None:
    run_index(settings, log=lambda m: None)
    want = stored(settings.index)
    manifest = store.load_manifest(settings.index)
    assert manifest is not None
    (path,) = [f for s in manifest.segments for f in (s.files_of("sentences") or ())]
    (settings.index / path).write_bytes(b"not a zip")
    said: list[str] = []
    run_index(settings, log=said.append)
    assert any("Pooling the sentence vectors" in m for m in said), said
    assert stored(settings.index) == want


def test_a_copied_index_reads_its_sentence_vectors(settings: Settings, tmp_path: Path) -> None:
    run_index(settings, log=lambda m: None)
    copy = tmp_path / "copy"
    shutil.copytree(settings.index, copy)
    assert stored(copy) == stored(settings.index)


def test_an_index_split_by_an_older_splitter_is_answered_with_its_own_sentences(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_index(settings, log=lambda m: None)
    # Question time now splits otherwise (a newer splitter, before `qabot index` rebuilds): here
    # it finds no sentence end at all. The stored sentences are quoted, scored with their cosines.
    monkeypatch.setattr(answer, "split_sentences", lambda text: [(0, len(text))])
    seen: list[float | None] = []
    real = answer.sentences.features

    def spy(*args: object, **kwargs: object) -> answer.sentences.Features:
        seen.append(kwargs.get("cosine"))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(answer.sentences, "features", spy)
    reply = respond(Retriever(settings.index), "when did queen elizabeth die", as_of=None)
    assert reply.answer is not None
    said = "Queen Elizabeth II died Thursday at Balmoral Castle in Scotland, the palace said."
    assert reply.answer.answer == said
    assert seen and all(c is not None for c in seen)
