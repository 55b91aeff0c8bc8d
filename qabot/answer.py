"""The answer layer: question → the reply a person reads first, for every front end.

Between retrieval and formatting: `respond()` runs the search, then chooses in the results'
passages the sentence that answers (qabot/sentences.py scores them), keeps the results close
enough to the best to be worth showing, and says when there is no confident answer. Everything
it returns is quoted from the articles with exact offsets; nothing is written here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from . import rank, sentences
from .bm25 import Lexical, tokenize
from .chunk import split_sentences
from .retrieve import Passage, Retriever, search

ReplyKind = Literal["answer", "no_answer"]


@dataclass(frozen=True)
class AnswerOptions:
    """How the answer step chooses; the defaults were measured (docs/answers.md)."""

    weights: sentences.Weights = sentences.Weights()
    dense_sentences: bool = True  # score sentences by their cosine to the question too
    # Results whose score falls below this share of the first one's are not shown at all.
    keep_share: float = 0.0
    # Another result's answer is shown next to the first only when its sentence scores at least
    # this share of the first one's (and its passage is kept).
    also_share: float = 0.9
    also_max: int = 2  # at most this many answers beside the first
    # Results searched for candidate sentences beyond those shown (their passages compete).
    reorder: bool = False  # let a better-answering result of the top ones go first


@dataclass(frozen=True)
class Reply:
    """What to show for one question: the answers first, then the results they come from.

    `results` are the ranked passages shown, each with `answer_start`/`answer_end` set to its
    answering sentence (equal offsets: no sentence is good enough to emphasise). `answers`
    indexes the results whose sentence leads the reply, best first (empty: no emphasis).
    """

    question: str
    kind: ReplyKind
    results: tuple[Passage, ...]
    answers: tuple[int, ...] = ()
    as_of: dt.date | None = None

    @property
    def answer(self) -> Passage | None:
        """The result whose sentence answers, if any."""
        return self.results[self.answers[0]] if self.answers else None


def respond(
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
    options: AnswerOptions | None = None,
) -> Reply:
    """Search, then choose what answers; `min_score` is the confidence floor of search()."""
    options = options or AnswerOptions()
    as_of = as_of or dt.date.today()
    passages = search(retriever, question, k, per_article, min_score, mode=mode, since=since,
                      until=until, as_of=as_of, tuning=tuning, answers=False)
    if not passages:
        return Reply(question.strip(), "no_answer", (), (), as_of)
    passages = keep_close(passages, options.keep_share)
    chosen, scores = choose_sentences(retriever, question, passages, options)
    results = [replace(p, answer_start=s, answer_end=e) for p, (s, e) in zip(passages, chosen, strict=True)]
    order = list(range(len(results)))
    if options.reorder:
        order.sort(key=lambda i: -scores[i])
        results = [replace(results[i], rank=n) for n, i in enumerate(order, 1)]
        scores = [scores[i] for i in order]
    answers = lead_answers(scores, options)
    return Reply(question.strip(), "answer", tuple(results), answers, as_of)


def keep_close(passages: list[Passage], share: float) -> list[Passage]:
    """The results scoring at least `share` of the first one's (the first always stays)."""
    if not passages or share <= 0:
        return passages
    bar = passages[0].score * share
    return [p for n, p in enumerate(passages) if n == 0 or p.score >= bar]


def lead_answers(scores: list[float], options: AnswerOptions) -> tuple[int, ...]:
    """Which results' sentences lead the reply: the first result's when it has one, then up to
    `also_max` others whose sentence scores within `also_share` of it."""
    if not scores or scores[0] == NO_SENTENCE:
        return ()
    top = scores[0]
    also = [i for i in range(1, len(scores)) if scores[i] != NO_SENTENCE and scores[i] >= top * options.also_share]
    return (0, *also[: options.also_max])


NO_SENTENCE = float("-inf")


def choose_sentences(
    retriever: Retriever, question: str, passages: list[Passage], options: AnswerOptions
) -> tuple[list[tuple[int, int]], list[float]]:
    """For each passage, the file span of its answering sentence (an empty span at the passage
    start when none is good enough) and that sentence's score (NO_SENTENCE when none)."""
    snap = retriever.snapshot()
    lex = snap.lexical
    stop = lex.stopwords if lex is not None else frozenset()
    stem = lex.stemmer if lex is not None else ""
    terms = question_terms(question, lex)
    kind = sentences.question_kind(question)
    spans = [split_sentences(p.text) or [(0, len(p.text))] for p in passages]
    flat = [p.text[s:e] for p, sp in zip(passages, spans, strict=True) for s, e in sp]
    dense = np.zeros(len(flat), dtype=np.float32)
    if options.dense_sentences and options.weights.dense and flat:
        encoder = retriever.encoder(snap)
        qvec = encoder.encode([question])[0]
        dense = encoder.encode(flat) @ qvec
    top = passages[0].score or 1.0
    chosen: list[tuple[int, int]] = []
    best_scores: list[float] = []
    i = 0
    for p, sp in zip(passages, spans, strict=True):
        scores = [
            sentences.features(p.text[s:e], question, terms, kind, stopwords=stop, stemmer=stem,
                               dense=float(dense[i + j]), passage=p.score / top,
                               offset=p.start + s).score(options.weights)
            for j, (s, e) in enumerate(sp)
        ]
        i += len(sp)
        at = sentences.best(scores, options.weights.floor)
        if at is None:
            chosen.append((p.start, p.start))
            best_scores.append(NO_SENTENCE)
        else:
            chosen.append((p.start + sp[at][0], p.start + sp[at][1]))
            best_scores.append(scores[at])
    return chosen, best_scores


def question_terms(question: str, lex: Lexical | None) -> dict[str, float]:
    """The question's BM25 terms with their idf in this index (terms no passage has are left
    out: they can't tell sentences apart)."""
    if lex is None:
        return {}
    terms = tokenize(question, lex.stopwords, lex.stemmer)
    return {t: float(lex.idf[lex.vocab[t]]) for t in terms if t in lex.vocab}
