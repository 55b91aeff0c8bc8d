"""Hybrid retrieval: BM25 kept with the index, fusion, dates, duplicates and the confidence floor."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qabot import bm25, rank, store
from qabot.config import BM25Params, ModelSettings, PathSettings, SearchOptions, Settings
from qabot.errors import IndexIncompatible
from qabot.indexer import run_index
from qabot.passage import Passage
from qabot.reader import Retriever
from qabot.retrieve import search
from tests.conftest import indexed, run_qabot
from tests.fakes import FakeEmbedder

FIXTURE = Path(__file__).parent / "fixtures" / "retrieval"
RARE = "Why was lot 7734-QX recalled?"  # a number and a code: words the model has never seen
PARAPHRASE = "Do kids who use phones late get less rest, according to doctors?"  # no word in common
ECB = "What did the European Central Bank do with its main interest rate?"
D = dt.date.fromisoformat


def quiet(msg: str) -> None:
    pass


def docs(passages: list[Passage]) -> list[str]:
    return [p.doc_id.removesuffix(".txt") for p in passages]


# ---------------------------------------------------------------- pure parts


def test_tokenize_lowercases_drops_stopwords_and_stems() -> None:
    stop = bm25.stopword_list("english")
    assert bm25.tokenize("The Volcanoes were ERUPTING in 2024, a 3 km fissure", stop, "english") == [
        "volcano", "were", "erupt", "2024", "3", "km", "fissur"]
    assert bm25.tokenize("The Volcanoes", frozenset(), "") == ["the", "volcanoes"]


def test_english_stop_words_are_the_list_bm25s_ships() -> None:
    from bm25s.stopwords import STOPWORDS_EN

    assert bm25.stopword_list("english") == frozenset(STOPWORDS_EN) and len(STOPWORDS_EN) == 33


def one(lex: bm25.Lexical, params: BM25Params | None = None) -> bm25.Stack:
    """A stack of one part with nothing deleted: what a single-segment index scores."""
    return bm25.Stack.of((lex,), np.zeros(0, np.int64), params or BM25Params())


def test_bm25_scores_match_bm25s() -> None:
    """One part scores every passage with the weight bm25s builds (method="lucene"), term by term."""
    import bm25s

    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 300, size=rng.integers(0, 60)).astype(np.int32) for _ in range(500)]
    rows[7] = np.zeros(0, dtype=np.int32)  # an empty passage counts in N and the mean length
    used = np.unique(np.concatenate(rows))
    rows = [np.searchsorted(used, r).astype(np.int32) for r in rows]  # terms 0..V-1
    params = BM25Params(k1=0.9, b=0.4, stemmer="", stopwords="")
    lex = bm25.build([(r, " ".join(f"w{t}" for t in row)) for r, row in enumerate(rows)], params)
    ref = bm25s.BM25(k1=0.9, b=0.4, method="lucene").build_index_from_ids(
        list(range(len(used))), [r.tolist() for r in rows], show_progress=False)
    stack = one(lex, params)
    for t in range(len(used)):
        lo, hi = ref["indptr"][t], ref["indptr"][t + 1]
        ids, scores, ceiling = bm25.score(stack, f"w{t}")
        order = np.argsort(ids)
        assert np.array_equal(ids[order], ref["indices"][lo:hi])
        np.testing.assert_allclose(scores[order], ref["data"][lo:hi], rtol=1e-6)
        assert scores.max() < ceiling


def test_term_counts_saturate_at_uint16_and_lengths_stay_exact() -> None:
    """tf is stored as uint16: a passage (chunks are at most a few hundred tokens) never comes
    near 65,535 repeats of a word, and one that did would still score near the term's idf."""
    lex = bm25.build([(0, "lava " * 70_000), (1, "lava town")], BM25Params(stemmer="", stopwords=""))
    assert lex.tf.dtype == np.uint16 and lex.tf.tolist() == [65_535, 1, 1]
    assert lex.lengths.tolist() == [70_000, 2]
    ids, scores, ceiling = bm25.score(one(lex), "lava")
    assert ids.tolist() == [0, 1] and scores[0] < ceiling


def test_incremental_bm25_equals_a_fresh_build_and_tokenizes_only_new_passages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = ["Lava reached Grindavik overnight.", "The cup final ended 2-1 at Wembley.",
             "Rates held at 4.5 percent.", "Lava fountains lit the sky over Grindavik."]
    params = bm25.Params()
    old = bm25.build(list(enumerate(texts)), params)
    calls: list[str] = []
    real = bm25.tokenize

    def counting(text: str, stopwords: frozenset[str] = frozenset(), stemmer: str = "") -> list[str]:
        calls.append(text)
        return real(text, stopwords, stemmer)

    monkeypatch.setattr(bm25, "tokenize", counting)
    now = [(1, texts[1]), (3, texts[3]), (7, "Penguins huddle against the lava-cold wind.")]
    updated = bm25.build(now, params, old)
    assert calls == [now[2][1]]  # unchanged passages reuse their stored tokens
    fresh = bm25.build(now, params)
    for q in ("lava Grindavik", "cup final", "penguins wind", "rates"):
        a, b = bm25.score(one(updated), q), bm25.score(one(fresh), q)
        assert a[0].tolist() == b[0].tolist() and np.allclose(a[1], b[1]) and a[2] == pytest.approx(b[2])
    assert "rate" not in updated.vocab  # terms only removed passages used are dropped


def test_save_and_load_round_trip_without_pickle(tmp_path: Path) -> None:
    lex = bm25.build([(5, "Lava reached Grindavik."), (9, "Wembley cup final.")], bm25.Params())
    names = bm25.save(lex, tmp_path)
    with np.load(tmp_path / names["matrix"], allow_pickle=False) as z:
        assert all(z[name].dtype != object for name in z.files)
    back = bm25.load(tmp_path / names["matrix"], tmp_path / names["vocab"], "english")
    assert back.tokens is None and back.vocab == lex.vocab
    assert bm25.score(one(back), "lava")[0].tolist() == [5]
    # memory-mapped from the file, not copied, and read-only: a commit writes new files instead
    assert isinstance(back.tf.base, np.memmap) and not back.tf.flags.writeable
    for name in ("ids", "tf", "indices", "indptr", "lengths"):
        assert np.array_equal(getattr(back, name), getattr(lex, name))
        assert getattr(back, name).dtype == getattr(lex, name).dtype
    full = bm25.load(tmp_path / names["matrix"], tmp_path / names["vocab"], "english", with_tokens=True)
    assert full.tokens is not None and lex.tokens is not None
    assert np.array_equal(full.tokens, lex.tokens)


def test_an_npz_written_compressed_still_loads(tmp_path: Path) -> None:
    lex = bm25.build([(5, "Lava reached Grindavik."), (9, "Wembley cup final.")], bm25.Params())
    names = bm25.save(lex, tmp_path)
    with np.load(tmp_path / names["matrix"]) as z:
        np.savez_compressed(tmp_path / names["matrix"], **{k: z[k] for k in z.files})
    back = bm25.load(tmp_path / names["matrix"], tmp_path / names["vocab"], "english")
    assert bm25.score(one(back), "wembley")[0].tolist() == [9] and not isinstance(back.tf.base, np.memmap)


def test_the_ceiling_counts_words_no_passage_has() -> None:
    lex = one(bm25.build([(1, "Manchester United won the cup."), (2, "Lava reached the town.")],
                         bm25.Params()))
    _, known, ceiling_known = bm25.score(lex, "won cup")
    _, partly, ceiling_more = bm25.score(lex, "who won the Nobel prize")
    assert ceiling_more > ceiling_known
    share = rank.lexical_share(partly, ceiling_more)[0]
    assert 0 < share < rank.lexical_share(known, ceiling_known)[0] / 2
    assert bm25.score(lex, "sourdough")[0].size == 0


def test_fusion_is_a_convex_combination() -> None:
    dense, share = np.array([0.8, 0.2, 0.5]), np.array([0.0, 0.6, 0.5])
    assert rank.fuse(dense, share, 0.5).tolist() == pytest.approx([0.4, 0.4, 0.5])
    assert rank.fuse(dense, share, 1.0).tolist() == pytest.approx(dense.tolist())
    assert rank.lexical_share(np.array([2.0, 1.0]), 4.0).tolist() == [0.5, 0.25]
    assert rank.lexical_share(np.array([2.0]), 0.0).tolist() == [0.0]


def test_recency_bonus_lets_the_newer_of_near_ties_go_first() -> None:
    jan, jun = D("2024-01-18"), D("2024-06-06")
    # near-tied: the newer one gains the whole margin and overtakes
    assert rank.recency_bonus([0.50, 0.49], [jan, jun], 0.02) == pytest.approx([0.50, 0.51])
    # far apart: nothing moves; margin 0: nothing changes at all
    assert rank.recency_bonus([0.50, 0.40], [jan, jun], 0.02) == [0.50, 0.40]
    assert rank.recency_bonus([0.50, 0.49], [jan, jun], 0.0) == [0.50, 0.49]
    # undated counts as oldest; equal dates are no reason to move
    assert rank.recency_bonus([0.50, 0.49], [None, jan], 0.02) == pytest.approx([0.50, 0.51])
    assert rank.recency_bonus([0.50, 0.49], [jan, jan], 0.02) == [0.50, 0.49]
    # three near-ties: the bonus is the share of near-ties that are older
    out = rank.recency_bonus([0.50, 0.495, 0.49], [jan, D("2024-03-01"), jun], 0.02)
    assert out == pytest.approx([0.50, 0.505, 0.51])


def test_shingle_jaccard() -> None:
    a = rank.shingles("Lava reached the fishing town of Grindavik on Tuesday night.")
    assert rank.jaccard(a, a) == 1.0
    b = rank.shingles("Lava reached the fishing town of Grindavik on Tuesday night. Reuters.")
    assert 0.7 < rank.jaccard(a, b) < 1.0
    assert rank.jaccard(a, rank.shingles("The cup final ended 2-1 at Wembley.")) == 0.0
    assert rank.shingles("Two words") and rank.jaccard(frozenset(), frozenset()) == 0.0


def test_recency_prior_halves_every_half_life_and_skips_undated() -> None:
    today = D("2024-06-10").toordinal()
    days = np.array([today, today - 7, today - 14, 0, today + 3])
    prior = rank.recency_prior(days, today, 0.1, 7.0)
    assert prior.tolist() == pytest.approx([0.1, 0.05, 0.025, 0.0, 0.1])
    assert rank.recency_prior(days, today, 0.0, 7.0).tolist() == [0.0] * 5


def test_article_evidence_adds_the_lead_and_second_passage_per_article() -> None:
    # rows 0-2: article 7 (row 0 its lead), rows 3-4: article 9 (row 3 its lead)
    scores = np.array([0.6, 0.3, 0.5, 0.1, 0.7], dtype=np.float32)
    doc, lead = np.array([7, 7, 7, 9, 9]), np.array([0, 0, 0, 3, 3])
    assert rank.article_evidence(scores, doc, lead, 0.0, 0.0).tolist() == pytest.approx(scores.tolist())
    with_lead = rank.article_evidence(scores, doc, lead, 0.5, 0.0)
    assert with_lead.tolist() == pytest.approx([0.9, 0.6, 0.8, 0.15, 0.75])
    assert int(np.argmax(with_lead)) == 0  # article 7's lead beats 9's single strong passage
    second = rank.article_evidence(scores, doc, lead, 0.0, 0.5)
    assert second.tolist() == pytest.approx([0.85, 0.55, 0.75, 0.15, 0.75])
    # an unscored lead (-1) or a -inf one (outside the date window) adds nothing
    lone = rank.article_evidence(np.array([0.4, -np.inf]), np.array([1, 1]), np.array([-1, 1]), 0.5, 0.5)
    assert lone[0] == pytest.approx(0.4) and lone[1] == -np.inf


def test_containment_spots_a_cut_down_copy_jaccard_misses() -> None:
    full = rank.shingles("Lava reached the fishing town of Grindavik on Tuesday night. "
                         "Police had evacuated its 3,700 residents in the morning. "
                         "Scientists said the eruption could last for weeks, and roads stay shut.")
    cut = rank.shingles("Lava reached the fishing town of Grindavik on Tuesday night.")
    assert rank.jaccard(full, cut) < 0.5 and rank.containment(full, cut) == 1.0
    other = rank.shingles("The cup final ended 2-1 at Wembley on Saturday night.")
    assert rank.containment(full, other) == 0.0 and rank.containment(full, frozenset()) == 0.0


def test_settings_carry_the_measured_defaults_and_refuse_bad_values(tmp_path: Path) -> None:
    from qabot.config import load_settings
    from qabot.errors import ConfigError

    defaults = Settings()
    assert defaults.search == SearchOptions()  # one set of measured values, in two places
    floors = [replace(defaults.search, mode=m).floor for m in ("hybrid", "dense", "bm25")]
    o = defaults.search
    assert floors == [o.min_score, o.min_score_dense, o.min_score_bm25]
    f = tmp_path / "q.toml"
    f.write_text('[search]\nmode = "bm25"\nmin_score = 0.3\n[bm25]\nk1 = 1.5\ntitles = false\n')
    s = load_settings(f, env={})
    assert (s.search.mode, s.search.min_score, s.bm25.k1, s.bm25.titles) == ("bm25", 0.3, 1.5, False)
    assert s.search.floor == s.search.min_score_bm25  # the floor follows the mode
    for bad in (
        '[search]\nmode = "fuzzy"\n',
        "[search]\nfusion_weight = 2\n",
        '[bm25]\nstemmer = "klingon"\n',
    ):
        f.write_text(bad)
        with pytest.raises(ConfigError):
            load_settings(f, env={})


# ---------------------------------------------------------------- BM25 kept with the index


@pytest.fixture
def fake_index(tmp_path: Path) -> tuple[Settings, FakeEmbedder]:
    seeds = tmp_path / "seeds"
    shutil.copytree(FIXTURE / "seeds", seeds)
    settings = Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx"),
                        model=ModelSettings(name="fake-embedder"))
    fake = FakeEmbedder()
    run_index(settings, log=quiet, embedder=fake)
    return settings, fake


def test_bm25_is_committed_with_each_generation(fake_index: tuple[Settings, FakeEmbedder]) -> None:
    settings, fake = fake_index
    manifest = store.load_manifest(settings.index)
    assert manifest is not None
    entry = manifest.build.lexical
    gen, segment = manifest.folder, manifest.segments[-1]
    assert entry is not None
    assert segment.files_of("bm25") == (f"{gen}/bm25.npz", f"{gen}/bm25-vocab.json")
    defaults = Settings()
    assert (entry.params.k1, entry.params.b, entry.params.titles) == (defaults.bm25.k1, defaults.bm25.b, True)
    snap = store.load_snapshot(settings.index)
    assert snap.lexical is not None and sorted(snap.lexical.ids.tolist()) == sorted(snap.passages)

    (settings.seeds / "penguins.txt").write_text(" date 2024-06-01 Emperor penguins huddle.")
    (settings.seeds / "football.txt").unlink()
    run_index(settings, log=quiet, embedder=fake)
    r = Retriever(settings.index, embedder=fake)
    assert docs(search(r, "penguins", SearchOptions(k=1, mode="bm25"), floor=False)) == ["penguins"]
    assert "football" not in docs(
        search(r, "Wembley Garnacho", SearchOptions(k=10, mode="bm25"), floor=False)
    )


def test_an_index_without_bm25_gets_it_without_re_embedding(
    fake_index: tuple[Settings, FakeEmbedder],
) -> None:
    settings, fake = fake_index
    path = settings.index / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["bm25"]  # as an older qabot wrote it
    path.write_text(json.dumps(manifest))
    r = Retriever(settings.index, embedder=fake)
    with pytest.raises(IndexIncompatible, match="no BM25 part.*qabot index"):
        search(r, RARE, floor=False)
    assert search(r, RARE, SearchOptions(mode="dense"), floor=False)
    before = len(fake.embedded)
    messages: list[str] = []
    report = run_index(settings, log=messages.append, embedder=fake)
    assert report.committed and report.passages_embedded == 0 and len(fake.embedded) == before
    assert any("nothing is re-embedded" in m for m in messages)
    assert docs(search(r, RARE, SearchOptions(k=1, mode="bm25"), floor=False)) == ["recall_valsartan"]
    assert not run_index(settings, log=quiet, embedder=fake).committed
    # new BM25 parameters rebuild the matrix, and still embed nothing
    tuned = Settings(paths=PathSettings(seeds=settings.seeds, index=settings.index),
                     model=ModelSettings(name="fake-embedder"), bm25=BM25Params(k1=1.5))
    before = len(fake.embedded)
    report = run_index(tuned, log=quiet, embedder=fake)
    assert report.committed and len(fake.embedded) == before
    committed = store.load_manifest(settings.index)
    assert committed is not None and committed.build.lexical is not None
    assert committed.build.lexical.params.k1 == 1.5


# ---------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Settings:
    root = tmp_path_factory.mktemp("news")
    shutil.copytree(FIXTURE / "seeds", root / "seeds")
    return indexed(root / "seeds", encoder_cache)


@pytest.fixture(scope="module")
def retriever(news: Settings) -> Retriever:
    return Retriever(news.index)


def test_hybrid_answers_what_dense_and_bm25_each_miss(retriever: Retriever) -> None:
    top = {
        mode: {
            q: docs(search(retriever, q, SearchOptions(k=3, mode=mode), floor=False))[0]
            for q in (RARE, PARAPHRASE)
        }
        for mode in ("dense", "bm25", "hybrid")
    }
    assert top["dense"][RARE] != "recall_valsartan"  # the model reads "recalled pills", not the lot
    assert top["bm25"][RARE] == "recall_valsartan"
    assert top["bm25"][PARAPHRASE] != "screens_sleep"  # no word of the question is in it
    assert top["dense"][PARAPHRASE] == "screens_sleep"
    assert top["hybrid"] == {RARE: "recall_valsartan", PARAPHRASE: "screens_sleep"}


def test_every_mode_picks_an_answering_sentence(retriever: Retriever) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        (p,) = search(retriever, "How many residents were evacuated from Grindavik?",
                      SearchOptions(k=1, mode=mode), floor=False)
        assert p.start <= p.answer_start < p.answer_end <= p.end
        assert "3,700" in p.answer, mode


def test_date_window_and_as_of(retriever: Retriever) -> None:
    everything = docs(search(retriever, ECB, SearchOptions(k=20), floor=False))
    assert "olive_oil" in everything  # undated: nothing says it is from the future
    window = search(retriever, ECB, SearchOptions(k=20), floor=False, since=D("2024-05-01"),
                    until=D("2024-05-31"))
    assert window and all(p.date and D("2024-05-01") <= p.date <= D("2024-05-31") for p in window)
    assert "olive_oil" not in docs(
        search(retriever, ECB, SearchOptions(k=20), floor=False, since=D("2024-01-01"))
    )
    as_of = search(retriever, ECB, SearchOptions(k=20), floor=False, as_of=D("2024-03-01"))
    assert all(p.date is None or p.date <= D("2024-03-01") for p in as_of)
    assert docs(as_of)[0] == "ecb_january"
    assert search(retriever, ECB, floor=False, since=D("2030-01-01")) == []


def test_the_newer_of_two_near_tied_stories_goes_first(retriever: Retriever) -> None:
    plain = search(retriever, ECB, replace(SearchOptions(recency_margin=0.0), k=2, mode="hybrid"),
                   floor=False)
    assert docs(plain) == ["ecb_january", "ecb_june"]  # the older one scores a hair higher
    assert plain[0].score - plain[1].score < Settings().search.recency_margin
    latest = search(
        retriever, ECB, SearchOptions(k=2), floor=False, as_of=D("2024-12-31")
    )  # the default margin
    assert docs(latest) == ["ecb_june", "ecb_january"]
    assert latest[0].score >= latest[1].score
    far = search(
        retriever, "Who won the FA Cup final?", SearchOptions(k=2), floor=False
    )  # a clear winner is not moved
    assert docs(far)[0] == "football"


def test_near_identical_articles_collapse_into_one_result(retriever: Retriever) -> None:
    hits = search(retriever, "How many residents were evacuated from Grindavik?", SearchOptions(k=5),
                  floor=False)
    volcano = [p for p in hits if p.doc_id.startswith("volcano")]
    assert len(volcano) == 1
    (p,) = volcano
    assert {p.doc_id, *(s.doc_id for s in p.duplicates)} == {"volcano.txt", "volcano_syndicated.txt"}
    assert p.doc_id == "volcano_syndicated.txt"  # the newer copy is shown, the older listed
    assert [(s.doc_id, s.date) for s in p.duplicates] == [("volcano.txt", D("2024-03-12"))]
    assert len({q.doc_id for q in hits}) == len(hits)
    older = search(retriever, "How many residents were evacuated from Grindavik?", SearchOptions(k=5),
                   floor=False, as_of=D("2024-03-13"))
    assert docs(older)[0] == "volcano" and not older[0].duplicates  # the copy isn't out yet
    apart = search(
        retriever, ECB, SearchOptions(k=5), floor=False
    )  # same wording pattern, different stories: both stay
    assert {"ecb_january", "ecb_june"} <= set(docs(apart))


# Questions the hybrid floor ([search] min_score 0.20) was NOT chosen on: it was set on SciFact and on
# tests/fixtures/retrieval/queries.jsonl (docs/retrieval.md), and the bot's on benchmarks/bot.py's
# lists and benchmarks/unanswerable.jsonl; a test re-checking those would only restate the choice.
# Written for this test before their scores were looked at, long and precise or short chat-style.
HELD_OUT = {
    "How long did the junior doctors' strike in England last?": "doctors_strike",
    "what happened to planned operations during the doctors strike": "doctors_strike",
    "Who opened the scoring at Wembley?": "football",
    "near which pole did the odysseus spacecraft land": "moon_landing",
    "Why is olive oil so expensive this year?": "olive_oil",
    "Which company made the heart pills that were recalled?": "recall_heart_pills",
    "how many factory visits did the danish medicines agency make": "recall_valsartan",
    "How much shorter do teenagers who use screens at bedtime sleep?": "screens_sleep",
    "ecb rate cut june": "ecb_june",
    # the newer copy of the volcano story is the one shown
    "Which office measured the seismic activity before the Icelandic eruption?": "volcano_syndicated",
}
HELD_OUT_OFF_TOPIC = ["Who directed the film Jaws?", "how many legs does a spider have",
                      "What's a good recipe for banana bread?", "How do I renew my passport?",
                      "what time does the sun set in winter", "Which instrument did Jimi Hendrix play?"]


def test_the_confidence_floor_separates_answerable_from_off_topic(retriever: Retriever) -> None:
    """On questions it was not chosen on, the hybrid floor keeps every answerable one (with its
    article first) and lets no off-topic one through."""
    floor = Settings().search.min_score
    assert floor > 0
    kept = {q: search(retriever, q, SearchOptions(k=1, min_score=floor), answers=False) for q in HELD_OUT}
    scores = {q: [round(p.relevance, 3) for p in search(retriever, q, SearchOptions(k=1), floor=False,
                                                          answers=False)] for q in HELD_OUT}
    assert {q: docs(found) for q, found in kept.items()} == {q: [d] for q, d in HELD_OUT.items()}, scores
    for q in HELD_OUT_OFF_TOPIC:
        top = search(retriever, q, SearchOptions(k=1), floor=False, answers=False)[0]
        assert search(retriever, q, SearchOptions(min_score=floor), answers=False) == [], (q, top.relevance)
        assert top.relevance < floor  # there was something: the floor took it away


def test_cli_ask_modes_dates_duplicates_and_no_confident_answer(news: Settings) -> None:
    where = ["--seeds", str(news.seeds), "--index", str(news.index)]
    proc = run_qabot("ask", *where, "--json", "--mode", "bm25", "--since", "2024-03-01", "--until",
                     "2024-03-31", "-k", "2", "How many residents were evacuated from Grindavik?")
    assert proc.returncode == 0, proc.stderr
    (p,) = json.loads(proc.stdout)["passages"]
    assert p["doc_id"] == "volcano_syndicated.txt" and p["date"] == "2024-03-14"
    assert p["duplicates"] == [
        {
            "doc_id": "volcano.txt",
            "path": str(news.seeds / "volcano.txt"),
            "title": p["title"],
            "date": "2024-03-12",
        }
    ]
    assert "3,700" in p["text"][p["answer_start"] - p["start"] : p["answer_end"] - p["start"]]
    proc = run_qabot("ask", *where, HELD_OUT_OFF_TOPIC[0])
    assert proc.returncode == 0 and "No confident answer" in proc.stdout
    proc = run_qabot("ask", *where, "--as-of", "2024-13-01", ECB)
    assert proc.returncode == 2 and "--as-of" in proc.stderr and "Traceback" not in proc.stderr
