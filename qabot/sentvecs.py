"""Sentence vectors: each sentence of a passage as the mean of its own word pieces' vectors.

When a passage is embedded, the model already computes a vector for each of its word pieces
(the passage's vector is their mean). Averaging only the pieces inside one sentence gives that
sentence a vector in the same space at no extra model call: the cosine between a question and
each sentence of a passage is then a dot product at question time. On the news dev sets this
pooled cosine, added to the sentence score, helped where separately encoded sentences (one model
call each) did not (docs/answers.md, "Sentence vectors").

Stored per segment as `sentences.npz` (parts.SentencesPart), int8 with one scale per sentence:
dim + 4 bytes a sentence, plus 8 for its span (~2 KB a passage of five sentences at 384
dimensions, against 1.5 KB for the passage's own float32 vector):

    ids     int64 passage ids, ascending (the segment's rows)
    ends    int64: passage i's sentences are rows ends[i - 1]:ends[i] (from 0 for i = 0)
    spans   int32 (n, 2): each sentence's start and end in its passage's text (chunk.split_sentences)
    codes   int8 (n, dim): the unit vector times 127 / its largest magnitude, rounded
    scales  float32: that largest magnitude / 127 (0: the sentence had no word piece in the
            model's window, past its truncation)

Pure functions here (pooling, coding, lookups); the model run is embed.OnnxEmbedder's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npz
from .chunk import Span

FILE = "sentences.npz"
_NAMES = ["ids", "ends", "spans", "codes", "scales"]


@dataclass(frozen=True)
class Pooled:
    """One passage's sentence spans (in its text) and their unit vectors (zero: no word piece)."""

    spans: np.ndarray  # int32 (n, 2)
    vectors: np.ndarray  # float32 (n, dim)


def pool(tokens: np.ndarray, offsets: Sequence[tuple[int, int]], special: Sequence[int],
         spans: Sequence[Span]) -> np.ndarray:
    """Unit vectors of `spans`, each the mean of the word pieces lying inside it.

    `tokens`: the model's output vector of each word piece of the passage (its padding cut off);
    `offsets`: each piece's (start, end) in the passage's text; `special`: 1 for [CLS], [SEP].
    A piece belongs to the sentence its start falls in. A sentence none falls in (beyond the
    model's window) gets a zero vector: its cosine is 0, it is not guessed.
    """
    dim = tokens.shape[1]
    out = np.zeros((len(spans), dim), dtype=np.float32)
    if not len(spans):
        return out
    starts = np.array([a for a, _ in offsets], dtype=np.int64)
    real = (np.asarray(special) == 0) & (np.array([b for _, b in offsets]) > starts)
    bounds = np.array([s for s, _ in spans], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    which = np.searchsorted(bounds, starts, side="right") - 1  # the last span starting at or before
    inside = real & (which >= 0)
    inside[inside] &= starts[inside] < ends[which[inside]]  # not in the white space after it
    if not inside.any():
        return out
    # A passage's word pieces come in text order, so each sentence's are one run of rows.
    rows, at = which[inside], np.flatnonzero(inside)
    firsts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    sums = np.zeros((len(spans), dim), dtype=np.float64)
    sums[rows[firsts]] = np.add.reduceat(tokens[at].astype(np.float64), firsts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    np.divide(sums, norms, out=sums, where=norms > 0)  # the mean's direction is the sum's
    out[:] = sums
    return out


@dataclass(frozen=True)
class Coded:
    """One passage's sentences as stored: spans, int8 codes and their scales."""

    spans: np.ndarray
    codes: np.ndarray
    scales: np.ndarray

    def decoded(self) -> Pooled:
        return Pooled(self.spans, self.codes.astype(np.float32) * self.scales[:, None])

    @classmethod
    def from_pooled(cls, pooled: Pooled) -> Coded:
        """int8 codes and one scale per sentence (symmetric: the largest magnitude maps to 127).
        On MiniLM sentence vectors the coded cosine differs from float32 by under 0.005
        (tests/test_sentvecs.py)."""
        vectors = pooled.vectors
        scales = (np.abs(vectors).max(axis=1) / 127.0).astype(np.float32) if len(vectors) \
            else np.zeros(0, dtype=np.float32)
        safe = np.where(scales > 0, scales, 1.0)
        codes = np.clip(np.rint(vectors / safe[:, None]), -127, 127).astype(np.int8)
        return cls(np.asarray(pooled.spans, dtype=np.int32).reshape(-1, 2), codes, scales)


@dataclass(frozen=True)
class SentenceVectors:
    """A segment's part (module docstring)."""

    ids: np.ndarray
    ends: np.ndarray
    spans: np.ndarray
    codes: np.ndarray
    scales: np.ndarray

    @property
    def passage_count(self) -> int:
        return len(self.ids)

    def coded(self, pid: int) -> Coded | None:
        """The passage's sentences as stored (int8: what a merge copies)."""
        i = int(np.searchsorted(self.ids, pid))
        if i >= len(self.ids) or int(self.ids[i]) != pid:
            return None
        lo, hi = (int(self.ends[i - 1]) if i else 0), int(self.ends[i])
        return Coded(np.array(self.spans[lo:hi]), np.array(self.codes[lo:hi]), np.array(self.scales[lo:hi]))

    def cosines(self, ids: Sequence[int], qvec: np.ndarray) -> Cosines:
        """Those of these passages it holds, each sentence scored against the question: the int8
        codes of all their sentences, gathered at once, times the question, then each
        sentence's scale."""
        want = np.asarray(ids, dtype=np.int64)
        at = np.searchsorted(self.ids, want)
        held = at < len(self.ids)
        held[held] = self.ids[at[held]] == want[held]
        rows = at[held]
        starts = np.where(rows > 0, self.ends[np.maximum(rows - 1, 0)], 0).astype(np.int64)
        sizes = self.ends[rows].astype(np.int64) - starts
        # Every sentence row of those passages, in passage order: start + 0..size-1 for each.
        offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        sentence = np.repeat(starts, sizes) + offsets
        # Row by row, not one matrix product: BLAS sums a row in an order that depends on the rows
        # beside it, and a shard's batch is not the single process's (the same passage must score
        # the same, to the bit, whoever asks).
        codes = self.codes[sentence].astype(np.float32)
        values = (codes * np.asarray(qvec, dtype=np.float32)).sum(axis=1) * self.scales[sentence]
        spans = np.asarray(self.spans[sentence], dtype=np.int32).reshape(-1, 2)
        return Cosines(want[held], np.cumsum(sizes), spans, values.astype(np.float32))

    def select(self, ids: np.ndarray) -> list[tuple[int, Coded]]:
        """(passage id, its sentences as stored) for those of `ids` this part holds: a merge
        copies them, never decoding and coding again."""
        return [(pid, c) for pid in ids.tolist() for c in [self.coded(pid)] if c is not None]


def build(passages: Sequence[tuple[int, Coded]], dim: int) -> SentenceVectors:
    """The part holding these (passage id, coded sentences), in any order."""
    ordered = sorted(passages, key=lambda p: p[0])
    sizes = np.array([len(c.spans) for _, c in ordered], dtype=np.int64)
    spans = np.concatenate([c.spans for _, c in ordered]) if ordered else np.zeros((0, 2), np.int32)
    codes = np.concatenate([c.codes for _, c in ordered]) if ordered else np.zeros((0, dim), np.int8)
    scales = np.concatenate([c.scales for _, c in ordered]) if ordered else np.zeros(0, np.float32)
    return SentenceVectors(np.array([pid for pid, _ in ordered], dtype=np.int64), np.cumsum(sizes),
                           spans.astype(np.int32).reshape(-1, 2), codes.reshape(-1, dim),
                           scales.astype(np.float32))


def save(part: SentenceVectors, folder: Path, name: str = FILE) -> None:
    npz.save(folder / name, {"ids": part.ids, "ends": part.ends, "spans": part.spans,
                             "codes": part.codes, "scales": part.scales})


def load(path: Path, dim: int) -> SentenceVectors:
    """What save() wrote, memory-mapped; ValueError when its arrays disagree with each other or
    with the model's dimension."""
    a = npz.mapped(path, _NAMES)
    part = SentenceVectors(a["ids"], a["ends"], a["spans"], a["codes"], a["scales"])
    n, rows = len(part.ids), len(part.scales)
    if len(part.ends) != n or (n and int(part.ends[-1]) != rows) or len(part.spans) != rows \
            or part.codes.shape != (rows, dim):
        raise ValueError(f"{path.name} is inconsistent: {n} passages, {rows} sentences, codes "
                         f"{part.codes.shape} for {dim}-d vectors")
    return part


class Stack:
    """Every segment's sentence vectors (None for a segment that lacks them)."""

    def __init__(self, parts: Sequence[SentenceVectors | None]) -> None:
        self.parts = tuple(parts)
        self.complete = all(p is not None for p in self.parts)

    def cosines(self, ids: Sequence[int], qvec: np.ndarray) -> Cosines | None:
        """Each sentence's cosine to the question vector, for those of these passages it holds;
        None when a segment lacks the part."""
        if not self.complete:
            return None
        return Cosines.joined([p.cosines(ids, qvec) for p in self.parts if p is not None])


@dataclass(frozen=True)
class Scored:
    """One passage's sentence spans and each one's cosine to the question."""

    spans: np.ndarray  # int32 (n, 2)
    values: np.ndarray  # float32 (n,)

    def cosines(self, spans: Sequence[Span]) -> list[float] | None:
        """The cosines of `spans`; None when the stored sentences are other spans (the splitter
        changed since they were pooled)."""
        if len(self.spans) != len(spans) or \
                not np.array_equal(self.spans, np.asarray(spans, dtype=np.int32).reshape(-1, 2)):
            return None
        return [float(x) for x in self.values]


@dataclass(frozen=True)
class Cosines:
    """Several passages' Scored sentences, packed in four arrays (as SentenceVectors, with one
    float a sentence for its dim + 4 bytes): what a shard sends, ~70 bytes a passage on news
    where the int8 vectors were ~2 kB."""

    ids: np.ndarray  # int64 passage ids
    ends: np.ndarray  # int64: passage i's sentences are rows ends[i - 1]:ends[i]
    spans: np.ndarray  # int32 (n, 2)
    values: np.ndarray  # float32 (n,)

    @classmethod
    def joined(cls, packs: Sequence[Cosines]) -> Cosines:
        """One pack of several (their passages are disjoint: each segment or shard holds its own)."""
        if len(packs) == 1:
            return packs[0]
        sizes = [np.diff(p.ends, prepend=0) for p in packs]
        return cls(np.concatenate([p.ids for p in packs] or [np.zeros(0, np.int64)]),
                   np.cumsum(np.concatenate(sizes or [np.zeros(0, np.int64)])).astype(np.int64),
                   np.concatenate([p.spans for p in packs] or [np.zeros((0, 2), np.int32)]).reshape(-1, 2),
                   np.concatenate([p.values for p in packs] or [np.zeros(0, np.float32)]))

    def unpacked(self) -> dict[int, Scored]:
        """By passage id."""
        starts = np.r_[0, self.ends[:-1]] if len(self.ends) else self.ends
        return {int(pid): Scored(self.spans[a:b], self.values[a:b])
                for pid, a, b in zip(self.ids.tolist(), starts.tolist(), self.ends.tolist(), strict=True)}


@dataclass(frozen=True)
class Evidence:
    """What the answer layer needs for the sentences' cosines: each candidate passage's scored
    sentences (by passage id; a passage not found is absent)."""

    found: Mapping[int, Scored]

    def cosines(self, pid: int, spans: Sequence[Span]) -> list[float] | None:
        """The cosine of each of the passage's `spans` to the question; None when unknown."""
        found = self.found.get(pid)
        return found.cosines(spans) if found is not None else None

    def spans(self, pid: int) -> list[Span] | None:
        """The passage's sentences as the index split them when it pooled their vectors; None
        when it holds none for it."""
        found = self.found.get(pid)
        return [(int(s), int(e)) for s, e in found.spans.tolist()] if found is not None else None
