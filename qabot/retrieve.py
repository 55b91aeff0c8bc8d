"""question → best passages with citations. The one core function every front end calls."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25, rank, store
from .chunk import split_sentences
from .config import SEARCH_MODES
from .embed import Embedder, OnnxEmbedder, TorchEmbedder
from .errors import BadQuestion, IndexIncompatible

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class Source:
    """Another article carrying the same story (near-identical text): syndicated or re-published."""

    doc_id: str
    path: str
    date: dt.date | None
    title: str


@dataclass(frozen=True)
class Passage:
    """One answer: the passage text, its score, and everything a citation needs."""

    rank: int
    score: float
    text: str
    doc_id: str
    path: str
    date: dt.date | None
    title: str
    start: int  # character offsets of the passage in the article file
    end: int
    answer_start: int  # the sentence that best answers the question, offsets in the file
    answer_end: int
    duplicates: tuple[Source, ...] = ()  # the other articles with near-identical text

    @property
    def answer(self) -> str:
        """The best-answering sentence itself."""
        return self.text[self.answer_start - self.start : self.answer_end - self.start]


class Retriever:
    """A loaded index that notices new generations: a long-running process never restarts.

    Each search takes the current snapshot once, so a reload in between never mixes two
    generations inside one answer.
    """

    def __init__(
        self, index_dir: Path, model: str | None = None, embedder: Embedder | None = None
    ) -> None:
        self.index_dir = index_dir
        self.model = model
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
            if self._snap is None or self._snap.stamp != stamp:
                self._snap = store.load_snapshot(self.index_dir, self.model)
            return self._snap

    def encoder(self, snap: store.Snapshot) -> Embedder:
        """The question encoder matching this snapshot's model (ONNX; torch only if no export)."""
        if self._fixed is not None:
            return self._fixed
        folder = snap.manifest.get("encoder")
        key = folder or f"torch:{snap.manifest['model']['name']}"
        enc = self._encoders.get(key)
        if enc is None:
            with self._lock:
                enc = self._encoders.get(key)
                if enc is None:
                    enc = (OnnxEmbedder(self.index_dir / folder) if folder
                           else TorchEmbedder(snap.manifest["model"]["name"]))
                    self._encoders = {key: enc}  # one model at a time: drop the old one
        return enc


    def tables(self, snap: store.Snapshot) -> Tables:
        """Per-row arrays of this snapshot (built once per generation)."""
        tables = self._tables
        if tables is None or tables.snap is not snap:
            tables = self._tables = Tables(snap)
        return tables


class Tables:
    """A snapshot seen row by row: the dense matrix, and each row's article, date and BM25 row."""

    def __init__(self, snap: store.Snapshot) -> None:
        import faiss

        self.snap = snap
        flat: Any = faiss.downcast_index(snap.vectors.index)
        n, d = flat.ntotal, flat.d
        # A view of FAISS's own storage, no copy: exact inner products for every row at once.
        self.matrix = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d) if n else np.zeros((0, d))
        self.ids = faiss.vector_to_array(snap.vectors.id_map).astype(np.int64)
        articles = snap.manifest["articles"]
        self.docs = sorted(articles)
        number = {doc: i for i, doc in enumerate(self.docs)}
        self.doc = np.array([number[snap.passages[i].doc_id] for i in self.ids.tolist()], dtype=np.int64)
        dates = [_date(articles[doc]) for doc in self.docs]
        self.dates = dates
        self.day = np.array([dates[i].toordinal() if dates[i] else 0 for i in self.doc.tolist()],
                            dtype=np.int64)  # 0: undated
        self.lexical_row = np.zeros(0, dtype=np.int64)
        self.lexical_order = np.zeros(0, dtype=np.int64)
        if snap.lexical is not None:  # where each dense row's passage sits in the BM25 matrix
            self.lexical_order = np.argsort(snap.lexical.ids)
            self.lexical_row = self.lexical_order[
                np.searchsorted(snap.lexical.ids, self.ids, sorter=self.lexical_order)]
        self._shingles: dict[int, frozenset[int]] = {}

    def window(self, since: dt.date | None, until: dt.date | None, as_of: dt.date) -> np.ndarray:
        """Rows whose article is in [since, until] and not published after `as_of`.

        An undated article passes `as_of` (nothing says it is from the future) but not an
        explicit since/until (nothing says it is inside).
        """
        ok = (self.day <= as_of.toordinal()) | (self.day == 0)
        if since is not None:
            ok &= self.day >= since.toordinal()
        if until is not None:
            ok &= (self.day != 0) & (self.day <= until.toordinal())
        return ok

    def shingles(self, doc: int) -> frozenset[int]:
        """The article's word shingles, from its stored passages (overlaps add nothing new)."""
        found = self._shingles.get(doc)
        if found is None:
            meta = self.snap.manifest["articles"][self.docs[doc]]
            text = "\n".join(self.snap.passages[i].text for i in meta["ids"])
            found = self._shingles[doc] = rank.shingles(text)
        return found


def _date(meta: dict[str, object]) -> dt.date | None:
    value = meta.get("date")
    return dt.date.fromisoformat(value) if isinstance(value, str) else None


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


def search(
    retriever: Retriever,
    question: str,
    k: int = 5,
    per_article: int = 1,
    min_score: float | None = None,
    *,
    mode: str = "hybrid",
    since: dt.date | None = None,
    until: dt.date | None = None,
    as_of: dt.date | None = None,
    tuning: rank.Tuning | None = None,
    answers: bool = True,
) -> list[Passage]:
    """The k best passages for the question, at most `per_article` from one article.

    `mode` picks the score: "dense" is the cosine similarity of question and passage, "bm25"
    the passage's BM25 score as a share of the most the question's words could score, and
    "hybrid" (the default) a weighted sum of the two. Articles outside [since, until] or
    published after `as_of` (default: today) are left out; near-duplicate articles come back
    as one passage listing the others in `duplicates`; among near-ties the newer article
    goes first. Passages under `min_score` are dropped, so an empty list means "no confident
    answer: the articles don't seem to cover this". `answers=False` skips picking each
    passage's answering sentence (one model call over their sentences; the answer is then the
    whole passage): for evaluations that only look at the ranking.
    """
    q = check_question(question)
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be one of {SEARCH_MODES}, not {mode!r}")
    tuning = tuning or rank.Tuning()
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
    qvec = encoder.encode([q])[0]  # every mode needs it: it picks the answering sentence
    scores = _scores(tables, q, qvec, mode, tuning)
    scores[~tables.window(since, until, as_of or dt.date.today())] = -np.inf
    hits = _pick(tables, scores, k, per_article, tuning)
    if min_score is not None:
        hits = [h for h in hits if h.score >= min_score]
    return _to_passages(snap, tables, hits, encoder if answers else None, qvec)


def _scores(tables: Tables, question: str, qvec: np.ndarray, mode: str, tuning: rank.Tuning) -> np.ndarray:
    """One score per dense row; -inf for rows the mode can't rank (no word in common in bm25)."""
    dense = tables.matrix @ qvec if mode != "bm25" else None
    if mode == "dense":
        assert dense is not None
        return np.asarray(dense, dtype=np.float32)
    lex = tables.snap.lexical
    assert lex is not None
    ids, raw, ceiling = bm25.score(lex, question)
    share = np.zeros(len(lex.ids), dtype=np.float32)
    order = tables.lexical_order
    share[order[np.searchsorted(lex.ids, ids, sorter=order)]] = rank.lexical_share(raw, ceiling)
    per_row = share[tables.lexical_row]
    if mode == "bm25":
        return np.where(per_row > 0, per_row, -np.inf).astype(np.float32)
    assert dense is not None
    return rank.fuse(dense, per_row, tuning.fusion_weight)


@dataclass
class _Hit:
    row: int
    score: float
    docs: list[int]  # article numbers: docs[0] is the one shown, the rest repeat its story


def _pick(tables: Tables, scores: np.ndarray, k: int, per_article: int, tuning: rank.Tuning) -> list[_Hit]:
    """The best rows under the per-article cap, near-duplicate articles folded into one result
    (shown as the newest of them when it scores within the margin), newer first among near-ties."""
    hits: list[_Hit] = []
    per_doc: dict[int, int] = {}
    story: dict[int, int] = {}  # article -> the first-seen article of its story
    for row in np.argsort(-scores, kind="stable").tolist():
        score = float(scores[row])
        if score == -np.inf:
            break
        if len(hits) >= k and score < hits[k - 1].score - tuning.recency_margin:
            break  # the recency bonus can lift nothing from here into the top k
        doc = int(tables.doc[row])
        if doc not in story:
            roots = [d for d, r in story.items() if d == r]
            story[doc] = _same_story(tables, doc, roots, tuning.duplicate_threshold)
            if story[doc] != doc:
                _fold(tables, hits, story[doc], _Hit(row, score, [doc]), per_article, tuning)
                continue
        if story[doc] != doc or per_doc.get(doc, 0) >= per_article:
            continue
        per_doc[doc] = per_doc.get(doc, 0) + 1
        hits.append(_Hit(row, score, [doc]))
    dates = [tables.dates[h.docs[0]] for h in hits]
    final = rank.recency_bonus([h.score for h in hits], dates, tuning.recency_margin)
    for hit, score in zip(hits, final, strict=True):
        hit.score = score
    return sorted(hits, key=lambda h: -h.score)[:k]


def _fold(tables: Tables, hits: list[_Hit], root: int, dup: _Hit, per_article: int,
          tuning: rank.Tuning) -> None:
    """Attach a near-duplicate article to its story's results; with one passage per article it
    takes the result's place when it is newer and scores within the recency margin."""
    for hit in hits:
        if root not in hit.docs:
            continue
        newer = (tables.dates[dup.docs[0]] or dt.date.min) > (tables.dates[hit.docs[0]] or dt.date.min)
        if per_article == 1 and newer and dup.score >= hit.score - tuning.recency_margin:
            hit.row, hit.score, hit.docs = dup.row, dup.score, dup.docs + hit.docs
        else:
            hit.docs.append(dup.docs[0])


def _same_story(tables: Tables, doc: int, stories: list[int], threshold: float) -> int:
    """The earlier-seen article whose text this one nearly repeats, else itself."""
    mine = tables.shingles(doc)
    for other in stories:
        theirs = tables.shingles(other)
        # Jaccard can't exceed the size ratio: most pairs are ruled out without a set operation.
        if min(len(mine), len(theirs)) < threshold * max(len(mine), len(theirs)):
            continue
        if rank.jaccard(mine, theirs) >= threshold:
            return other
    return doc


def _to_passages(
    snap: store.Snapshot, tables: Tables, hits: list[_Hit], encoder: Embedder | None,
    qvec: np.ndarray,
) -> list[Passage]:
    seeds = Path(snap.manifest.get("seeds", "."))
    records = [snap.passages[int(tables.ids[h.row])] for h in hits]
    answers = (_answer_sentences(records, encoder, qvec) if encoder is not None
               else [(r.start, r.end) for r in records])
    out = []
    for rank_, (hit, rec, (a_start, a_end)) in enumerate(zip(hits, records, answers, strict=True), 1):
        meta = snap.manifest["articles"][rec.doc_id]
        dups = tuple(
            Source(doc_id=d, path=str(seeds / d), date=tables.dates[n],
                   title=snap.manifest["articles"][d]["title"])
            for n in hit.docs[1:] for d in [tables.docs[n]]
        )
        out.append(Passage(
            rank=rank_, score=round(hit.score, 4), text=rec.text, doc_id=rec.doc_id,
            path=str(seeds / rec.doc_id), date=_date(meta), title=meta["title"],
            start=rec.start, end=rec.end, answer_start=a_start, answer_end=a_end, duplicates=dups,
        ))
    return out


def _answer_sentences(
    records: list[store.PassageRecord], encoder: Embedder, qvec: np.ndarray
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
