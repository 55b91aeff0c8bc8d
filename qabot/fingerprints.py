"""Article fingerprints: each article's hashed word shingles, taken when it is indexed.

Whether two articles tell one story (the ranking walk folds a repeat into the first one's result)
is decided on their 3-word shingles: Jaccard from `duplicate_threshold`, or the shorter's share
inside the longer from `duplicate_containment` (rank.same_story). Hashing an article's shingles
from its stored passages at question time cost most of a cold answer's time (a few ms per new
story, every fresh process again); so a segment stores them, computed from the same texts, as
sorted arrays of distinct crc32 hashes. A decision is then one intersection of two sorted arrays
in C, exactly the one the sets gave: nothing approximate (MinHash would move decisions near
the thresholds), at about two-thirds of the stored text's size (4 bytes a shingle, one a word).

On disk, in each segment folder: `stories.npz` with `docs` (article numbers, ascending),
`ends` (where each article's hashes end in `hashes`), `passages` (its passages in the
segment, so the part can say how many passages it holds) and `hashes` (uint32), memory-mapped
when read (npz.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npz, rank

FILE = "stories.npz"
_NAMES = ["docs", "ends", "passages", "hashes"]


@dataclass(frozen=True)
class Fingerprints:
    """The shingle hashes of a segment's articles (module docstring)."""

    docs: np.ndarray  # int64 article numbers, ascending
    ends: np.ndarray  # int64: article i's hashes are hashes[ends[i - 1]:ends[i]] (from 0 for i = 0)
    passages: np.ndarray  # int64: how many passages each article has in the segment
    hashes: np.ndarray  # uint32: each article's distinct shingle hashes, sorted

    @property
    def passage_count(self) -> int:
        return int(self.passages.sum())

    def of(self, doc: int) -> np.ndarray | None:
        """The article's sorted shingle hashes; None when it is not in this segment."""
        at = int(np.searchsorted(self.docs, doc))
        if at == len(self.docs) or int(self.docs[at]) != doc:
            return None
        return self._hashes_at(at)

    def select(self, keep: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """(article, passages, hashes) of these articles (sorted numbers) that it holds."""
        at = np.flatnonzero(np.isin(self.docs, keep)).tolist()
        return [(int(self.docs[i]), int(self.passages[i]), self._hashes_at(i)) for i in at]

    def _hashes_at(self, i: int) -> np.ndarray:
        """The hashes of the i-th article it holds."""
        return self.hashes[int(self.ends[i - 1]) if i else 0 : int(self.ends[i])]


def of_text(passages: Iterable[str]) -> np.ndarray:
    """An article's fingerprint from its passages' texts in order, as the walk compared them
    before they were stored: the shingles of the passages joined by newlines (the overlap
    between neighbouring passages adds nothing new to a set)."""
    return np.array(sorted(rank.shingles("\n".join(passages))), dtype=np.uint32)


def build(articles: Sequence[tuple[int, int, np.ndarray]]) -> Fingerprints:
    """The part holding these (article number, passages, hashes), in any order."""
    ordered = sorted(articles, key=lambda a: a[0])
    sizes = np.array([len(h) for _, _, h in ordered], dtype=np.int64)
    hashes = np.concatenate([h for _, _, h in ordered]).astype(np.uint32) if ordered \
        else np.zeros(0, dtype=np.uint32)
    return Fingerprints(np.array([d for d, _, _ in ordered], dtype=np.int64), np.cumsum(sizes),
                        np.array([p for _, p, _ in ordered], dtype=np.int64), hashes)


def save(prints: Fingerprints, folder: Path, name: str = FILE) -> None:
    npz.save(folder / name, {"docs": prints.docs, "ends": prints.ends, "passages": prints.passages,
                             "hashes": prints.hashes})


def load(path: Path) -> Fingerprints:
    """What save() wrote, memory-mapped; ValueError when its arrays disagree with each other."""
    a = npz.mapped(path, _NAMES)
    prints = Fingerprints(a["docs"], a["ends"], a["passages"], a["hashes"])
    n = len(prints.docs)
    if len(prints.ends) != n or len(prints.passages) != n or \
            (n and int(prints.ends[-1]) != len(prints.hashes)):
        raise ValueError(f"{path.name} is inconsistent: {n} articles, {len(prints.ends)} ends, "
                         f"{len(prints.hashes)} hashes")
    return prints


class Stack:
    """Every segment's fingerprints (None for a segment written before they were stored)."""

    def __init__(self, parts: Sequence[Fingerprints | None]) -> None:
        self.parts = tuple(parts)

    def of(self, doc: int) -> np.ndarray | None:
        """The article's hashes; None when no segment's part holds it (an older segment: the
        caller hashes its stored text instead)."""
        for part in self.parts:
            if part is not None:
                found = part.of(doc)
                if found is not None:
                    return found
        return None


def same_story(a: np.ndarray, b: np.ndarray, threshold: float, contained: float) -> bool:
    """rank.same_story on sorted arrays of distinct hashes: the same decision, edge cases
    included, with the intersection done in C."""
    short, long_ = sorted((len(a), len(b)))
    may_repeat = short >= threshold * long_  # Jaccard can't exceed the size ratio
    if contained > 1 and not may_repeat:
        return False  # decided without looking at a hash: most pairs end here
    shared = len(np.intersect1d(a, b, assume_unique=True)) if short else 0
    if contained <= 1 and (shared / short if short else 0.0) >= contained:
        return True
    union = len(a) + len(b) - shared
    return may_repeat and (shared / union if union else 0.0) >= threshold
