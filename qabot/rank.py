"""Pure ranking logic: fuse dense and BM25 scores, weigh articles and their age, spot duplicates.

No I/O and no index here: arrays and small lists in, arrays and small lists out, so each rule
is tested on hand-made numbers (tests/test_retrieval.py) and tuned by benchmarks/retrieval.py.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")
_WORD_RE = re.compile(r"\w+")


def lexical_share(scores: np.ndarray, ceiling: float) -> np.ndarray:
    """BM25 scores as a share of the question's ceiling (the sum of its terms' idf), in [0, 1).

    A fixed scale, unlike dividing by the best hit: a question whose best match is weak keeps
    a low score, which the confidence floor needs.
    """
    if ceiling <= 0:
        return np.zeros_like(scores, dtype=np.float32)
    return np.asarray(scores / ceiling, dtype=np.float32)


def fuse(dense: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """Convex combination of cosine similarity and BM25 share, row by row."""
    return np.asarray(weight * dense + (1.0 - weight) * lexical, dtype=np.float32)


def recency_prior(days: np.ndarray, as_of: int, weight: float, half_life: float) -> np.ndarray:
    """Per row, what its article's age adds: weight x 0.5 ** (days before `as_of` / half_life).

    `days` are proleptic ordinals (0: undated, which gains nothing: nothing says it is fresh).
    An article dated after `as_of` counts as fresh (search() leaves those out anyway).
    """
    if weight <= 0 or not len(days):
        return np.zeros(len(days), dtype=np.float32)
    age = np.maximum(as_of - days, 0).astype(np.float32)
    prior = weight * np.exp2(-age / max(half_life, 1e-6))
    return np.where(days > 0, prior, 0.0).astype(np.float32)


def article_evidence(
    scores: np.ndarray, doc: np.ndarray, lead: np.ndarray, lead_weight: float, second_share: float
) -> np.ndarray:
    """Scores raised by what the rest of their article says: lead_weight x the score of the
    article's first passage (`lead[i]`: its position in `scores`, -1 if not scored) and
    second_share x the article's second-best passage score.

    Both terms are the same for every passage of an article, so the article's best passage
    stays its best; what moves is the article against other articles. Negative or -inf
    evidence counts as 0: only support raises a score. An article's passages are consecutive
    in `doc` (rows sorted by passage id, and an article's passages get consecutive ids), which
    makes the second best one pass over the array instead of a sort.
    """
    out = np.asarray(scores, dtype=np.float32).copy()
    if not len(out):
        return out
    if lead_weight:
        has = lead >= 0
        lead_score = np.where(has, scores[np.where(has, lead, 0)], 0.0)
        out += np.float32(lead_weight) * np.maximum(np.nan_to_num(lead_score, neginf=0.0), 0.0)
    if second_share:
        starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
        segment = np.cumsum(np.r_[True, doc[1:] != doc[:-1]]) - 1
        best = np.maximum.reduceat(scores, starts)
        # Without each article's best (all copies of it, should two passages tie exactly).
        rest = np.where(scores == best[segment], -np.inf, scores).astype(np.float32)
        second = np.maximum(np.nan_to_num(np.maximum.reduceat(rest, starts), neginf=0.0), 0.0)
        out += np.float32(second_share) * second[segment]
    return out


def recency_bonus(scores: Sequence[float], dates: Sequence[dt.date | None], margin: float) -> list[float]:
    """Scores raised so that, among results within `margin` of each other, the newer goes first.

    A result gains margin x (the share of its near-ties, results within `margin` of its score,
    that are older than it): of two near-tied stories the newer gains the whole margin and so
    overtakes; a result with no near-tie keeps its score. Undated counts as oldest. The result
    stays a score (never raised by more than `margin`), so ranks still follow scores.
    """
    out = []
    for i, (s, d) in enumerate(zip(scores, dates, strict=True)):
        near = [j for j, t in enumerate(scores) if j != i and abs(t - s) <= margin]
        older = sum(1 for j in near if (dates[j] or dt.date.min) < (d or dt.date.min))
        out.append(s + margin * older / len(near) if near else s)
    return out


def shingles(text: str, size: int = 3) -> frozenset[int]:
    """Hashed runs of `size` lower-cased words: the fingerprint near-duplicate detection compares."""
    words = _WORD_RE.findall(text.lower())
    if len(words) < size:
        return frozenset([zlib.crc32(" ".join(words).encode())]) if words else frozenset()
    return frozenset(
        zlib.crc32(" ".join(words[i : i + size]).encode()) for i in range(len(words) - size + 1)
    )


def containment(a: frozenset[int], b: frozenset[int]) -> float:
    """|a ∩ b| / the smaller set's size: 1 when one text is a cut-down copy of the other."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 for two empty sets."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def same_story(a: frozenset[int], b: frozenset[int], threshold: float, contained: float) -> bool:
    """True when one text's shingles nearly repeat the other's (Jaccard from `threshold`) or
    the shorter's are contained in the longer (share from `contained`; above 1: never)."""
    found = contained <= 1 and containment(a, b) >= contained
    # Jaccard can't exceed the size ratio: most pairs are ruled out without a set operation.
    if not found and min(len(a), len(b)) >= threshold * max(len(a), len(b)):
        found = jaccard(a, b) >= threshold
    return found
