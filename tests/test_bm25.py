"""BM25 over segments: parts of term counts, scored with statistics over the whole stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qabot import bm25
from qabot.config import BM25Params

PARAMS = BM25Params()
TEXTS = [
    "Lava reached Grindavik overnight and the town was evacuated.",
    "The cup final ended 2-1 at Wembley after extra time.",
    "Rates held at 4.5 percent, the central bank said.",
    "Lava fountains lit the sky over Grindavik again.",
    "Penguins huddle against the cold wind on the ice shelf.",
    "The bank raised rates for the third time this year.",
    "",  # a passage with no words still counts in N and the mean length
    "Wembley sold out for the cup final; fans queued from dawn.",
    "A ferry to Kelby Point was cancelled as the storm hit the harbour.",
    "The harbour council voted to rebuild the ferry pier.",
    "Grindavik residents may return home, officials said.",
    "Penguins and seals share the ice; the ice is thinning.",
]
QUESTIONS = ["lava Grindavik", "cup final Wembley", "bank rates", "penguins ice ice", "ferry harbour storm",
             "who won the Nobel prize", "sourdough"]


def passages(lo: int, hi: int) -> list[tuple[int, str]]:
    """(id, text) of TEXTS[lo:hi]; passage ids are 10 + the text's index (ids need not start at 0)."""
    return [(10 + i, TEXTS[i]) for i in range(lo, hi)]


def stack(*parts: bm25.Lexical, deleted: list[int] | None = None) -> bm25.Stack:
    return bm25.Stack.of(parts, np.array(deleted or [], dtype=np.int64), PARAMS)


def table(lex: bm25.Lexical) -> dict[str, dict[int, int]]:
    """term -> {passage id: tf}: a part's matrix, whatever the numbering of its terms and rows."""
    out: dict[str, dict[int, int]] = {}
    for term, col in lex.vocab.items():
        lo, hi = lex.indptr[col], lex.indptr[col + 1]
        out[term] = dict(zip(lex.ids[lex.indices[lo:hi]].tolist(), lex.tf[lo:hi].tolist(), strict=True))
    return out


def test_two_parts_score_as_one_part_of_their_union() -> None:
    split = stack(bm25.build(passages(0, 7), PARAMS), bm25.build(passages(7, 12), PARAMS))
    union = stack(bm25.build(passages(0, 12), PARAMS))
    assert split.rows == union.rows == 12 and split.ids.tolist() == union.ids.tolist()
    for q in QUESTIONS:
        (ids, scores, ceiling), (ids1, scores1, ceiling1) = bm25.score(split, q), bm25.score(union, q)
        assert ids.tolist() == ids1.tolist(), q
        np.testing.assert_allclose(scores, scores1, rtol=1e-6)
        assert ceiling == pytest.approx(ceiling1)
    assert set(bm25.score(split, "Grindavik")[0].tolist()) == {10, 13, 20}  # hits from both parts


def test_a_deleted_passage_never_comes_back_and_the_statistics_keep_it() -> None:
    parts = bm25.build(passages(0, 7), PARAMS), bm25.build(passages(7, 12), PARAMS)
    live, gone = stack(*parts), stack(*parts, deleted=[13, 20, 17])
    assert gone.ids.tolist() == [i for i in live.ids.tolist() if i not in (13, 17, 20)]
    hit_before = set()
    for q in QUESTIONS:
        ids, scores, ceiling = bm25.score(live, q)
        ids2, scores2, ceiling2 = bm25.score(gone, q)
        hit_before |= set(ids.tolist())
        assert not {13, 17, 20} & set(ids2.tolist()), q
        # Until a merge the deleted rows still count in N, df and the mean length (as in Lucene):
        # every live passage keeps its score exactly.
        keep = ~np.isin(ids, [13, 17, 20])
        assert ids2.tolist() == ids[keep].tolist() and np.array_equal(scores2, scores[keep])
        assert ceiling2 == ceiling
    assert {13, 17, 20} <= hit_before  # the questions did reach them before they were deleted


def test_idf_is_global_over_the_parts() -> None:
    split = stack(bm25.build(passages(0, 7), PARAMS), bm25.build(passages(7, 12), PARAMS), deleted=[10])
    union = stack(bm25.build(passages(0, 12), PARAMS))
    terms = ["lava", "grindavik", "ferri", "ice", "nobel", "penguin"]
    got = bm25.idf(split, terms)
    assert got == pytest.approx(bm25.idf(union, terms)) and "nobel" not in got
    # Lucene's idf by hand: "grindavik" is in 3 of the 12 passages (one part holds two, the other one).
    assert got["grindavik"] == pytest.approx(np.log(1 + (12 - 3 + 0.5) / (3 + 0.5)))
    assert got["ice"] == pytest.approx(np.log(1 + (12 - 2 + 0.5) / (2 + 0.5)))  # df counts passages


def test_combine_then_build_is_a_fresh_build_and_tokenizes_only_new_passages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parts = [bm25.build(passages(lo, hi), PARAMS) for lo, hi in ((0, 5), (5, 9), (9, 12))]
    merged = bm25.combine(parts)
    fresh = bm25.build(passages(0, 12), PARAMS)
    # One part over all the rows: the very arrays one build() of the same passages makes.
    assert merged.vocab == fresh.vocab
    for name in ("ids", "tf", "indices", "indptr", "lengths", "tokens", "offsets"):
        assert np.array_equal(getattr(merged, name), getattr(fresh, name)), name
        assert getattr(merged, name).dtype == getattr(fresh, name).dtype, name
    # A merge: drop deleted passages, add a new one; only the new one is tokenized.
    calls: list[str] = []
    real = bm25.tokenize

    def counting(text: str, stopwords: frozenset[str] = frozenset(), stemmer: str = "") -> list[str]:
        calls.append(text)
        return real(text, stopwords, stemmer)

    now = [p for p in passages(0, 12) if p[0] not in (10, 13, 18)] + [(30, "Seals on the Wembley pitch.")]
    monkeypatch.setattr(bm25, "tokenize", counting)
    rebuilt = bm25.build(now, PARAMS, merged)
    assert calls == ["Seals on the Wembley pitch."]
    monkeypatch.setattr(bm25, "tokenize", real)
    expected = bm25.build(now, PARAMS)
    assert table(rebuilt) == table(expected) and "lava" not in rebuilt.vocab  # lava: only in 10 and 13
    assert rebuilt.lengths.tolist() == expected.lengths.tolist()
    for q in QUESTIONS:
        a, b = bm25.score(stack(rebuilt), q), bm25.score(stack(expected), q)
        assert a[0].tolist() == b[0].tolist() and np.allclose(a[1], b[1])


def test_combine_needs_tokens(tmp_path: Path) -> None:
    names = bm25.save(bm25.build(passages(0, 3), PARAMS), tmp_path)
    bare = bm25.load(tmp_path / names["matrix"], tmp_path / names["vocab"], PARAMS.stemmer)
    with pytest.raises(ValueError, match="tokens"):
        bm25.combine([bare])


def write_v2(lex: bm25.Lexical, folder: Path) -> tuple[Path, Path]:
    """bm25.npz + bm25-vocab.json as qabot wrote them before term counts (format 2): the same
    CSC structure holding ready-made Lucene weights, and each term's idf."""
    assert lex.tokens is not None and lex.offsets is not None
    n, df = len(lex.ids), np.diff(lex.indptr)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    lengths = np.diff(lex.offsets)
    norm = PARAMS.k1 * ((1 - PARAMS.b) + PARAMS.b * lengths / lengths.mean())
    term = np.repeat(np.arange(len(df)), df)
    tf = lex.tf.astype(np.float64)
    data = idf[term] * tf / (norm[lex.indices] + tf)
    np.savez(folder / "bm25.npz", ids=lex.ids, data=data.astype(np.float32), indices=lex.indices,
             indptr=lex.indptr, idf=idf.astype(np.float32), tokens=lex.tokens, offsets=lex.offsets)
    terms = sorted(lex.vocab, key=lex.vocab.__getitem__)
    (folder / "bm25-vocab.json").write_text(json.dumps({"terms": terms, "stopwords": sorted(lex.stopwords)}))
    return folder / "bm25.npz", folder / "bm25-vocab.json"


def baked_scores(matrix: Path, vocab: dict[str, int], question: str) -> dict[int, float]:
    """What the format-2 score() summed: the stored weights of the question's columns."""
    with np.load(matrix) as z:
        ids, data, indices, indptr = z["ids"], z["data"], z["indices"], z["indptr"]
    totals: dict[int, float] = {}
    for t in bm25.tokenize(question, bm25.ENGLISH_STOPWORDS, PARAMS.stemmer):
        if t in vocab:
            lo, hi = indptr[vocab[t]], indptr[vocab[t] + 1]
            for r, w in zip(indices[lo:hi].tolist(), data[lo:hi].tolist(), strict=True):
                totals[int(ids[r])] = totals.get(int(ids[r]), 0.0) + w
    return totals


def test_a_format_2_file_is_refused_by_load_and_read_by_from_v2(tmp_path: Path) -> None:
    lex = bm25.build(passages(0, 12), PARAMS)
    matrix, vocab = write_v2(lex, tmp_path)
    with pytest.raises(ValueError, match="run `qabot index`"):
        bm25.load(matrix, vocab, PARAMS.stemmer)
    upgraded = bm25.from_v2(matrix, vocab, PARAMS.stemmer)
    assert upgraded.vocab == lex.vocab and upgraded.stopwords == lex.stopwords
    for name in ("ids", "tf", "indices", "indptr", "lengths", "tokens", "offsets"):
        assert np.array_equal(getattr(upgraded, name), getattr(lex, name)), name
    for q in QUESTIONS:
        ids, scores, _ = bm25.score(stack(upgraded), q)
        baked = baked_scores(matrix, lex.vocab, q)
        assert set(ids.tolist()) == set(baked)
        assert scores.tolist() == pytest.approx([baked[i] for i in ids.tolist()], rel=1e-6)
    # and what it upgrades to saves and loads as a part of today's format
    names = bm25.save(upgraded, tmp_path)
    back = bm25.load(tmp_path / names["matrix"], tmp_path / names["vocab"], PARAMS.stemmer)
    assert bm25.score(stack(back), "ferry")[0].tolist() == bm25.score(stack(lex), "ferry")[0].tolist()


def test_a_stack_of_parts_tokenized_differently_or_out_of_order_is_refused() -> None:
    plain = bm25.build(passages(0, 3), BM25Params(stemmer=""))
    with pytest.raises(ValueError, match="tokenized differently"):
        stack(bm25.build(passages(3, 6), PARAMS), plain)
    with pytest.raises(ValueError, match="id order"):
        stack(bm25.build(passages(3, 6), PARAMS), bm25.build(passages(0, 3), PARAMS))
