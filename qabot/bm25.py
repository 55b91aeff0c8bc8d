"""BM25 over the stored passages: term counts kept per segment, scored with numpy per question.

What a commit builds for its passages is a sparse term x passage matrix of raw term frequencies
and each passage's length; the BM25 weights (bm25s's Lucene variant) are computed when a question
is asked, from statistics over every segment's part (a `Stack`): idf and the mean length are
global, so a commit that writes one small segment changes no older segment's files. Answering a
question touches only its terms' columns: a few whole-array numpy operations per part.

On disk, in each segment folder (named by the manifest's "bm25" entry; no pickle):

    bm25.npz         ids (passage id of each row), tf/indices/indptr (the CSC matrix of term
                     frequencies: one column per term), lengths (tokens per row),
                     tokens/offsets (each row's term ids, so a commit tokenizes only what's new)
    bm25-vocab.json  {"terms": [...] in column order, "stopwords": [...]}

An index written before this layout (format 2) has the weights baked in (members data and idf,
no tf or lengths): load() refuses it, from_v2() reads its tokens into a part without tokenizing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import npz
from .catalog import CatalogView, Changes
from .config import BM25Params as Params  # the [bm25] section of the settings is the parameters

# Bump when tokenize() changes: the manifest records it, and a mismatch rebuilds the matrix.
TOKENIZER_VERSION = 1
MATRIX = "bm25.npz"
VOCAB = "bm25-vocab.json"
_WORD_RE = re.compile(r"\w+")
_STEMMERS: dict[str, Any] = {}
_TF_MAX = np.iinfo(np.uint16).max  # a term 65,535 times in one passage: saturated long before


@dataclass(frozen=True)
class Lexical:
    """One segment's BM25 part: term frequencies, rows are passages (by row number), columns terms."""

    ids: np.ndarray  # int64 passage id of each row, ascending
    tf: np.ndarray  # uint16 frequency of (term, row), in CSC order: by term, then row
    indices: np.ndarray  # int32 row of each frequency
    indptr: np.ndarray  # int64 start of each term's entries in tf/indices
    lengths: np.ndarray  # int32 tokens per row: BM25's document length
    vocab: dict[str, int]
    stopwords: frozenset[str]
    stemmer: str
    # Each row's term ids (tokens[offsets[r]:offsets[r + 1]]), kept so the next commit
    # tokenizes only new passages; not loaded on the query path.
    tokens: np.ndarray | None = None
    offsets: np.ndarray | None = None


@dataclass(frozen=True)
class Stack:
    """What a reader scores: every segment's part, in id order, less the deleted passages.

    Like Lucene, the statistics count a deleted passage until a merge drops its row: N, the
    mean length and each term's document frequency are those of all rows of all parts.
    """

    parts: tuple[Lexical, ...]
    deleted: np.ndarray  # int64 passage ids no longer live, sorted; their rows stay until a merge
    k1: float
    b: float
    # A shard of the index (qabot/shards.py) holds some segments only: its lengths are normalised
    # by the mean length over every shard, not its own (None: these parts are the whole index).
    mean_length: float | None = None
    # Derived once here rather than per question: which rows are dead, each row's length norm.
    rows: int = field(init=False, repr=False, compare=False)
    ids: np.ndarray = field(init=False, repr=False, compare=False)  # live passage ids, ascending
    _dead: tuple[np.ndarray | None, ...] = field(init=False, repr=False, compare=False)
    # Per part, the rows [a, b) from its first live row to its last: a question reads only the
    # entries of its terms' columns in between (a shard holding a run of a segment, shards.py).
    _spans: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)
    _norms: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len({(p.stopwords, p.stemmer) for p in self.parts}) > 1:
            raise ValueError("BM25 parts tokenized differently can't be scored together")
        bounds = [(int(p.ids[0]), int(p.ids[-1])) for p in self.parts if len(p.ids)]
        if any(last >= first for (_, last), (first, _) in zip(bounds, bounds[1:], strict=False)):
            raise ValueError("BM25 parts must come in passage id order, disjoint")
        lengths = [np.asarray(p.lengths, dtype=np.float64) for p in self.parts]
        rows = sum(len(p.ids) for p in self.parts)
        total = float(sum(x.sum() for x in lengths))
        # bm25s divides by the mean length; with no tokens at all no row is ever hit anyway.
        avgdl = self.mean_length if self.mean_length is not None else total / rows if total else 1.0
        norms = tuple((self.k1 * ((1 - self.b) + self.b * x / avgdl)).astype(np.float32) for x in lengths)
        dead = tuple(_dead_rows(p.ids, self.deleted) for p in self.parts)
        live = [p.ids if d is None else p.ids[~d] for p, d in zip(self.parts, dead, strict=True)]
        object.__setattr__(self, "rows", rows)
        # One part with nothing deleted (the usual case): its ids as they are, memory-mapped.
        ids = live[0] if len(live) == 1 else np.concatenate(live) if live else np.zeros(0, np.int64)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "_dead", dead)
        object.__setattr__(self, "_spans", tuple(_live_span(len(p.ids), d) for p, d in zip(self.parts, dead,
                                                                                            strict=True)))
        object.__setattr__(self, "_norms", norms)

    @classmethod
    def of(cls, parts: Iterable[Lexical], deleted: np.ndarray, params: Params) -> Stack:
        """The stack of these parts (in id order) without the `deleted` passage ids."""
        return cls(tuple(parts), np.sort(np.asarray(deleted, dtype=np.int64)), params.k1, params.b)

    def totals(self, within: tuple[int, int] | None = None) -> Totals:
        """Its statistics: rows, tokens and every term's document frequency (deleted rows
        included, as scoring counts them); `within`: of the rows with passage ids in [lo, hi)
        only (a shard holding part of a segment). Shards' totals add up to the whole index's."""
        df: dict[str, int] = {}
        length = rows = 0
        for p in self.parts:
            a, b = (0, len(p.ids)) if within is None else (int(x) for x in np.searchsorted(p.ids, within))
            if a == 0 and b == len(p.ids):
                counts = np.diff(p.indptr)
            else:  # each term's entries whose row is in [a, b)
                inside = np.concatenate([[0], np.cumsum((p.indices >= a) & (p.indices < b))])
                counts = inside[p.indptr[1:]] - inside[p.indptr[:-1]]
            listed = counts.tolist()
            for term, col in p.vocab.items():
                if listed[col]:
                    df[term] = df.get(term, 0) + listed[col]
            length += int(np.asarray(p.lengths[a:b], dtype=np.int64).sum())
            rows += b - a
        return Totals(rows, length, df)

    @property
    def stopwords(self) -> frozenset[str]:
        """The stop words every part left out (none for a stack of no parts)."""
        return self.parts[0].stopwords if self.parts else frozenset()

    @property
    def stemmer(self) -> str:
        """The stemmer every part's tokens went through ("" for none)."""
        return self.parts[0].stemmer if self.parts else ""


@dataclass(frozen=True)
class Totals:
    """What BM25's weights are computed from: rows (deleted ones included until a merge), their
    tokens, and each term's document frequency. Summed over shards, exactly the whole index's."""

    rows: int
    length: int
    df: Mapping[str, int]

    def plus(self, other: Totals) -> Totals:
        """The statistics of both (disjoint) sets of segments."""
        df = dict(self.df)
        for term, n in other.df.items():
            df[term] = df.get(term, 0) + n
        return Totals(self.rows + other.rows, self.length + other.length, df)

    @property
    def mean_length(self) -> float:
        """Tokens a row, as Stack computes it (1.0 with no tokens: no row is ever hit then)."""
        return self.length / self.rows if self.length else 1.0


@dataclass(frozen=True)
class Question:
    """A question's BM25 terms with their idf and its ceiling (see score): worked out once from
    the whole index's statistics, so every shard scores its passages as one index would."""

    terms: tuple[str, ...]
    weights: Mapping[str, float]  # the terms some passage has, with their idf
    ceiling: float


def question(text: str, totals: Totals, stopwords: frozenset[str], stemmer: str) -> Question:
    """The question's terms weighed against these statistics."""
    terms = tuple(tokenize(text, stopwords, stemmer))
    return _question(terms, idf_of(totals, terms), totals.rows)


def _question(terms: tuple[str, ...], weights: Mapping[str, float], rows: int) -> Question:
    """The terms with their idf, and the ceiling: a repeated question word counts twice, as in
    score(); a term no passage has counts as unseen in `rows` passages."""
    return Question(terms, weights, float(sum(weights.get(t, _unseen(rows)) for t in terms)))


def _dead_rows(ids: np.ndarray, deleted: np.ndarray) -> np.ndarray | None:
    """A mask of the rows whose passage is deleted, or None when none is (the usual case)."""
    if not len(deleted) or not len(ids):
        return None
    dead = np.isin(ids, deleted)
    return dead if dead.any() else None


def _live_span(rows: int, dead: np.ndarray | None) -> tuple[int, int]:
    """The rows from the first live one to the last ([0, 0) when none is live)."""
    if dead is None:
        return 0, rows
    live = np.flatnonzero(~dead)
    return (int(live[0]), int(live[-1]) + 1) if len(live) else (0, 0)


def tokenize(text: str, stopwords: frozenset[str] = frozenset(), stemmer: str = "") -> list[str]:
    """Lower-cased word tokens without stop words (and stemmed): the same for passages and questions."""
    words = [w for w in _WORD_RE.findall(text.lower())
             if (len(w) > 1 or w.isdigit()) and w not in stopwords]
    return _stem(words, stemmer) if stemmer else words


def _stem(words: list[str], language: str) -> list[str]:
    stemmer = _STEMMERS.get(language)
    if stemmer is None:
        import Stemmer  # PyStemmer: Snowball in C, ~20 ms to import

        stemmer = _STEMMERS[language] = Stemmer.Stemmer(language)
    return list(stemmer.stemWords(words))


# Lucene's English stop words, the list bm25s ships as STOPWORDS_EN (a test checks they match):
# kept here so indexing doesn't import bm25s and scipy (~0.3 s) for 33 words.
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split())


def stopword_list(name: str) -> frozenset[str]:
    """The named stop-word list ("english": Lucene's 33 words)."""
    if not name:
        return frozenset()
    if name != "english":
        raise ValueError(f"unknown stop-word list {name!r}; use 'english' or ''")
    return ENGLISH_STOPWORDS


def build(
    passages: Sequence[tuple[int, str]], params: Params, previous: Lexical | None = None
) -> Lexical:
    """The BM25 part of these (passage id, text) pairs, reusing `previous`'s tokens by id
    (the caller passes `previous` only when it was built from the same texts and tokenized alike:
    manifest.Lexical.same_tokens; for a merge, combine() of the segments' parts).

    What is saved is the tokenizing (nine tenths of the time on SciFact), which only new
    passages need; counting the terms is whole-array numpy.
    """
    stop = stopword_list(params.stopwords)
    vocab: dict[str, int] = {}
    old_rows: dict[int, int] = {}
    if (previous is not None and previous.tokens is not None and previous.offsets is not None
            and previous.stemmer == params.stemmer and previous.stopwords == stop):
        vocab = dict(previous.vocab)
        old_rows = {pid: r for r, pid in enumerate(previous.ids.tolist())}
    rows: list[np.ndarray] = []
    for pid, text in passages:
        r = old_rows.get(pid)
        if r is not None:
            assert previous is not None and previous.tokens is not None and previous.offsets is not None
            rows.append(previous.tokens[previous.offsets[r] : previous.offsets[r + 1]])
        else:
            words = tokenize(text, stop, params.stemmer)
            rows.append(np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.int32))
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
    # Drop terms no passage uses any more (removed articles), renumbering the rest.
    used = np.flatnonzero(np.bincount(flat, minlength=len(vocab)))  # sorted, without a sort
    remap = np.full(len(vocab) or 1, -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    flat = remap[flat] if flat.size else flat.astype(np.int32)
    terms = sorted(vocab, key=vocab.__getitem__)
    vocab = {terms[t]: i for i, t in enumerate(used.tolist())}
    ids = np.fromiter((pid for pid, _ in passages), dtype=np.int64, count=len(rows))
    return _part(ids, flat, offsets, vocab, stop, params.stemmer)


def _part(ids: np.ndarray, flat: np.ndarray, offsets: np.ndarray, vocab: dict[str, int],
          stopwords: frozenset[str], stemmer: str) -> Lexical:
    """The part whose row r (passage ids[r]) holds the term ids flat[offsets[r]:offsets[r + 1]]."""
    tf, indices, indptr = _counts(flat, offsets, len(vocab))
    return Lexical(ids=ids, tf=tf, indices=indices, indptr=indptr,
                   lengths=np.diff(offsets).astype(np.int32), vocab=vocab, stopwords=stopwords,
                   stemmer=stemmer, tokens=flat.astype(np.int32), offsets=offsets.astype(np.int64))


def with_title(text: str, title: str, first: bool, titles: bool) -> str:
    """What BM25 indexes for a passage: after an article's first passage (which opens with the
    headline), the title in front: a headline names the story's subject (nDCG@10 +0.006 on
    SciFact, docs/retrieval.md)."""
    return f"{title}\n{text}" if titles and not first else text


def inputs(
    changes: Changes, kept: np.ndarray, catalog: CatalogView | None, titles: bool,
    previous: Lexical | None,
) -> list[tuple[int, str]]:
    """(id, text) of every passage of the next generation, by id: the passages `changes` writes,
    and the `kept` stored ones. Texts are read from `catalog` only where build() must tokenize
    (kept passages `previous` holds no tokens for); the rest are ""."""
    texts: dict[int, str] = {}
    for art, recs in changes.articles:
        for j, p in enumerate(recs):
            texts[p.id] = with_title(p.text, art.title, j == 0, titles)
    need = kept if previous is None else kept[~np.isin(kept, previous.ids)]
    if len(need):
        assert catalog is not None, "kept passages are read from the catalog they are kept in"
        texts.update(stored_texts(catalog, need.tolist(), titles, changes.titles))
    ids = sorted(set(kept.tolist()) | set(texts))
    return [(i, texts.get(i, "")) for i in ids]


def stored_texts(
    catalog: CatalogView, ids: list[int] | None, titles: bool, new_titles: Mapping[str, str] | None = None,
) -> dict[int, str]:
    """What BM25 indexes for these stored passages (all when None), read from the catalog;
    `new_titles` (doc id -> title) replaces stored titles the next generation rewrites."""
    new_titles = new_titles or {}
    arts = {a.doc_id: a for a in catalog.articles()}
    ids = catalog.passage_ids() if ids is None else ids
    out: dict[int, str] = {}
    for i in range(0, len(ids), 20_000):
        for p in catalog.passages(ids[i : i + 20_000]):
            art = arts[p.doc_id]
            title = new_titles.get(p.doc_id, art.title)
            out[p.id] = with_title(p.text, title, art.ids[0] == p.id, titles)
    return out


def _counts(flat: np.ndarray, offsets: np.ndarray, n_terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The term-frequency matrix of rows whose term ids are flat[offsets[r]:offsets[r + 1]]:
    CSC tf (uint16), indices (rows), indptr (per term).

    Whole-array numpy instead of a per-passage Python loop (bm25s's): at a million passages
    bm25s's loop took 41 s of a 51 s one-article commit.
    """
    n = len(offsets) - 1
    if not len(flat):
        return np.zeros(0, np.uint16), np.zeros(0, np.int32), np.zeros(n_terms + 1, np.int64)
    row_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    # One key per (term, row) occurrence; sorted unique keys are the CSC order, counts the tf.
    pairs, tf = np.unique(flat.astype(np.int64) * n + row_of, return_counts=True)
    term, row = np.divmod(pairs, n)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(term, minlength=n_terms))]).astype(np.int64)
    return np.minimum(tf, _TF_MAX).astype(np.uint16), row.astype(np.int32), indptr


def combine(parts: Sequence[Lexical]) -> Lexical:
    """One part over all rows of `parts`, in order, with one vocabulary: what a merge passes to
    build() as `previous`, so only passages none of the parts holds are tokenized.

    Terms are numbered in order of first use, as one build() over the same rows numbers them.
    """
    if len({(p.stopwords, p.stemmer) for p in parts}) > 1:
        raise ValueError("BM25 parts tokenized differently can't be combined")
    vocab: dict[str, int] = {}
    maps = [np.array([vocab.setdefault(t, len(vocab)) for t in sorted(p.vocab, key=p.vocab.__getitem__)],
                     dtype=np.int64) for p in parts]
    tokens, offsets, terms, rows, tf = [], [np.zeros(1, np.int64)], [], [], []
    base_token = base_row = 0
    for part, to_global in zip(parts, maps, strict=True):
        if part.tokens is None or part.offsets is None:
            raise ValueError("combine() needs parts loaded with their tokens")
        tokens.append(to_global[part.tokens].astype(np.int32) if len(part.tokens) else np.zeros(0, np.int32))
        offsets.append(np.asarray(part.offsets[1:], dtype=np.int64) + base_token)
        # The parts' matrices re-keyed, not recounted from the tokens: nnz entries, not one per token.
        terms.append(np.repeat(to_global, np.diff(part.indptr)))
        rows.append(np.asarray(part.indices, dtype=np.int64) + base_row)
        tf.append(np.asarray(part.tf))
        base_token += len(part.tokens)
        base_row += len(part.ids)
    stop, stem = (parts[0].stopwords, parts[0].stemmer) if parts else (frozenset(), "")
    if not parts:
        return _part(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(1, np.int64), {}, stop, stem)
    term = np.concatenate(terms)
    # Stable: within a term, entries keep part order and each part's ascending rows.
    order = np.argsort(term, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(term, minlength=len(vocab)))]).astype(np.int64)
    return Lexical(ids=np.concatenate([p.ids for p in parts]).astype(np.int64),
                   tf=np.concatenate(tf)[order].astype(np.uint16),
                   indices=np.concatenate(rows)[order].astype(np.int32), indptr=indptr,
                   lengths=np.concatenate([p.lengths for p in parts]).astype(np.int32), vocab=vocab,
                   stopwords=stop, stemmer=stem, tokens=np.concatenate(tokens),
                   offsets=np.concatenate(offsets))


def save(lex: Lexical, folder: Path) -> dict[str, str]:
    """Write the part and its vocabulary into a segment folder; returns their file names."""
    assert lex.tokens is not None and lex.offsets is not None, "save a built part"
    npz.save(folder / MATRIX, {"ids": lex.ids, "tf": lex.tf, "indices": lex.indices, "indptr": lex.indptr,
                               "lengths": lex.lengths, "tokens": lex.tokens, "offsets": lex.offsets})
    terms = sorted(lex.vocab, key=lex.vocab.__getitem__)
    with (folder / VOCAB).open("w", encoding="utf-8") as f:
        json.dump({"terms": terms, "stopwords": sorted(lex.stopwords)}, f, ensure_ascii=False)
    return {"matrix": MATRIX, "vocab": VOCAB}


def load(matrix: Path, vocab: Path, stemmer: str, with_tokens: bool = False) -> Lexical:
    """Read what save() wrote (numpy arrays only: allow_pickle stays off). The arrays are
    memory-mapped, not read: a question touches only its terms' columns, and processes on the
    same index share the pages (at a million passages the matrix is hundreds of MB)."""
    names = ["ids", "tf", "indices", "indptr", "lengths"] + (["tokens", "offsets"] if with_tokens else [])
    members = npz.members(matrix)
    if "tf" not in members and {"data", "idf"} <= members:
        raise ValueError(f"{matrix} holds BM25 weights as an older qabot wrote them, not term "
                         "counts; run `qabot index` to upgrade it (nothing is re-embedded)")
    return _with_vocab(npz.mapped(matrix, names), vocab, stemmer)


def from_v2(matrix: Path, vocab: Path, stemmer: str) -> Lexical:
    """The part an older qabot's bm25.npz (baked weights, format 2) holds, from its stored tokens:
    upgrading an index this way neither tokenizes nor embeds anything."""
    old = npz.mapped(matrix, ["ids", "tokens", "offsets"])
    meta = json.loads(vocab.read_text(encoding="utf-8"))
    terms = {t: i for i, t in enumerate(meta["terms"])}
    return _part(np.array(old["ids"], dtype=np.int64), np.asarray(old["tokens"]), np.asarray(old["offsets"]),
                 terms, frozenset(meta["stopwords"]), stemmer)


def _with_vocab(arrays: dict[str, np.ndarray], vocab: Path, stemmer: str) -> Lexical:
    meta = json.loads(vocab.read_text(encoding="utf-8"))
    return Lexical(vocab={t: i for i, t in enumerate(meta["terms"])},
                   stopwords=frozenset(meta["stopwords"]), stemmer=stemmer, **arrays)




def score(stack: Stack, text: str | Question) -> tuple[np.ndarray, np.ndarray, float]:
    """(passage ids, BM25 scores) of every live passage sharing a term with the question, best
    first, and the question's ceiling: the score a passage made of nothing but its terms approaches.

    A question word no passage has counts in the ceiling with the idf of a term in no passage,
    so "Who won the Nobel prize?" on a corpus without "Nobel" or "prize" keeps a low ceiling share.
    A `Question` brings its weights (a shard: the whole index's); text is weighed on this stack.
    """
    q = text if isinstance(text, Question) else _weighed(stack, text)
    terms, weights, ceiling = q.terms, q.weights, q.ceiling
    found_ids, found_scores = [], []
    for part, norm, dead, (a, b) in zip(stack.parts, stack._norms, stack._dead, stack._spans, strict=True):
        cols = [(part.vocab[t], weights[t]) for t in terms if t in part.vocab and t in weights]
        if not cols:
            continue
        spans = [(int(part.indptr[c]), int(part.indptr[c + 1])) for c, _ in cols]
        if (a, b) != (0, len(part.ids)):  # a column's rows ascend: keep those in [a, b)
            spans = [(lo + int(x), lo + int(y)) for lo, hi in spans
                     for x, y in [np.searchsorted(part.indices[lo:hi], (a, b))]]
        # intp rows: np.bincount over int32 rows and float32 weights takes a path ten times slower.
        rows = np.concatenate([part.indices[lo:hi] for lo, hi in spans]).astype(np.intp) - a
        tf = np.concatenate([part.tf[lo:hi] for lo, hi in spans]).astype(np.float32)
        idf = np.repeat(np.array([w for _, w in cols], dtype=np.float32), [hi - lo for lo, hi in spans])
        # Lucene's BM25: idf * tf / (tf + k1 * (1 - b + b * length / avgdl)), the norm precomputed.
        totals = np.bincount(rows, weights=idf * tf / (norm[a:b][rows] + tf), minlength=b - a)
        hit = np.flatnonzero(totals > 0)
        if dead is not None:
            hit = hit[~dead[a:b][hit]]
        found_ids.append(part.ids[a + hit])
        found_scores.append(totals[hit])
    if not found_ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), ceiling
    ids, totals = np.concatenate(found_ids), np.concatenate(found_scores)
    order = np.argsort(-totals, kind="stable")  # ties stay in id order: parts are in id order
    return ids[order], totals[order].astype(np.float32), ceiling


def _weighed(stack: Stack, text: str) -> Question:
    """The question weighed on this stack's own statistics (df summed only for its terms)."""
    terms = tuple(tokenize(text, stack.stopwords, stack.stemmer))
    return _question(terms, _idf(stack, terms), stack.rows)


def idf(stack: Stack, terms: Sequence[str]) -> dict[str, float]:
    """Each of these terms some part holds, with its Lucene idf over the whole stack."""
    return _idf(stack, terms)


def idf_of(totals: Totals, terms: Iterable[str]) -> dict[str, float]:
    """Each of these terms some passage has, with its Lucene idf over these statistics."""
    df = {t: n for t in dict.fromkeys(terms) if (n := totals.df.get(t, 0))}
    return {t: _idf_value(totals.rows, n) for t, n in df.items()}


def _idf_value(rows: int, df: int) -> float:
    return float(np.log(1.0 + (rows - df + 0.5) / (df + 0.5)))


def _idf(stack: Stack, terms: Iterable[str]) -> dict[str, float]:
    """term -> log(1 + (N - df + 0.5) / (df + 0.5)), df summed over the parts (deleted rows
    included until a merge, as Lucene counts them); terms no part holds are left out."""
    df: dict[str, int] = {}
    for t in dict.fromkeys(terms):
        n = sum(int(p.indptr[p.vocab[t] + 1] - p.indptr[p.vocab[t]]) for p in stack.parts if t in p.vocab)
        if n:
            df[t] = n
    return {t: _idf_value(stack.rows, n) for t, n in df.items()}


def _unseen(rows: int) -> float:
    """The idf of a term no passage has: what a question word missing from the index adds to the ceiling."""
    return float(np.log(1.0 + (rows + 0.5) / 0.5))
