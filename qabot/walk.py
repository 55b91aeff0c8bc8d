"""The ranking walk: scored rows → the results shown, one story once, newer first among near-ties.

rank.py says how a passage scores; this walks the scored rows best first and decides which
become results: at most `per_article` passages of an article, an article that repeats an
earlier one's story folded into that result (`_fold`), the recency bonus between near-ties.
It asks the index only what a `Stories` answers (each row's article, an article's date, whether
two articles are one story), so it runs on hand-made rows as well as on a snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import rank
from .config import SearchOptions


class Stories(Protocol):
    """What the walk needs to know about the rows it ranks (reader.Tables is one)."""

    doc: np.ndarray  # the article number of each row

    def date(self, num: int) -> dt.date | None:
        """The article's publication date (None: undated)."""
        ...

    def same_story(self, doc: int, other: int, threshold: float, contained: float) -> bool:
        """True when one of the two articles nearly repeats or contains the other."""
        ...


@dataclass
class Hit:
    """One result as the walk decided it, before it becomes a Passage."""

    row: int
    score: float
    docs: list[int]  # article numbers: docs[0] is the one shown, the rest repeat its story
    relevance: float = 0.0  # the passage's own match, before article evidence and freshness


class Incomplete(Exception):
    """The rows given end (or reach `beyond`) before the walk can tell its results: more needed."""


def pick(stories: Stories, rows: np.ndarray, scores: np.ndarray, k: int, per_article: int,
         tuning: SearchOptions, relevance: np.ndarray, beyond: float = -np.inf) -> list[Hit]:
    """The best rows under the per-article cap, near-duplicate articles folded into one result
    (shown as the newest of them when it scores within the margin), newer first among near-ties.

    `beyond`: every row scoring above it is among `rows`, those at or below it maybe not (the
    merged best rows of several shards). The walk then stops as it would on every row, or
    raises Incomplete when what it needs may be missing."""
    hits: list[Hit] = []
    settled = False  # stopped by the rule, as it would on every row
    per_doc: dict[int, int] = {}
    story: dict[int, int] = {}  # article -> the first-seen article of its story
    for block in _ranked(scores):  # the second block is rarely needed: sorted lazily
        done = False
        for at in block.tolist():
            score = float(scores[at])
            if score == -np.inf:
                done = settled = True
                break
            if score <= beyond:  # rows from here on may be missing: stop only if none could count
                done = True
                break
            if len(hits) >= k and score < hits[k - 1].score - tuning.recency_margin:
                done = settled = True
                break  # the recency bonus can lift nothing from here into the top k
            row = int(rows[at])
            doc = int(stories.doc[row])
            if doc not in story:
                roots = [d for d, r in story.items() if d == r]
                story[doc] = _same_story(stories, doc, roots, tuning.duplicate_threshold,
                                         tuning.duplicate_containment)
                if story[doc] != doc:
                    _fold(stories, hits, story[doc], Hit(row, score, [doc], float(relevance[at])),
                          per_article, tuning)
                    continue
            if story[doc] != doc or per_doc.get(doc, 0) >= per_article:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
            hits.append(Hit(row, score, [doc], float(relevance[at])))
        if done:
            break
    if not settled and beyond > -np.inf and not (len(hits) >= k
                                                 and beyond < hits[k - 1].score - tuning.recency_margin):
        raise Incomplete(f"the walk needs rows scoring {beyond} or less")
    dates = [stories.date(h.docs[0]) for h in hits]
    final = rank.recency_bonus([h.score for h in hits], dates, tuning.recency_margin)
    for hit, score in zip(hits, final, strict=True):
        hit.score = score
    return sorted(hits, key=lambda h: -h.score)[:k]


def next_best(stories: Stories, rows: np.ndarray, scores: np.ndarray, relevance: np.ndarray,
              hit: Hit, n: int) -> list[Hit]:
    """The `n` best scored rows of the hit's article other than its own, best first."""
    doc = int(stories.doc[hit.row])
    at = np.flatnonzero((stories.doc[rows] == doc) & (rows != hit.row) & np.isfinite(scores))
    at = at[np.argsort(-scores[at], kind="stable")[:n]]
    return [Hit(int(rows[i]), float(scores[i]), [doc], float(relevance[i])) for i in at]


def _ranked(scores: np.ndarray, first: int = 1024) -> Iterator[np.ndarray]:
    """Positions by descending score, ties by position, in blocks: the best `first` (with every
    tie of the last) sorted alone, the rest only if the caller gets that far (a generator: the
    second block, most of the rows, is almost never sorted)."""
    if len(scores) <= first:
        yield np.argsort(-scores, kind="stable")
        return
    bar = np.partition(scores, len(scores) - first)[len(scores) - first]
    top = np.flatnonzero(scores >= bar)
    yield top[np.argsort(-scores[top], kind="stable")]
    rest = np.flatnonzero(scores < bar)
    yield rest[np.argsort(-scores[rest], kind="stable")]


def _fold(stories: Stories, hits: list[Hit], root: int, dup: Hit, per_article: int,
          tuning: SearchOptions) -> None:
    """Attach a near-duplicate article to its story's results; with one passage per article it
    takes the result's place when it is newer and scores within the recency margin."""
    for hit in hits:
        if root not in hit.docs:
            continue
        newer = (stories.date(dup.docs[0]) or dt.date.min) > (stories.date(hit.docs[0]) or dt.date.min)
        if per_article == 1 and newer and dup.score >= hit.score - tuning.recency_margin:
            hit.row, hit.score, hit.docs = dup.row, dup.score, dup.docs + hit.docs
            hit.relevance = dup.relevance
        else:
            hit.docs.append(dup.docs[0])


def _same_story(stories: Stories, doc: int, roots: list[int], threshold: float,
                contained: float = 1.01) -> int:
    """The earlier-seen article whose text this one nearly repeats (Jaccard from `threshold`)
    or contains or is contained in (the shorter's shingles, from `contained`: a cut-down copy,
    truncated or the first part of a syndicated story), else itself."""
    return next((other for other in roots if stories.same_story(doc, other, threshold, contained)),
                doc)
