"""question → best passages with citations. The one core function every front end calls."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from . import bm25, rank, vectors, walk
from .catalog import ArticleRecord, PassageRecord
from .chunk import split_sentences
from .config import SEARCH_MODES, SearchOptions
from .embed import Embedder
from .errors import BadQuestion, IndexIncompatible
from .passage import Passage, Source
from .reader import Retriever, Tables

MAX_QUESTION_CHARS = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_question(question: str) -> str:
    """The question, trimmed; BadQuestion when it is empty, too long or not text."""
    q = question.strip()
    if not q:
        raise BadQuestion("the question is empty; ask something, e.g. qabot ask \"Who won?\"")
    if len(q) > MAX_QUESTION_CHARS:
        raise BadQuestion(
            f"the question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}"
        )
    if not q.isascii() and _SURROGATE.search(q):
        # A lone surrogate (bytes that were not UTF-8, or a JSON "\ud800") is no character:
        # nothing can encode it, the tokenizer included.
        raise BadQuestion("the question holds bytes that are not text (not valid UTF-8 or a lone "
                          "\\ud800-style escape); check its encoding and type it again")
    return q


DEFAULTS = SearchOptions()


def search(
    retriever: Retriever,
    question: str,
    options: SearchOptions = DEFAULTS,
    *,
    floor: bool = True,
    since: dt.date | None = None,
    until: dt.date | None = None,
    as_of: dt.date | None = None,
    answers: bool = True,
    more: int = 0,
) -> list[Passage]:
    """The `options.k` best passages for the question, at most `options.per_article` from one
    article.

    `options.mode` picks the score: "dense" is the cosine similarity of question and passage,
    "bm25" the passage's BM25 score as a share of the most the question's words could score,
    and "hybrid" (the default) a weighted sum of the two. Articles outside [since, until] or
    published after `as_of` (default: today) are left out; near-duplicate articles come back
    as one passage listing the others in `duplicates`; among near-ties the newer article
    goes first. Passages under the mode's confidence floor (`options.floor`) are dropped, so an
    empty list means "no confident answer: the articles don't seem to cover this";
    `floor=False` keeps them (evaluations of the ranking). `answers=False` skips picking each
    passage's answering sentence (one model call over their sentences; the answer is then the
    whole passage): for evaluations that only look at the ranking.
    """
    q = check_question(question)
    k, mode = options.k, options.mode
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be one of {SEARCH_MODES}, not {mode!r}")
    snap = retriever.snapshot()
    if snap.vectors.ntotal == 0 or k < 1:
        return []
    if mode != "dense" and snap.lexical is None:
        raise IndexIncompatible(
            f"the index at {retriever.index_dir} has no BM25 part (an older qabot built it); run "
            f"`qabot index --index {retriever.index_dir}` to add it: nothing is re-embedded"
        )
    tables = retriever.tables(snap)
    encoder = retriever.encoder(snap)
    qvec = retriever.question_vector(snap, q)  # every mode needs it
    as_of = as_of or dt.date.today()
    found = score_rows(tables, q, qvec, options, since, until, as_of, retriever.nprobe)
    return passages_of(tables, Path(snap.manifest.build.seeds or "."), found, options, floor=floor,
                       encoder=encoder if answers else None, qvec=qvec, more=more)


@dataclass(frozen=True)
class Scored:
    """Rows of an index with the score the walk ranks them by and their own match (relevance:
    before article evidence and freshness). The seam between scoring and the walk: one process
    passes it on whole; a shard (shards.py) sends its best rows for the router to merge."""

    rows: np.ndarray  # positions in the View the walk reads (an index's rows, or merged candidates)
    scores: np.ndarray
    relevance: np.ndarray


def score_rows(
    tables: Tables, question: str | bm25.Question, qvec: np.ndarray, options: SearchOptions,
    since: dt.date | None, until: dt.date | None, as_of: dt.date, nprobe: int,
    given: Pools | None = None,
) -> Scored:
    """Every row the mode ranks (the candidates on an approximate index) with its scores;
    rows outside [since, until] or after `as_of` score -inf or are left out. A bm25.Question
    brings BM25 weights worked out elsewhere (a shard: over every shard). `given`: the
    candidates to score, chosen over the whole index (a shard of an approximate one: the
    router's merge of every shard's pools); this table's rows among them are scored."""
    allowed = tables.window(since, until, as_of)
    rows, relevance = _scores(tables, question, qvec, options, allowed, nprobe, given)
    scores = _weigh(tables, rows, relevance, options, as_of) if options.mode == "hybrid" else relevance
    return Scored(rows, scores, relevance)


class View(walk.Stories, Protocol):
    """What turns walked rows into Passages: a Tables, or the router's merged candidates."""

    ids: np.ndarray  # the passage id of each row

    def articles(self, nums: list[int]) -> dict[int, ArticleRecord]:
        """These articles, by number."""
        ...

    def passages(self, ids: list[int]) -> list[PassageRecord]:
        """These passages' records, in this order."""
        ...


def passages_of(
    view: View, seeds: Path, found: Scored, options: SearchOptions, *, floor: bool,
    encoder: Embedder | None, qvec: np.ndarray, more: int = 0, beyond: float = -np.inf,
) -> list[Passage]:
    """The ranking walk over scored rows, the confidence floor, then the Passages (search's
    docstring); `beyond`: rows scoring at most this may be missing (walk.pick)."""
    k, per_article = options.k, options.per_article
    rows, scores, relevance = found.rows, found.scores, found.relevance
    hits = walk.pick(view, rows, scores, k, per_article, options, relevance, beyond)
    if floor:
        # The floor judges how well the passage itself matches: a fresh article on another
        # topic, or one with a strong lead elsewhere, is still no answer to this question.
        hits = [h for h in hits if h.relevance >= options.floor]
    extra = [walk.next_best(view, rows, scores, relevance, hit, more) for hit in hits] if more > 0 else []
    besides = [h for e in extra for h in e]
    # One read of the catalog (a round trip to the shards) for the results and those beside them.
    records = view.passages([int(view.ids[h.row]) for h in [*hits, *besides]])
    passages = _to_passages(view, seeds, hits, encoder, qvec, records[: len(hits)])
    if more > 0:
        flat = _to_passages(view, seeds, besides, None, qvec, records[len(hits):])
        it = iter(flat)
        passages = [replace(p, more=tuple(replace(next(it), rank=p.rank) for _ in e))
                    for p, e in zip(passages, extra, strict=True)]
    return passages


# An approximate or compressed index is asked for this many nearest passages (and BM25 for as
# many best), then the union is scored exactly; a flat float32 index scores every passage.
CANDIDATES = 200


@dataclass(frozen=True)
class Pools:
    """An approximate index's candidates: the ANN's nearest passages and BM25's best, by passage
    id, each best first with the score that ranked it (ties: the lower id first, so pools from
    several shards merge into the ones a single search finds: `merge_pools`)."""

    dense_ids: np.ndarray  # int64
    dense_scores: np.ndarray  # float32
    lexical_ids: np.ndarray  # int64
    lexical_shares: np.ndarray  # float32


def pool_size(options: SearchOptions) -> int:
    """How many candidates each of the ANN and BM25 gives an approximate index's question."""
    return max(CANDIDATES, 4 * options.k * options.per_article)


def pools(tables: Tables, question: str | bm25.Question, qvec: np.ndarray, options: SearchOptions,
          allowed: np.ndarray | None, nprobe: int) -> Pools:
    """The candidates of this table's rows (`allowed` only): the pool_size nearest by the
    vector index and the as many best by BM25, for the modes that use them."""
    lexical = _allowed_lexical(tables, question, allowed) if options.mode != "dense" else None
    return _pools(tables, qvec, options, allowed, nprobe, lexical)


_NO_IDS, _NO_SCORES = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


def _pools(tables: Tables, qvec: np.ndarray, options: SearchOptions, allowed: np.ndarray | None,
           nprobe: int, lexical: tuple[np.ndarray, np.ndarray] | None) -> Pools:
    """pools(), BM25's rows and shares given (None: the mode does not use them)."""
    size = pool_size(options)
    dense_ids, dense_scores = _NO_IDS, _NO_SCORES
    if options.mode != "bm25":
        ids = None if allowed is None else tables.ids[allowed]
        scores, found = tables.snap.vectors.search(qvec, size, ids, nprobe)
        keep = found >= 0  # FAISS pads a short result with -1
        scores, found = scores[keep], found[keep]
        # Only ids of live rows: a deleted id that got through (the vector layer's deletion filter
        # is the only guard) would otherwise land on a neighbouring live row and score it.
        _, live = _rows_of(tables, found)
        order = np.lexsort((found[live], -scores[live]))
        dense_ids, dense_scores = found[live][order].astype(np.int64), scores[live][order].astype(np.float32)
    lexical_ids, lexical_shares = _NO_IDS, _NO_SCORES
    if lexical is not None:
        lex_rows, share = lexical
        lexical_ids, lexical_shares = tables.ids[lex_rows[:size]].astype(np.int64), share[:size]
    return Pools(dense_ids, dense_scores, lexical_ids, lexical_shares)


def merge_pools(found: Sequence[Pools], size: int) -> Pools:
    """Several shards' pools as one search of all their rows would have found them: each list's
    best `size` by score, ties to the lower passage id."""
    def best(ids: list[np.ndarray], scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        i = np.concatenate(ids or [np.zeros(0, dtype=np.int64)]).astype(np.int64)
        s = np.concatenate(scores or [np.zeros(0, dtype=np.float32)]).astype(np.float32)
        order = np.lexsort((i, -s))[:size]
        return i[order], s[order]

    dense = best([p.dense_ids for p in found], [p.dense_scores for p in found])
    lexical = best([p.lexical_ids for p in found], [p.lexical_shares for p in found])
    return Pools(dense[0], dense[1], lexical[0], lexical[1])


def _allowed_lexical(tables: Tables, question: str | bm25.Question,
                     allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """_lexical's rows and shares, those outside `allowed` left out."""
    lex_rows, share = _lexical(tables, question)
    if allowed is not None:
        keep = allowed[lex_rows]
        lex_rows, share = lex_rows[keep], share[keep]
    return lex_rows, share


def _rows_of(tables: Tables, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of those of `ids` this table holds, in their order, and which those are."""
    rows = np.searchsorted(tables.ids, ids)
    held = rows < len(tables.ids)
    held[held] = tables.ids[rows[held]] == ids[held]
    return rows[held], held


def _scores(
    tables: Tables, question: str | bm25.Question, qvec: np.ndarray, options: SearchOptions,
    allowed: np.ndarray | None, nprobe: int, given: Pools | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, score of each): every row the mode can rank on an exact index, the candidates
    otherwise (`given`, or this table's own pools); rows outside `allowed` are left out (or
    scored -inf)."""
    mode = options.mode
    if tables.exhaustive and given is None:
        scores = _exhaustive(tables, question, qvec, options)
        if allowed is not None:
            scores[~allowed] = -np.inf
        return np.arange(len(scores)), scores
    # BM25 scored once: its best are candidates, and its shares score every hybrid candidate.
    wants = mode == "hybrid" or (mode == "bm25" and given is None)
    lexical = _allowed_lexical(tables, question, allowed) if wants else None
    cand = given if given is not None else _pools(tables, qvec, options, allowed, nprobe, lexical)
    dense_rows, _ = _rows_of(tables, cand.dense_ids)
    pooled, held = _rows_of(tables, cand.lexical_ids)
    if mode == "bm25":
        return pooled, cand.lexical_shares[held]  # best first, as BM25 ranked them
    lex_rows, share = lexical if lexical is not None else (_NO_IDS, _NO_SCORES)
    rows = np.union1d(dense_rows, pooled)
    if not len(rows):  # a shard holding none of the candidates
        return rows, np.zeros(0, dtype=np.float32)
    if mode == "hybrid" and options.lead_weight:  # their articles' leads are evidence too
        rows = np.union1d(rows, tables.lead[rows])
    # Exact cosines from the stored vectors (decoded, for a compressed codec).
    dense = tables.snap.vectors.vectors_of(tables.ids[rows]) @ qvec
    if mode == "dense":
        return rows, dense.astype(np.float32)
    per_row = np.zeros(len(rows), dtype=np.float32)
    # Every scored row's share, also a dense candidate's or a lead's from past BM25's pool.
    at = np.minimum(np.searchsorted(rows, lex_rows), len(rows) - 1)
    found = rows[at] == lex_rows
    per_row[at[found]] = share[found]
    return rows, rank.fuse(dense, per_row, options.fusion_weight)


def _weigh(
    tables: Tables, rows: np.ndarray, scores: np.ndarray, tuning: SearchOptions, as_of: dt.date
) -> np.ndarray:
    """Hybrid scores with their article's evidence (its lead, its second-best passage) and
    freshness added: the same amount for every passage of an article, so each article's best
    passage stays its best. On an approximate index the second best is among the candidates."""
    if (tuning.lead_weight or tuning.second_share) and len(rows):
        if len(rows) == len(tables.ids):  # every row, in order (an exact index)
            lead = tables.lead
        else:
            at = np.minimum(np.searchsorted(rows, tables.lead[rows]), len(rows) - 1)
            lead = np.where(rows[at] == tables.lead[rows], at, -1)
        scores = rank.article_evidence(scores, tables.doc[rows], lead, tuning.lead_weight,
                                       tuning.second_share)
    if tuning.recency_weight:
        scores = scores + rank.recency_prior(tables.day[rows], as_of.toordinal(),
                                             tuning.recency_weight, tuning.recency_half_life)
    return scores


def _exhaustive(
    tables: Tables, question: str | bm25.Question, qvec: np.ndarray, options: SearchOptions
) -> np.ndarray:
    """One score per row; -inf for rows the mode can't rank (no word in common in bm25)."""
    mode = options.mode
    n = len(tables.ids)
    dense = None
    if mode != "bm25":
        dense = np.empty(n, dtype=np.float32)
        for matrix, rows, live in tables.matrices:
            found = vectors.inner_products(matrix, qvec)
            dense[rows] = found if live is None else found[live]
    if mode == "dense":
        assert dense is not None
        return dense
    lex_rows, share = _lexical(tables, question)
    per_row = np.zeros(n, dtype=np.float32)
    per_row[lex_rows] = share
    if mode == "bm25":
        return np.where(per_row > 0, per_row, -np.inf).astype(np.float32)
    assert dense is not None
    return rank.fuse(dense, per_row, options.fusion_weight)


def _lexical(tables: Tables, question: str | bm25.Question) -> tuple[np.ndarray, np.ndarray]:
    """(rows, BM25 share) of the passages sharing a word with the question, best first."""
    lex = tables.lexical
    assert lex is not None
    ids, raw, ceiling = bm25.score(lex, question)
    return np.searchsorted(tables.ids, ids), np.asarray(rank.lexical_share(raw, ceiling), dtype=np.float32)


def _to_passages(
    tables: View, seeds: Path, hits: list[walk.Hit], encoder: Embedder | None, qvec: np.ndarray,
    records: list[PassageRecord],
) -> list[Passage]:
    """The hits as Passages, from their passages' `records` (in the same order)."""
    answers = (_answer_sentences(records, encoder, qvec) if encoder is not None
               else [(r.start, r.end) for r in records])
    arts = tables.articles(sorted({n for h in hits for n in h.docs}))
    out = []
    for rank_, (hit, rec, (a_start, a_end)) in enumerate(zip(hits, records, answers, strict=True), 1):
        art = arts[hit.docs[0]]
        dups = tuple(
            Source(doc_id=a.doc_id, path=str(seeds / a.doc_id), date=tables.date(n), title=a.title)
            for n in hit.docs[1:] for a in [arts[n]]
        )
        out.append(Passage(
            rank=rank_, score=round(hit.score, 4), text=rec.text, doc_id=rec.doc_id,
            path=str(seeds / rec.doc_id), date=tables.date(hit.docs[0]), title=art.title,
            start=rec.start, end=rec.end, answer_start=a_start, answer_end=a_end, duplicates=dups,
            relevance=round(hit.relevance, 4), id=rec.id,
        ))
    return out


def _answer_sentences(
    records: list[PassageRecord], encoder: Embedder, qvec: np.ndarray
) -> list[tuple[int, int]]:
    """For each passage, the file span of its sentence closest to the question."""
    spans = [split_sentences(r.text) or [(0, len(r.text))] for r in records]
    flat = [r.text[s:e] for r, sp in zip(records, spans, strict=True) for s, e in sp]
    if not flat:
        return []
    sims = encoder.encode(flat) @ qvec
    out, i = [], 0
    for r, sp in zip(records, spans, strict=True):
        best = int(np.argmax(sims[i : i + len(sp)]))
        out.append((r.start + sp[best][0], r.start + sp[best][1]))
        i += len(sp)
    return out
