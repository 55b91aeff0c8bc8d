"""Pure ranking logic: fuse dense and BM25 scores, prefer the newer of near-ties, spot duplicates.

No I/O and no index here: arrays and small lists in, arrays and small lists out, so each rule
is tested on hand-made numbers (tests/test_retrieval.py) and tuned by benchmarks/retrieval.py.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from .config import Settings

T = TypeVar("T")
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Tuning:
    """The measured knobs of search(); docs/retrieval.md says how each default was chosen."""

    fusion_weight: float = 0.5  # dense share of the hybrid score; BM25 gets the rest
    recency_margin: float = 0.02  # score difference within which the newer article wins
    duplicate_threshold: float = 0.5  # shingle Jaccard from which two articles are one story

    @classmethod
    def from_settings(cls, settings: Settings) -> Tuning:
        """The knobs as configured, for every front end alike."""
        return cls(fusion_weight=settings.fusion_weight, recency_margin=settings.recency_margin,
                   duplicate_threshold=settings.duplicate_threshold)


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


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 for two empty sets."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)
