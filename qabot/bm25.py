"""BM25 over the stored passages: built at commit time, scored with numpy per question.

What a commit builds is a sparse term x passage matrix of ready-made BM25 weights (bm25s's
Lucene variant, computed with whole-array numpy; bm25s is only the reference the tests compare
with), so answering a question is a sum of a few columns: numpy does that in well under a
millisecond, and the query path stays light.

On disk, in each generation folder (named by the manifest's "bm25" entry; no pickle):

    bm25.npz         ids (passage id of each row), data/indices/indptr (the CSC matrix: one
                     column per term), idf (per term: the most one term can add to a score),
                     tokens/offsets (each row's term ids, so a commit tokenizes only what's new)
    bm25-vocab.json  {"terms": [...] in column order, "stopwords": [...]}
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .catalog import CatalogView, Changes
from .config import BM25Params as Params  # the [bm25] section of the settings is the parameters

# Bump when tokenize() changes: the manifest records it, and a mismatch rebuilds the matrix.
TOKENIZER_VERSION = 1
MATRIX = "bm25.npz"
VOCAB = "bm25-vocab.json"
_WORD_RE = re.compile(r"\w+")
_STEMMERS: dict[str, Any] = {}
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True)
class Lexical:
    """A BM25 matrix: rows are passages (by row number), columns are terms."""

    ids: np.ndarray  # int64 passage id of each row
    data: np.ndarray  # float32 BM25 weight of (term, row)
    indices: np.ndarray  # int row of each weight
    indptr: np.ndarray  # int start of each term's weights in data/indices
    idf: np.ndarray  # float32 per term
    vocab: dict[str, int]
    stopwords: frozenset[str]
    stemmer: str
    # Each row's term ids (tokens[offsets[r]:offsets[r + 1]]), kept so the next commit
    # tokenizes only new passages; not loaded on the query path.
    tokens: np.ndarray | None = None
    offsets: np.ndarray | None = None


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
    """The BM25 matrix of these (passage id, text) pairs, reusing `previous`'s tokens by id
    (the caller passes `previous` only when it was built from the same texts and tokenized alike:
    manifest.Lexical.same_tokens).

    Any change to the corpus changes every idf, so the matrix is always rebuilt whole; what is
    saved is the tokenizing (nine tenths of the time on SciFact), which only new passages need.
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
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
    # Drop terms no passage uses any more (removed articles), renumbering the rest.
    used = np.flatnonzero(np.bincount(flat, minlength=len(vocab)))  # sorted, without a sort
    remap = np.full(len(vocab) or 1, -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    flat = remap[flat] if flat.size else flat.astype(np.int32)
    terms = sorted(vocab, key=vocab.__getitem__)
    vocab = {terms[t]: i for i, t in enumerate(used.tolist())}
    data, indices, indptr, idf = weights(flat, offsets, len(vocab), params.k1, params.b)
    ids = np.fromiter((pid for pid, _ in passages), dtype=np.int64, count=len(rows))
    return Lexical(ids=ids, data=data, indices=indices, indptr=indptr, idf=idf, vocab=vocab,
                   stopwords=stop, stemmer=params.stemmer, tokens=flat, offsets=offsets)


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


def weights(
    flat: np.ndarray, offsets: np.ndarray, n_terms: int, k1: float, b: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The BM25 matrix (Lucene variant, as bm25s's method="lucene" builds it) of rows whose term
    ids are flat[offsets[r]:offsets[r + 1]]: CSC data, indices (rows), indptr (per term), idf.

    Whole-array numpy instead of bm25s's per-passage Python loop: every commit rebuilds the
    matrix (each new passage changes every idf), and at a million passages bm25s took 41 s of a
    51 s one-article commit. tests/test_retrieval.py checks the two give the same matrix.
    """
    lengths = np.diff(offsets)
    n = len(lengths)
    if not len(flat):  # no terms at all (bm25s would divide by a zero mean length)
        return (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n_terms + 1, np.int64),
                np.zeros(n_terms, np.float32))
    row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
    # One key per (term, row) occurrence; sorted unique keys are the CSC order, counts the tf.
    pairs, tf = np.unique(flat.astype(np.int64) * n + row_of, return_counts=True)
    term, row = np.divmod(pairs, n)
    df = np.bincount(term, minlength=n_terms)
    # Lucene's idf; with tf -> infinity a term adds at most its idf (score()'s ceiling).
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    norm = k1 * ((1 - b) + b * lengths / lengths.mean())
    data = idf[term] * tf / (norm[row] + tf)
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    return data.astype(np.float32), row.astype(np.int32), indptr, idf.astype(np.float32)


def save(lex: Lexical, folder: Path) -> dict[str, str]:
    """Write the matrix and vocabulary into a generation folder; returns their file names."""
    assert lex.tokens is not None and lex.offsets is not None, "save a built matrix"
    np.savez(folder / MATRIX, ids=lex.ids, data=lex.data, indices=lex.indices,
             indptr=lex.indptr, idf=lex.idf, tokens=lex.tokens, offsets=lex.offsets)
    terms = sorted(lex.vocab, key=lex.vocab.__getitem__)
    with (folder / VOCAB).open("w", encoding="utf-8") as f:
        json.dump({"terms": terms, "stopwords": sorted(lex.stopwords)}, f, ensure_ascii=False)
    return {"matrix": MATRIX, "vocab": VOCAB}


def load(matrix: Path, vocab: Path, stemmer: str, with_tokens: bool = False) -> Lexical:
    """Read what save() wrote (numpy arrays only: allow_pickle stays off). The arrays are
    memory-mapped, not read: a question touches only its terms' columns, and processes on the
    same index share the pages (at a million passages the matrix is hundreds of MB)."""
    names = ["ids", "data", "indices", "indptr", "idf"] + (["tokens", "offsets"] if with_tokens else [])
    arrays = _mapped(matrix, names)
    meta = json.loads(vocab.read_text(encoding="utf-8"))
    return Lexical(vocab={t: i for i, t in enumerate(meta["terms"])},
                   stopwords=frozenset(meta["stopwords"]), stemmer=stemmer, **arrays)


def _mapped(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The named arrays of an .npz, memory-mapped where they lie in the file when they can be.

    np.savez stores each array as an uncompressed .npy member of a zip: np.load can't map
    those, but each member's bytes sit contiguously at a known offset.
    """
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z, path.open("rb") as f:
        for name in names:
            info = z.getinfo(f"{name}.npy")
            array = _map_member(path, f, info)
            out[name] = array if array is not None else np.load(z.open(info), allow_pickle=False)
    return out


def _map_member(path: Path, f: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray | None:
    """One stored member as a read-only array over the file, or None when it can't be mapped
    (compressed, an unknown .npy version, objects, Fortran order or empty)."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    f.seek(info.header_offset)
    local = f.read(30)  # the zip local file header; its name and extra field lengths vary
    f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
           + int.from_bytes(local[28:30], "little"))
    read_header = _NPY_HEADERS.get(np.lib.format.read_magic(f))
    if read_header is None:
        return None
    shape, fortran, dtype = read_header(f)
    if dtype.hasobject or fortran or not np.prod(shape):
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape).view(np.ndarray)


def score(lex: Lexical, question: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(passage ids, BM25 scores) of every passage sharing a term with the question, best first,
    and the question's ceiling: the score a passage made of nothing but its terms approaches.

    A question word no passage has counts in the ceiling with the idf of a term in no passage,
    so "Who won the Nobel prize?" on a corpus without "Nobel" or "prize" keeps a low ceiling share.
    """
    terms = tokenize(question, lex.stopwords, lex.stemmer)
    cols = [lex.vocab[t] for t in terms if t in lex.vocab]
    unseen = (len(terms) - len(cols)) * float(np.log(1.0 + (len(lex.ids) + 0.5) / 0.5))
    if not cols:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), unseen
    rows = np.concatenate([lex.indices[lex.indptr[c] : lex.indptr[c + 1]] for c in cols])
    weights = np.concatenate([lex.data[lex.indptr[c] : lex.indptr[c + 1]] for c in cols])
    totals = np.bincount(rows, weights=weights, minlength=len(lex.ids))[: len(lex.ids)]
    hit = np.flatnonzero(totals > 0)
    order = hit[np.argsort(-totals[hit], kind="stable")]
    return lex.ids[order], totals[order].astype(np.float32), float(lex.idf[cols].sum()) + unseen
