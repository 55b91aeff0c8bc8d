"""question → best passages with citations. The one core function every front end calls."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25, rank, store, vectors, walk
from .catalog import ArticleRecord, PassageRecord
from .chunk import split_sentences
from .config import SEARCH_MODES, SearchOptions
from .embed import Embedder, OnnxEmbedder, TorchEmbedder
from .errors import BadQuestion, IndexIncompatible
from .passage import Passage, Source

MAX_QUESTION_CHARS = 2000


class Retriever:
    """A loaded index that notices new generations: a long-running process never restarts.

    Each search takes the current snapshot once, so a reload in between never mixes two
    generations inside one answer.
    """

    def __init__(
        self, index_dir: Path, model: str | None = None, embedder: Embedder | None = None,
        nprobe: int = 0,
    ) -> None:
        self.index_dir = index_dir
        self.model = model
        # Cells an IVF index scans per question ([vectors] nprobe, 0: vectors.nprobe_for's
        # rule): read here, at query time, so a change needs no commit.
        self.nprobe = nprobe
        self._lock = threading.Lock()
        self._snap: store.Snapshot | None = None
        self._encoders: dict[str, Embedder] = {}
        self._fixed = embedder  # tests inject a fake; otherwise the index names its encoder
        self._tables: Tables | None = None

    def snapshot(self) -> store.Snapshot:
        """The newest committed generation (reloaded only when the manifest changed)."""
        stamp = store.manifest_stamp(self.index_dir)
        snap = self._snap
        if snap is not None and snap.stamp == stamp:
            return snap
        with self._lock:
            stamp = store.manifest_stamp(self.index_dir)
            if self._snap is None or self._snap.stamp != stamp:
                snap = store.load_snapshot(self.index_dir, self.model)
                # load_snapshot stamps the manifest after reading it: a commit landing in between
                # would pair the old generation with the new stamp, and no question would notice
                # until the next commit. Keep the stamp taken before the load: it can only be
                # older than what was read, which costs at worst one extra reload.
                snap = replace(snap, stamp=stamp)
                self._snap = snap
            return self._snap

    def encoder(self, snap: store.Snapshot) -> Embedder:
        """The question encoder matching this snapshot's model (ONNX; torch only if no export)."""
        if self._fixed is not None:
            return self._fixed
        folder = snap.manifest.build.encoder
        key = folder or f"torch:{snap.manifest.build.model.name}"
        enc = self._encoders.get(key)
        if enc is None:
            with self._lock:
                enc = self._encoders.get(key)
                if enc is None:
                    enc = (OnnxEmbedder(self.index_dir / folder) if folder
                           else TorchEmbedder(snap.manifest.build.model.name))
                    self._encoders = {key: enc}  # one model at a time: drop the old one
        return enc


    def newest(self, as_of: dt.date) -> dt.date | None:
        """The date of the newest article published on or before `as_of` (None: none dated)."""
        days = self.tables(self.snapshot()).day
        days = days[(days > 0) & (days <= as_of.toordinal())]
        return dt.date.fromordinal(int(days.max())) if len(days) else None

    def tables(self, snap: store.Snapshot) -> Tables:
        """Per-row arrays of this snapshot (built once per generation)."""
        tables = self._tables
        if tables is None or tables.snap is not snap:
            tables = self._tables = Tables(snap)
        return tables


class Tables:
    """A snapshot seen row by row (rows: its passages sorted by id): each row's article number
    and day, where BM25 and the exact matrix keep it, and the few articles a query shows.
    What the ranking walk asks of an index (a walk.Stories)."""

    def __init__(self, snap: store.Snapshot) -> None:
        self.snap = snap
        self.ids, self.doc, self.day = snap.rows.ids, snap.rows.doc, snap.rows.day
        self.max_day = int(self.day.max()) if len(self.day) else 0
        # The row of each row's article's first passage (its lead: headline and first
        # paragraph): an article's passages get consecutive ids in text order, so it is the
        # article's first row.
        _, first, group = np.unique(self.doc, return_index=True, return_inverse=True)
        self.lead = first[group].astype(np.int64) if len(self.doc) else np.zeros(0, np.int64)
        self.exhaustive = snap.layout.exact
        self.matrix = np.zeros((0, snap.vectors.d), dtype=np.float32)
        self.matrix_rows: np.ndarray | None = None  # None: matrix row i is row i
        if self.exhaustive:
            # A view of the index's storage: valid while self.snap holds the index.
            self.matrix, matrix_ids = vectors.flat_matrix(snap.vectors)
            order = np.searchsorted(self.ids, matrix_ids)
            if not np.array_equal(order, np.arange(len(order))):
                self.matrix_rows = order
        self.lexical_rows = np.zeros(0, dtype=np.int64)
        if snap.lexical is not None:  # the row of each BM25 row's passage
            self.lexical_rows = np.searchsorted(self.ids, snap.lexical.ids)
        # Bounded: at a million passages, caching every article ever shown would grow without end.
        self._articles: OrderedDict[int, ArticleRecord] = OrderedDict()
        self._shingles: OrderedDict[int, frozenset[int]] = OrderedDict()
        self._pairs: OrderedDict[tuple[int, int, float, float], bool] = OrderedDict()
        self._lock = threading.Lock()

    def window(self, since: dt.date | None, until: dt.date | None, as_of: dt.date) -> np.ndarray | None:
        """Rows whose article is in [since, until] and not published after `as_of`; None when
        that is every row (the usual case: nothing to filter).

        An undated article passes `as_of` (nothing says it is from the future) but not an
        explicit since/until (nothing says it is inside).
        """
        if since is None and until is None and as_of.toordinal() >= self.max_day:
            return None
        ok = (self.day <= as_of.toordinal()) | (self.day == 0)
        if since is not None:
            ok &= self.day >= since.toordinal()
        if until is not None:
            ok &= (self.day != 0) & (self.day <= until.toordinal())
        return ok

    def articles(self, nums: list[int]) -> dict[int, ArticleRecord]:
        """These articles (by number), read once per generation."""
        with self._lock:
            have = {n: self._articles[n] for n in nums if n in self._articles}
        missing = [n for n in nums if n not in have]
        if missing:
            have.update(self.snap.catalog.articles_by_num(missing))
            with self._lock:
                _remember(self._articles, {n: have[n] for n in missing})
        return {n: have[n] for n in nums}

    def date(self, num: int) -> dt.date | None:
        found = self.articles([num])[num].date
        return dt.date.fromisoformat(found) if found else None

    def same_story(self, doc: int, other: int, threshold: float, contained: float) -> bool:
        """True when one article nearly repeats (Jaccard from `threshold`) or contains (the
        shorter's shingles, from `contained`) the other. Remembered per generation: the stories
        a question brings up recur in the next questions, and each decision costs set operations
        over thousands of shingles."""
        key = (min(doc, other), max(doc, other), threshold, contained)
        with self._lock:
            found = self._pairs.get(key)
        if found is None:
            found = rank.same_story(self.shingles(doc), self.shingles(other), threshold, contained)
            with self._lock:
                self._pairs[key] = found
                while len(self._pairs) > CACHED_PAIRS:
                    self._pairs.popitem(last=False)
        return found

    def shingles(self, doc: int) -> frozenset[int]:
        """The article's word shingles, from its stored passages (overlaps add nothing new)."""
        with self._lock:
            found = self._shingles.get(doc)
        if found is None:
            ids = self.articles([doc])[doc].ids
            found = rank.shingles("\n".join(p.text for p in self.snap.catalog.passages(list(ids))))
            with self._lock:
                _remember(self._shingles, {doc: found})
        return found


CACHED_ARTICLES = 4096
CACHED_PAIRS = 1 << 16


def _remember(cache: OrderedDict[int, Any], new: dict[int, Any]) -> None:
    """Add to a least-recently-added cache of CACHED_ARTICLES entries."""
    cache.update(new)
    while len(cache) > CACHED_ARTICLES:
        cache.popitem(last=False)


def check_question(question: str) -> str:
    """The question, trimmed; BadQuestion when it is empty or too long."""
    q = question.strip()
    if not q:
        raise BadQuestion("the question is empty; ask something, e.g. qabot ask \"Who won?\"")
    if len(q) > MAX_QUESTION_CHARS:
        raise BadQuestion(
            f"the question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}"
        )
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
    k, per_article, mode = options.k, options.per_article, options.mode
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
    qvec = encoder.encode([q])[0]  # every mode needs it
    as_of = as_of or dt.date.today()
    allowed = tables.window(since, until, as_of)
    rows, relevance = _scores(tables, q, qvec, options, allowed, k * per_article, retriever.nprobe)
    scores = _weigh(tables, rows, relevance, options, as_of) if mode == "hybrid" else relevance
    hits = walk.pick(tables, rows, scores, k, per_article, options, relevance)
    if floor:
        # The floor judges how well the passage itself matches: a fresh article on another
        # topic, or one with a strong lead elsewhere, is still no answer to this question.
        hits = [h for h in hits if h.relevance >= options.floor]
    found = _to_passages(snap, tables, hits, encoder if answers else None, qvec)
    if more > 0:
        extra = [walk.next_best(tables, rows, scores, relevance, hit, more) for hit in hits]
        flat = _to_passages(snap, tables, [h for e in extra for h in e], None, qvec)
        it = iter(flat)
        found = [replace(p, more=tuple(replace(next(it), rank=p.rank) for _ in e))
                 for p, e in zip(found, extra, strict=True)]
    return found


# An approximate or compressed index is asked for this many nearest passages (and BM25 for as
# many best), then the union is scored exactly; a flat float32 index scores every passage.
CANDIDATES = 200


def _scores(
    tables: Tables, question: str, qvec: np.ndarray, options: SearchOptions,
    allowed: np.ndarray | None, wanted: int, nprobe: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, score of each): every row the mode can rank on an exact index, the candidates
    otherwise; rows outside `allowed` are left out (or scored -inf)."""
    mode = options.mode
    if tables.exhaustive:
        scores = _exhaustive(tables, question, qvec, options)
        if allowed is not None:
            scores[~allowed] = -np.inf
        return np.arange(len(scores)), scores
    pool = max(CANDIDATES, 4 * wanted)
    dense_rows = np.zeros(0, dtype=np.int64)
    if mode != "bm25":
        ids = None if allowed is None else tables.ids[allowed]
        _, found = vectors.search(tables.snap.vectors, tables.snap.layout, qvec, pool, ids, nprobe)
        dense_rows = np.searchsorted(tables.ids, found)
    lex_rows, share = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if mode != "dense":
        lex_rows, share = _lexical(tables, question)
        if allowed is not None:
            keep = allowed[lex_rows]
            lex_rows, share = lex_rows[keep], share[keep]
    if mode == "bm25":
        return lex_rows[:pool], share[:pool]
    rows = np.union1d(dense_rows, lex_rows[:pool])
    if mode == "hybrid" and options.lead_weight:  # their articles' leads are evidence too
        rows = np.union1d(rows, tables.lead[rows])
    # Exact cosines from the stored vectors (decoded, for a compressed codec).
    dense = vectors.vectors_of(tables.snap.vectors, tables.ids[rows]) @ qvec
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
    tables: Tables, question: str, qvec: np.ndarray, options: SearchOptions
) -> np.ndarray:
    """One score per row; -inf for rows the mode can't rank (no word in common in bm25)."""
    mode = options.mode
    n = len(tables.ids)
    dense = None
    if mode != "bm25":
        dense = np.empty(n, dtype=np.float32)
        if tables.matrix_rows is None:
            dense[:] = tables.matrix @ qvec
        else:
            dense[tables.matrix_rows] = tables.matrix @ qvec
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


def _lexical(tables: Tables, question: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, BM25 share) of the passages sharing a word with the question, best first."""
    lex = tables.snap.lexical
    assert lex is not None
    ids, raw, ceiling = bm25.score(lex, question)
    return np.searchsorted(tables.ids, ids), np.asarray(rank.lexical_share(raw, ceiling), dtype=np.float32)


def _to_passages(
    snap: store.Snapshot, tables: Tables, hits: list[walk.Hit], encoder: Embedder | None,
    qvec: np.ndarray,
) -> list[Passage]:
    seeds = Path(snap.manifest.build.seeds or ".")
    records = snap.catalog.passages([int(tables.ids[h.row]) for h in hits])
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
            relevance=round(hit.relevance, 4),
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
