"""question → best passages with citations. The one core function every front end calls."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store
from .chunk import split_sentences
from .embed import Embedder, OnnxEmbedder, TorchEmbedder
from .errors import BadQuestion

MAX_QUESTION_CHARS = 2000


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
) -> list[Passage]:
    """The k best passages for the question, at most `per_article` from one article.

    Scores are cosine similarities (inner product of unit vectors). Passages under
    `min_score` are dropped, so an empty list means "the articles don't cover this".
    """
    q = check_question(question)
    snap = retriever.snapshot()
    total = snap.vectors.ntotal
    if total == 0 or k < 1:
        return []
    encoder = retriever.encoder(snap)
    qvec = encoder.encode([q])
    hits = _top_hits(snap, qvec, k, per_article)
    if min_score is not None:
        hits = [(pid, s) for pid, s in hits if s >= min_score]
    return _to_passages(snap, hits, encoder, qvec[0])


def _top_hits(
    snap: store.Snapshot, qvec: np.ndarray, k: int, per_article: int
) -> list[tuple[int, float]]:
    """Best passage ids, widening the FAISS search until k articles' worth survive the cap."""
    total = snap.vectors.ntotal
    fetch = min(total, max(50, 8 * k * per_article))
    while True:
        scores, ids = snap.vectors.search(qvec, fetch)
        per_doc: dict[str, int] = {}
        hits: list[tuple[int, float]] = []
        for pid, score in zip(ids[0].tolist(), scores[0].tolist(), strict=True):
            if pid < 0:
                continue
            doc = snap.passages[pid].doc_id
            if per_doc.get(doc, 0) < per_article:
                per_doc[doc] = per_doc.get(doc, 0) + 1
                hits.append((pid, float(score)))
                if len(hits) == k:
                    return hits
        if fetch >= total:
            return hits
        fetch = min(total, fetch * 4)


def _to_passages(
    snap: store.Snapshot, hits: list[tuple[int, float]], encoder: Embedder, qvec: np.ndarray
) -> list[Passage]:
    seeds = Path(snap.manifest.get("seeds", "."))
    records = [snap.passages[pid] for pid, _ in hits]
    answers = _answer_sentences(records, encoder, qvec)
    out = []
    for rank, ((_, score), rec, (a_start, a_end)) in enumerate(
        zip(hits, records, answers, strict=True), start=1
    ):
        meta = snap.manifest["articles"][rec.doc_id]
        out.append(Passage(
            rank=rank, score=round(score, 4), text=rec.text, doc_id=rec.doc_id,
            path=str(seeds / rec.doc_id),
            date=dt.date.fromisoformat(meta["date"]) if meta.get("date") else None,
            title=meta["title"], start=rec.start, end=rec.end,
            answer_start=a_start, answer_end=a_end,
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
