"""The vector part of a generation: exact while small, an IVF index above a threshold.

Two index types, recorded in the manifest's "vectors_index" entry (a `Layout`):

    flat  IndexIDMap2 over every vector: exact with codec "none" (the default while small),
          exhaustive over compressed codes otherwise.
    ivf   IndexIVF<codec>: a spherical k-means coarse quantizer of `nlist` cells, each query
          scans `nprobe` of them. Ids live in the inverted lists and a hashtable direct map
          is kept, so vectors can be removed and read back by id: incremental add, update and
          remove work exactly as on flat, no tombstones or id map needed.

IVF rather than HNSW (measured in benchmarks/ann_choice.py, docs/scaling.md): FAISS's HNSW
cannot remove a vector, which incremental update needs; at 1M synthetic vectors here HNSW32 also
reached only 0.70 recall@10 at efSearch 128 after a 276 s build (IVF: ~1.0 after ~80 s), and its
graph must sit in RAM, while IVF lists can be memory-mapped.

Codecs (bytes per 384-d vector): none 1536 (float32), float16 768, sq8 384, pq 48.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import CODECS, INDEX_TYPES, VectorSettings

_FACTORY = {"none": "Flat", "float16": "SQfp16", "sq8": "SQ8"}
# k-means needs some points per cell; FAISS warns below 39 and quality drops with fewer.
MIN_POINTS_PER_CELL = 39
# pq's sub-quantizers have 256 centroids each (8 bits), and FAISS refuses to train them on fewer
# points; below this many vectors "pq" stays exact float32 (a few hundred vectors are small anyway).
PQ_MIN_POINTS = 256
TRAIN_POINTS_PER_CELL = 64  # a sample is enough to place the cells; all of 1M would take minutes


def _faiss() -> Any:
    """FAISS, imported on first use (~0.2 s) and untyped: its SWIG stubs miss half the API."""
    import faiss

    return faiss


@dataclass(frozen=True)
class Layout:
    """How a generation's vectors are indexed; any change rebuilds the index. (How many IVF
    cells a question scans is not part of it: that is read at query time, see search().)"""

    type: str = "flat"
    codec: str = "none"
    nlist: int = 0  # ivf: cells of the coarse quantizer
    trained_on: int = 0  # ivf: vectors in the index when the quantizer was trained

    @property
    def exact(self) -> bool:
        """True when searching it gives exactly the brute-force answer."""
        return self.type == "flat" and self.codec == "none"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any] | None) -> Layout:
        """The manifest's record; an index written before it existed is exact flat. (Indexes
        written before nprobe moved to query time record one: it is ignored.)"""
        if not d:
            return Layout()
        return Layout(**{k: v for k, v in d.items() if k != "nprobe"})


def describe(layout: Layout) -> str:
    """"ivf (4096 cells, sq8)" / "flat (exact)": for log lines."""
    if layout.type == "flat":
        return "flat (exact)" if layout.exact else f"flat ({layout.codec})"
    return f"ivf ({layout.nlist} cells, {layout.codec})"


def nlist_for(count: int) -> int:
    """Cells for `count` vectors: the power of two near 4·√count (FAISS's usual rule), no more
    than the points allow to train."""
    target = max(1.0, 4 * math.sqrt(max(count, 1)))
    nlist = 2 ** int(math.floor(math.log2(target)))
    while nlist > 1 and count < MIN_POINTS_PER_CELL * nlist:
        nlist //= 2
    return nlist


def nprobe_for(nlist: int, setting: int) -> int:
    """Cells scanned per query: the setting when given, else nlist/16, at least 32.

    Measured on real MiniLM vectors (SciFact, benchmarks/ann_real.py): recall@10 follows the
    number of cells scanned more than their share: 32 cells gave 0.94-0.95 and 64 gave
    0.97-0.98 at nlist 256-512. Synthetic clustered vectors reach 1.0 with far fewer, so they
    can't be what sets this."""
    return min(nlist, setting if setting > 0 else max(32, nlist // 16))


def choose(count: int, want: VectorSettings, current: Layout | None = None) -> Layout:
    """The layout for `count` vectors.

    "auto" is flat below the threshold and ivf from it; once ivf, it stays ivf until the index
    shrinks below half the threshold, so a corpus hovering at the boundary is not rebuilt at
    every commit. An ivf quantizer is kept while the count stays within 4x of what it was
    trained on (cells then hold between a quarter and 4x their intended size), retrained past it.
    """
    if want.type not in INDEX_TYPES:
        raise ValueError(f"index type must be one of {INDEX_TYPES}, not {want.type!r}")
    if want.codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, not {want.codec!r}")
    codec = want.codec
    if codec == "pq" and count < PQ_MIN_POINTS:
        codec = "none"  # nothing to learn 256 centroids a sub-quantizer from yet: exact until then
    kind = want.type
    if kind == "auto":
        was_ivf = current is not None and current.type == "ivf"
        threshold = want.ann_threshold
        kind = "ivf" if count >= (threshold // 2 if was_ivf else threshold) else "flat"
    if kind == "ivf" and count < MIN_POINTS_PER_CELL:
        kind = "flat"  # nothing to train a quantizer on yet
    if kind == "flat":
        return Layout("flat", codec)
    if (current is not None and current.type == "ivf" and current.codec == codec
            and current.trained_on / 4 <= count <= current.trained_on * 4):
        return current
    return Layout("ivf", codec, nlist_for(count), count)


def _codec(codec: str, dim: int) -> str:
    if codec == "pq":
        m = dim // 8 if dim % 8 == 0 else dim // 4 if dim % 4 == 0 else 1
        # 8 dims a sub-quantizer: 48 bytes for 384-d. "np": no polysemous training, which
        # only serves Hamming-distance filtering we don't use and takes 10x longer.
        return f"PQ{m}x8np"
    return _FACTORY[codec]


def new_index(layout: Layout, dim: int, train: np.ndarray | None = None) -> Any:
    """An empty index of this layout; codecs and ivf need `train` (unit rows) to learn from."""
    faiss = _faiss()

    if layout.type == "flat":
        inner = faiss.index_factory(dim, _codec(layout.codec, dim), faiss.METRIC_INNER_PRODUCT)
        index: Any = faiss.IndexIDMap2(inner)
    else:
        index = faiss.index_factory(dim, f"IVF{layout.nlist},{_codec(layout.codec, dim)}",
                                    faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True  # unit vectors: centroids renormalised, cells by cosine
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
    if not index.is_trained:
        if train is None or len(train) == 0:
            raise ValueError(f"a {layout.type}/{layout.codec} index needs vectors to train on")
        index.train(_sample(train, layout.nlist * TRAIN_POINTS_PER_CELL if layout.nlist else 65536))
    return index


def _sample(vectors: np.ndarray, at_most: int) -> np.ndarray:
    if len(vectors) <= at_most:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), at_most, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def add(index: Any, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Add unit float32 rows under these int64 ids."""
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                           np.ascontiguousarray(ids, dtype=np.int64))


def remove(index: Any, ids: Iterable[int]) -> None:
    """Drop these ids (unknown ids are ignored)."""
    arr = np.fromiter(ids, dtype=np.int64)
    if arr.size:
        index.remove_ids(arr)


def all_ids(index: Any) -> np.ndarray:
    """Every id in the index (any order)."""
    faiss = _faiss()

    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
             for i in range(ivf.nlist) if lists.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def vectors_of(index: Any, ids: np.ndarray) -> np.ndarray:
    """The stored (decoded) vectors of these ids, one row each."""
    if len(ids) == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64)),
                      dtype=np.float32)


def flat_matrix(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, ids) of a flat float32 index (Layout.exact): its vectors, one row each, and
    the id of each row. The matrix is a view of FAISS's own storage, no copy (every inner
    product in one product): valid while `index` is alive and unchanged."""
    faiss = _faiss()

    flat = faiss.downcast_index(index.index)
    n, d = flat.ntotal, flat.d
    matrix = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d) if n \
        else np.zeros((0, d), dtype=np.float32)
    return matrix, faiss.vector_to_array(index.id_map)


def inner_products(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """matrix @ query for a flat_matrix, on the calling thread (FAISS's SIMD kernel).

    numpy's BLAS splits a matrix-vector product over every core: memory-bound, it gains little
    on a quiet machine and costs 2-4x when the other core is busy (another question, an
    indexer: its threads wait for a core), measured 2.4 vs 4.3-7.9 ms at 18k passages on 2
    loaded cores (benchmarks/latency.py prints both). Questions run side by side instead."""
    n, d = matrix.shape
    out = np.empty(n, dtype=np.float32)
    if n:
        faiss = _faiss()
        q = np.ascontiguousarray(query, dtype=np.float32)
        assert matrix.dtype == np.float32 and matrix.flags.c_contiguous and len(q) == d
        faiss.fvec_inner_products_ny(faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(matrix), d, n)
    return out


def convert(index: Any, layout: Layout, batch: int = 65536) -> Any:
    """The same vectors under another layout (a type switch, a new codec, a retrained quantizer).

    Vectors are read back from `index`: exact from a float32 index, decoded (so slightly
    rounded) from a compressed one.
    """
    ids = np.sort(all_ids(index))
    train = vectors_of(index, _sample_ids(ids, layout)) if layout.type == "ivf" or layout.codec != "none" \
        else None
    out = new_index(layout, index.d, train)
    for i in range(0, len(ids), batch):
        part = ids[i : i + batch]
        add(out, part, vectors_of(index, part))
    return out


def _sample_ids(ids: np.ndarray, layout: Layout) -> np.ndarray:
    at_most = layout.nlist * TRAIN_POINTS_PER_CELL if layout.nlist else 65536
    if len(ids) <= at_most:
        return ids
    return np.sort(np.random.default_rng(0).choice(ids, at_most, replace=False))


def search(index: Any, layout: Layout, query: np.ndarray, k: int,
           allowed: np.ndarray | None = None, nprobe: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest to one query, best first, -1 ids dropped; only among
    `allowed` ids when given (a date window), so a narrow window still fills k. An ivf index
    scans `nprobe` cells ([vectors] nprobe; 0: nprobe_for's rule), the one place it is read."""
    sel = _faiss().IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)) \
        if allowed is not None else None
    return _search(index, layout, query, k, nprobe, sel)


def write(index: Any, path: Path) -> None:
    """Write an index file; a failed write raises OSError, as any other file write would."""
    faiss = _faiss()

    try:
        faiss.write_index(index, str(path))
    except RuntimeError as err:
        # FAISS reports a short write as a RuntimeError ending in the C library's strerror:
        # give it back its errno, so a full disk reads as one (see cli._os_error).
        for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
            if f"({os.strerror(code)})" in str(err):
                raise OSError(code, os.strerror(code), str(path)) from None
        raise


def read(path: Path, layout: Layout, for_update: bool = False) -> Any:
    """Load an index file; a reader memory-maps an ivf index's lists (only the cells queries
    touch are paged in, and processes share them through the page cache), and a flat one's
    vectors: opening the news dev index's 28 MB took 21 ms copied, 1 ms mapped, for a cold
    `qabot ask` (the scan reads them all either way). Generations never change a file, and one
    read for update (a merge changes the first segment in place) is copied."""
    faiss = _faiss()

    if not path.is_file():
        raise FileNotFoundError(path)
    mmap = layout.type == "ivf" and not for_update
    flags = 0 if for_update else faiss.IO_FLAG_MMAP if mmap else faiss.IO_FLAG_MMAP_IFC
    index = faiss.read_index(str(path), flags)
    if mmap:
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
        if hasattr(lists, "prefetch_nthread"):
            # By default FAISS starts threads that read ahead every probed list; on 2 cores
            # they slow a query ~3x (benchmarks/ann_choice.py: p50 2.3 ms vs 0.7 ms at 1M).
            lists.prefetch_nthread = 0
    return index


@dataclass(frozen=True)
class Part:
    """One segment's vectors: its FAISS index, how it is laid out, and the first passage id it
    may hold (segments hold disjoint, ascending id ranges)."""

    index: Any
    layout: Layout
    first_id: int


class Stack:
    """The live vectors of a generation: each segment's index, deleted passages left out.

    A commit adds a small exact segment instead of rewriting the large one, so a question
    searches every part and keeps the best; vectors of deleted passages stay in their part (and
    are skipped) until a merge folds the parts into one.
    """

    def __init__(self, parts: Sequence[Part], deleted: np.ndarray | None = None) -> None:
        if not parts:
            raise ValueError("a stack needs at least one part")
        self.parts = tuple(parts)
        self.deleted = np.zeros(0, np.int64) if deleted is None else np.asarray(deleted, np.int64)
        self._starts = np.array([p.first_id for p in self.parts], dtype=np.int64)
        self.d = int(self.parts[0].index.d)
        self.ntotal = sum(int(p.index.ntotal) for p in self.parts) - len(self.deleted)
        faiss = _faiss()
        # Kept alive with the stack: FAISS holds a raw pointer to the selector's ids.
        self._dead = faiss.IDSelectorBatch(np.ascontiguousarray(self.deleted)) if len(self.deleted) else None
        self._live = faiss.IDSelectorNot(self._dead) if self._dead is not None else None

    @property
    def layout(self) -> Layout:
        """The layout of the largest part, the one merges write (later parts are exact flat)."""
        return self.parts[0].layout

    @property
    def exact(self) -> bool:
        """True when searching gives exactly the brute-force answer (every part is exact)."""
        return all(p.layout.exact for p in self.parts)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None,
               nprobe: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest live passages, best first; only among `allowed` ids
        when given. Each part is searched for k, the union cut to the k best."""
        found = [search(p.index, p.layout, query, k, allowed, nprobe) if allowed is not None
                 else _search(p.index, p.layout, query, k, nprobe, self._live) for p in self.parts]
        scores = np.concatenate([s for s, _ in found])
        ids = np.concatenate([i for _, i in found])
        if len(self.parts) > 1:
            order = np.argsort(-scores, kind="stable")[:k]
            scores, ids = scores[order], ids[order]
        return scores, ids

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored (decoded) vectors of these ids, one row each, from the part holding each."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.parts) == 1:
            return vectors_of(self.parts[0].index, ids)
        out = np.empty((len(ids), self.d), dtype=np.float32)
        which = np.searchsorted(self._starts, ids, side="right") - 1
        for n, part in enumerate(self.parts):
            at = np.flatnonzero(which == n)
            if len(at):
                out[at] = vectors_of(part.index, ids[at])
        return out

    def flat_parts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(matrix, ids) of each part (all exact, see flat_matrix): views, no copies; deleted
        ids are among them, for the caller to skip."""
        return [flat_matrix(p.index) for p in self.parts]

    def merged(self, layout: Layout) -> Any:
        """One index of every live vector, in `layout`: the first part changed in place (read
        it for update) when its layout is that one, the other parts' vectors added to it."""
        first = self.parts[0]
        index = first.index if first.layout == layout else convert(first.index, layout)
        remove(index, self.deleted.tolist())
        for part in self.parts[1:]:
            ids = np.sort(all_ids(part.index))
            ids = ids[~np.isin(ids, self.deleted)] if len(self.deleted) else ids
            for i in range(0, len(ids), 65536):
                add(index, ids[i : i + 65536], vectors_of(part.index, ids[i : i + 65536]))
        return index


def _search(index: Any, layout: Layout, query: np.ndarray, k: int, nprobe: int,
            sel: Any) -> tuple[np.ndarray, np.ndarray]:
    """search() with a ready-made FAISS selector of the ids to consider (None: every id)."""
    faiss = _faiss()
    if layout.type == "ivf":
        params: Any = faiss.SearchParametersIVF(nprobe=nprobe_for(layout.nlist, nprobe), sel=sel)
    else:
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
    k = min(k, index.ntotal)
    if k < 1:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k,
                               params=params)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep].astype(np.int64)
