"""A segment's parts: each a set of files in one format that writes, loads, merges and checks itself.

A segment (manifest.Segment) is the passages of a range of ids, stored as parts, as Lucene
stores a segment through its codecs:

    catalog  passages.sqlite + rows.npz: articles and passages with their texts, and per passage
             its article and day (catalog.py)
    vectors  vectors.faiss: the passages' vectors, keyed by passage id (vectors.py)
    bm25     bm25.npz + bm25-vocab.json: term counts and lengths (bm25.py)
    stories  stories.npz: each article's word-shingle hashes, which decide whether two articles
             tell one story (fingerprints.py)
    sentences sentences.npz: each passage's sentences as vectors pooled from its word pieces, for
             the answering sentence's cosine to the question (sentvecs.py)

The commit paths, the loader, the checker, garbage collection and the upgrade (store.py) only
iterate over `PARTS`; none of them names a file. What a part does:

    write(folder, Write)   the part of a new segment: the articles of a commit, with their vectors
    merge(folder, Merge)   the part of one segment made of several: their loaded parts, less the
                           deleted passages (the live-row mask), plus a full merge's new articles
    load(paths, ...)       its files read back (`Reading`: for a reader, or for a merge)
    count(loaded)          how many passages it holds: the segment's count, or the load is refused
    stack(loaded, ...)     what readers search: every segment's part, deleted passages left out
    check(...)             a cheap look at its files for damage: a problem, or None
    sizes(...)             the bytes it wrote per file, which check() compares against later

Both jobs carry `rows`: the passages the segment will hold, sorted by id, which the writer works
out before any part writes; every part holds exactly those, in that order, or nothing is
committed.

A part is `derived` when it can be rebuilt from the catalog's texts without embedding (BM25):
when its files are damaged it is dropped from its segment, and the next `qabot index` rebuilds it
in a full merge; a segment without it is not `complete` (store.complete) until then.

Adding a part: subclass `Part` (here, or in a module of its own that this one imports), and add an
instance to `PARTS`. An index written before the part existed lacks it in every segment: when it
is derived, the next `qabot index` builds it in a full merge. docs/architecture.md says more.
"""

from __future__ import annotations

import functools
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import numpy as np

from . import bm25, fingerprints, sentvecs, vectors
from .catalog import (
    Catalog,
    Changes,
    Deleted,
    PassageRecord,
    Rows,
    Stack,
    read_rows,
    write_rows,
    write_segment,
)
from .catalog import write as write_catalog
from .errors import IndexDamaged
from .manifest import Build, OldSegment, Segment

if TYPE_CHECKING:
    from .embed import OnnxEmbedder

T = TypeVar("T")  # what a part's load() gives
S = TypeVar("S")  # what its stack() gives
Log = Callable[[str], None]


@dataclass(frozen=True)
class Batch:
    """New articles a commit writes: their records (passage ids given, ascending), the vectors of
    their passages in the same order, and new titles of articles a merge keeps. What the commit
    removes is not here: the writer turns it into the `Deleted` list every part is given."""

    changes: Changes
    vectors: np.ndarray  # float32, one unit row per passage of changes.articles, in order
    # The sentence vectors of those passages, in the same order, pooled in the same model run
    # (embed.OnnxEmbedder.encode_pooled); None: the embedder gave none, the part pools them itself.
    sentences: Sequence[sentvecs.Pooled] | None = None

    @property
    def ids(self) -> np.ndarray:
        """The new passages' ids, in the order of their vectors."""
        return np.array([p.id for _, ps in self.changes.articles for p in ps], dtype=np.int64)


@dataclass(frozen=True)
class Write:
    """A new segment: the articles of `batch` and nothing older."""

    build: Build  # of the generation being committed
    batch: Batch
    layout: vectors.Layout  # how its vectors are indexed
    rows: Rows  # the passages it holds, sorted by id: every part holds exactly these
    articles: int  # how many articles it holds
    next_article: int  # the number the batch's first article gets
    log: Log


@dataclass(frozen=True)
class Merge(Write):
    """One segment made of `segments`: their live passages (`deleted` left out), plus the articles
    of `batch` (a full merge that also commits new articles; else empty)."""

    old: Build  # how `segments` were built (their BM25 tokens are reused when tokenized alike)
    segments: tuple[Loaded, ...]  # read for merging, in id order
    catalog: Stack  # their live catalog: the texts of kept passages, for a part rebuilt from them
    deleted: Deleted  # what of them is not kept (a generation's list, plus what the commit removes)

    def values(self, part: Part[T, Any]) -> list[T | None]:
        """What `part` loaded of each segment (None: the segment lacks it)."""
        return [x.get(part) for x in self.segments]


@dataclass(frozen=True)
class Reading:
    """How a segment is read: for a reader (memory-mapped where it can be), or for a merge (also
    what merging needs: BM25's per-passage tokens, vectors in RAM to be changed in place)."""

    merging: bool = False


@dataclass(frozen=True)
class Loaded:
    """One segment as read from disk: what each of its parts' load() gave (a part it lacks is
    absent). Its files never change, so a reader's next snapshot reuses it."""

    segment: Segment
    values: Mapping[str, object]

    def get(self, part: Part[T, Any]) -> T | None:
        """What `part` loaded of this segment; None when the segment lacks it."""
        return cast("T | None", self.values.get(part.name))


class Inconsistent(ValueError):
    """A part's files disagree with the manifest (another dimension, another count)."""


class Part(ABC, Generic[T, S]):
    """One format of per-segment data (module docstring); `PARTS` lists every segment's."""

    name: ClassVar[str]  # its key in the manifest
    label: ClassVar[str]  # how messages name it
    files: ClassVar[tuple[str, ...]]  # the names of the files it writes in a segment's folder
    derived: ClassVar[bool] = False  # rebuilt from the catalog's texts when lost (module docstring)
    old_keys: ClassVar[tuple[str, ...]] = ()  # the keys formats 2 and 3 recorded its files under

    def applies(self, build: Build) -> bool:
        """True when segments of this build have this part."""
        return True

    @abstractmethod
    def write(self, folder: Path, job: Write) -> int:
        """Write the part of a new segment into `folder`; returns how many passages it holds."""

    @abstractmethod
    def merge(self, folder: Path, job: Merge) -> int:
        """Write the part of the merged segment into `folder`; returns how many passages it holds."""

    @abstractmethod
    def load(self, paths: Sequence[Path], segment: Segment, build: Build, how: Reading) -> T:
        """Read the part from its files (in the order of `files`); Inconsistent when they
        disagree with the manifest in a way count() can't tell."""

    @abstractmethod
    def count(self, loaded: T) -> int:
        """How many passages the loaded part holds."""

    @abstractmethod
    def stack(self, segments: Sequence[Loaded], deleted: Deleted, build: Build) -> S:
        """What readers search: every segment's part, in id order, `deleted` left out."""

    def check(self, index_dir: Path, segment: Segment, paths: Sequence[str], sizes: Mapping[str, int],
              build: Build) -> str | None:
        """What is wrong with its files ("gen-000007/bm25.npz is missing"), None when nothing
        is found. Cheap: sizes and headers, not every byte."""
        for name in paths:
            why = check_file(index_dir, name, sizes)
            if why:
                return f"{name} {why}"
        return None

    def sizes(self, index_dir: Path, paths: Sequence[str]) -> dict[str, int]:
        """The bytes of each of its files as written: a truncated file shows at a stat()."""
        return {f: (index_dir / f).stat().st_size for f in paths}

    def upgrade(self, index_dir: Path, folder: Path, old: OldSegment, version: int,
                build: Build) -> tuple[str, ...] | None:
        """Its files in a segment format 2 or 3 wrote (relative to the index folder): kept where
        they are, or rewritten into `folder` when the part's format changed since; None when
        that segment has none."""
        if not self.old_keys or not all(k in old.files for k in self.old_keys):
            return None
        return tuple(old.files[k] for k in self.old_keys)


@dataclass(frozen=True)
class Catalogued:
    """A segment's catalog as loaded: the SQLite file (read lazily) and its rows."""

    catalog: Catalog
    rows: Rows


class CatalogPart(Part[Catalogued, Stack]):
    """Articles and passages with their texts (passages.sqlite), and each passage's article
    number and day (rows.npz): catalog.py. An article's number is its SQLite row id, so both
    files are written together."""

    name = label = "catalog"
    files = ("passages.sqlite", "rows.npz")
    old_keys = ("passages", "rows")

    def write(self, folder: Path, job: Write) -> int:
        rows, articles = write_segment(folder / self.files[0], job.batch.changes, job.next_article)
        return self._rows(folder, job, rows, articles)

    def merge(self, folder: Path, job: Merge) -> int:
        # The deletions are in job.catalog's list already: nothing to remove by doc id.
        changes = Changes(articles=job.batch.changes.articles, titles=job.batch.changes.titles)
        rows, articles = write_catalog(folder / self.files[0], changes, job.catalog, job.next_article)
        return self._rows(folder, job, rows, articles)

    def _rows(self, folder: Path, job: Write, rows: Rows, articles: int) -> int:
        """Write rows.npz, once the SQLite file is seen to hold what the writer said it would."""
        if articles != job.articles or not np.array_equal(rows.ids, job.rows.ids):
            raise AssertionError(f"the catalog holds {articles} articles and {len(rows.ids)} passages, "
                                 f"the commit said {job.articles} and {len(job.rows.ids)}: not committed")
        write_rows(folder / self.files[1], rows)
        return len(rows.ids)

    def load(self, paths: Sequence[Path], segment: Segment, build: Build, how: Reading) -> Catalogued:
        return Catalogued(Catalog(paths[0]), read_rows(paths[1]))

    def count(self, loaded: Catalogued) -> int:
        return len(loaded.rows.ids)

    def stack(self, segments: Sequence[Loaded], deleted: Deleted, build: Build) -> Stack:
        parts = [required(x, self) for x in segments]
        return Stack([p.catalog for p in parts], [p.rows for p in parts], deleted)


class VectorsPart(Part[Any, vectors.Stack]):
    """The passages' vectors: a FAISS index keyed by passage id, laid out as the segment's
    `layout` says (vectors.py). The loaded value is the FAISS index."""

    name = label = "vectors"
    files = ("vectors.faiss",)
    old_keys = ("vectors",)

    def write(self, folder: Path, job: Write) -> int:
        # A layout that learns (ivf, a codec) trains on the vectors it will hold.
        index = vectors.new_index(job.layout, job.build.model.dim, job.batch.vectors)
        vectors.add(index, job.batch.ids, job.batch.vectors)
        vectors.write(index, folder / self.files[0])
        return int(index.ntotal)

    def merge(self, folder: Path, job: Merge) -> int:
        parts = [vectors.Part(required(x, self), x.segment.layout, x.segment.first_id) for x in job.segments]
        stack = vectors.Stack(parts, job.deleted.passages)
        # The first segment's index, changed in place (it was read for update): the largest is
        # not copied, only the others' live vectors added to it.
        index = stack.merged(stack.layout)
        vectors.add(index, job.batch.ids, job.batch.vectors)
        if stack.layout != job.layout:
            job.log(f"Re-indexing the {index.ntotal} vectors as {vectors.describe(job.layout)} (was "
                    f"{vectors.describe(stack.layout)}); nothing is re-embedded…")
            index = vectors.convert(index, job.layout)
        vectors.write(index, folder / self.files[0])
        return int(index.ntotal)

    def load(self, paths: Sequence[Path], segment: Segment, build: Build, how: Reading) -> Any:
        index = vectors.read(paths[0], segment.layout, for_update=how.merging)
        if index.d != build.model.dim:
            raise Inconsistent(f"{paths[0].name} holds {index.d}-d vectors, the manifest says "
                               f"{build.model.dim}-d")
        return index

    def count(self, loaded: Any) -> int:
        return int(loaded.ntotal)

    def stack(self, segments: Sequence[Loaded], deleted: Deleted, build: Build) -> vectors.Stack:
        return vectors.Stack([vectors.Part(required(x, self), x.segment.layout, x.segment.first_id)
                              for x in segments], deleted.passages)

    def check(self, index_dir: Path, segment: Segment, paths: Sequence[str], sizes: Mapping[str, int],
              build: Build) -> str | None:
        why = super().check(index_dir, segment, paths, sizes, build)
        # An index from before sizes were recorded: no smaller than an id and a code per vector.
        if why is None and paths[0] not in sizes and \
                (index_dir / paths[0]).stat().st_size < _least_vector_bytes(segment, build.model.dim):
            return f"{paths[0]} is truncated"
        return why


class BM25Part(Part[bm25.Lexical, bm25.Stack | None]):
    """Per passage its term counts and length (bm25.py); the weights are computed at query time
    over every segment's part. Derived: rebuilt from the stored texts when lost."""

    name = "bm25"
    label = "BM25"
    files = (bm25.MATRIX, bm25.VOCAB)
    derived = True
    old_keys = ("bm25_matrix", "bm25_vocab")

    def applies(self, build: Build) -> bool:
        return build.lexical is not None  # an index written without BM25 parameters has none

    def write(self, folder: Path, job: Write) -> int:
        params = _params(job.build)
        texts = bm25.inputs(job.batch.changes, np.zeros(0, dtype=np.int64), None, params.titles, None)
        return _save(bm25.build(texts, params), folder)

    def merge(self, folder: Path, job: Merge) -> int:
        """Tokenize only what the segments' parts can't lend: nothing, unless the tokenizer
        settings changed, titles changed, or a segment lost its part."""
        params = _params(job.build)
        loaded = job.values(self)
        parts = [p for p in loaded if p is not None]
        whole, old = len(parts) == len(loaded), job.old.lexical
        kept = job.catalog.rows.ids
        if len(kept) and not (whole and old is not None and old.current(params)):
            job.log("Building the BM25 index from the stored passages (nothing is re-embedded)…")
        # Passages carry their article's title into BM25: new titles mean new tokens.
        alike = old is not None and old.same_tokens(params)
        previous = bm25.combine(parts) if whole and alike and not (
            job.batch.changes.titles and params.titles) else None
        texts = bm25.inputs(job.batch.changes, kept, job.catalog, params.titles, previous)
        return _save(bm25.build(texts, params, previous), folder)

    def load(self, paths: Sequence[Path], segment: Segment, build: Build, how: Reading) -> bm25.Lexical:
        return bm25.load(paths[0], paths[1], _params(build).stemmer, with_tokens=how.merging)

    def count(self, loaded: bm25.Lexical) -> int:
        return len(loaded.ids)

    def stack(self, segments: Sequence[Loaded], deleted: Deleted, build: Build) -> bm25.Stack | None:
        """None when a segment lacks its part: BM25 then says to run `qabot index`."""
        parts = [x.get(self) for x in segments]
        if build.lexical is None or not parts or any(p is None for p in parts):
            return None
        return bm25.Stack.of([p for p in parts if p is not None], deleted.passages, build.lexical.params)

    def upgrade(self, index_dir: Path, folder: Path, old: OldSegment, version: int,
                build: Build) -> tuple[str, ...] | None:
        """Format 2 stored BM25 weights computed at commit time: rewritten as term counts from
        the tokens it kept (nothing tokenized again)."""
        found = super().upgrade(index_dir, folder, old, version, build)
        if version != 2 or found is None:
            return found
        if build.lexical is None:
            return None
        try:
            lexical = bm25.from_v2(index_dir / found[0], index_dir / found[1], build.lexical.params.stemmer)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # damaged: the next `qabot index` rebuilds it from the texts
        _save(lexical, folder)
        return tuple(f"{folder.name}/{f}" for f in self.files)


class StoriesPart(Part[fingerprints.Fingerprints, fingerprints.Stack]):
    """Each article's word-shingle hashes, which decide whether two articles tell one story
    (fingerprints.py). Derived: rebuilt from the stored texts when lost, and built by the next
    `qabot index` for an index written before it existed (until then readers hash texts)."""

    name = "stories"
    label = "article fingerprints"
    files = (fingerprints.FILE,)
    derived = True

    def write(self, folder: Path, job: Write) -> int:
        return _save_prints(folder, _new_prints(job))

    def merge(self, folder: Path, job: Merge) -> int:
        """Kept articles keep their hashes; only a segment that lacks the part is hashed again,
        from its stored texts."""
        new = _new_prints(job)
        kept = np.setdiff1d(np.unique(job.rows.doc), [d for d, _, _ in new])
        found: list[tuple[int, int, np.ndarray]] = []
        for value in job.values(self):
            if value is not None:
                found += value.select(kept)
        have = np.array([d for d, _, _ in found], dtype=np.int64)
        lacking = np.setdiff1d(kept, have)
        if len(lacking):
            job.log(f"Taking the fingerprints of {len(lacking):,} articles from their stored passages "
                    "(nothing is re-embedded)…")
            found += _stored_prints(job, lacking)
        return _save_prints(folder, new + found)

    def load(self, paths: Sequence[Path], segment: Segment, build: Build,
             how: Reading) -> fingerprints.Fingerprints:
        try:
            return fingerprints.load(paths[0])
        except ValueError as err:
            raise Inconsistent(str(err)) from err

    def count(self, loaded: fingerprints.Fingerprints) -> int:
        return loaded.passage_count

    def stack(self, segments: Sequence[Loaded], deleted: Deleted, build: Build) -> fingerprints.Stack:
        # A deleted article's hashes stay in its segment's file: no question reaches it.
        return fingerprints.Stack([x.get(self) for x in segments])

    def upgrade(self, index_dir: Path, folder: Path, old: OldSegment, version: int,
                build: Build) -> tuple[str, ...] | None:
        """Formats 2 and 3 had no fingerprints: taken from the segment's stored passages (all of
        them, as its other parts hold them), so the upgrade stays one commit."""
        try:
            rows = read_rows(index_dir / old.files["rows"])
            catalog = Catalog(index_dir / old.files["passages"])
            try:
                found = _prints_of(rows, rows.doc, catalog.passages)
            finally:
                catalog.close()
        except (KeyError, OSError, ValueError, zipfile.BadZipFile, IndexDamaged):
            return None  # damaged: the next `qabot index` builds them in a full merge
        # One generation folder takes the parts of every upgraded segment: named by the segment.
        name = f"stories-{old.segment.first_id}.npz"
        fingerprints.save(fingerprints.build(found), folder, name)
        return (f"{folder.name}/{name}",)


class SentencesPart(Part[sentvecs.SentenceVectors, sentvecs.Stack]):
    """Each passage's sentence vectors (sentvecs.py). Derived: rebuilt from the stored texts with
    the index's own exported model when lost, or for an index written before they were stored
    (the next `qabot index`, in a full merge that re-reads every passage with the model; until
    then the answer layer scores sentences without their cosine)."""

    name = "sentences"
    label = "sentence vectors"
    files = (sentvecs.FILE,)
    derived = True

    def applies(self, build: Build) -> bool:
        return build.encoder is not None  # pooled by the ONNX export; an index without one has none

    def write(self, folder: Path, job: Write) -> int:
        return self._save(folder, job, self._new(job, _model(folder, job.build)))

    def merge(self, folder: Path, job: Merge) -> int:
        """Kept passages keep their vectors; only those of a segment that lacks the part are pooled
        again, the model reading their stored texts."""
        model = _model(folder, job.build)  # opened once, if at all, for new and kept passages
        new = self._new(job, model)
        kept = np.setdiff1d(job.rows.ids, [pid for pid, _ in new])
        found: list[tuple[int, sentvecs.Coded]] = []
        for value in job.values(self):
            if value is not None:
                found += value.select(kept)
        lacking = np.setdiff1d(kept, np.array([pid for pid, _ in found], dtype=np.int64))
        if len(lacking):
            job.log(f"Pooling the sentence vectors of {len(lacking):,} stored passages (the model reads "
                    "them once more; nothing else changes)…")
            embedder = model()
            started = time.monotonic()
            for i in range(0, len(lacking), 2_000):
                ids = lacking[i : i + 2_000].tolist()
                texts = [r.text for r in job.catalog.passages(ids)]
                found += _coded(ids, embedder.encode_pooled(texts)[1])
                done = i + len(ids)
                left = (time.monotonic() - started) / done * (len(lacking) - done)
                job.log(f"Pooled {done:,} of {len(lacking):,} passages"
                        + (f" (about {_minutes(left)} left)…" if done < len(lacking) else "."))
        return self._save(folder, job, new + found)

    def _new(self, job: Write, model: Callable[[], OnnxEmbedder]) -> list[tuple[int, sentvecs.Coded]]:
        """(passage id, coded sentences) of the batch's passages: as embedded, or pooled now."""
        ids = job.batch.ids.tolist()
        pooled = job.batch.sentences
        if pooled is None and ids:
            texts = [p.text for _, ps in job.batch.changes.articles for p in ps]
            pooled = model().encode_pooled(texts)[1]
        return _coded(ids, pooled or [])

    def _save(self, folder: Path, job: Write, passages: list[tuple[int, sentvecs.Coded]]) -> int:
        part = sentvecs.build(passages, job.build.model.dim)
        if not np.array_equal(part.ids, job.rows.ids):
            raise AssertionError(f"sentence vectors for {len(part.ids)} passages, the commit holds "
                                 f"{len(job.rows.ids)}: not committed")
        sentvecs.save(part, folder)
        return part.passage_count

    def load(self, paths: Sequence[Path], segment: Segment, build: Build,
             how: Reading) -> sentvecs.SentenceVectors:
        try:
            return sentvecs.load(paths[0], build.model.dim)
        except ValueError as err:
            raise Inconsistent(str(err)) from err

    def count(self, loaded: sentvecs.SentenceVectors) -> int:
        return loaded.passage_count

    def stack(self, segments: Sequence[Loaded], deleted: Deleted, build: Build) -> sentvecs.Stack:
        # A deleted passage's vectors stay in its segment's file: no result shows it.
        return sentvecs.Stack([x.get(self) for x in segments])


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _model(folder: Path, build: Build) -> Callable[[], OnnxEmbedder]:
    """The index's exported model (in the index folder, the parent of the generation folder
    being written), opened on the first call and kept for the next: its pooling session takes
    ~1 s to open."""
    @functools.cache
    def opened() -> OnnxEmbedder:
        from .embed import OnnxEmbedder  # onnxruntime: only when vectors must be pooled here

        assert build.encoder is not None
        return OnnxEmbedder(folder.parent / build.encoder)

    return opened


def _coded(ids: Sequence[int], pooled: Sequence[sentvecs.Pooled]) -> list[tuple[int, sentvecs.Coded]]:
    return [(pid, sentvecs.Coded.from_pooled(p)) for pid, p in zip(ids, pooled, strict=True)]


def _new_prints(job: Write) -> list[tuple[int, int, np.ndarray]]:
    """(article number, passages, hashes) of the batch's articles, numbered as the catalog numbers
    them (catalog.rows_of)."""
    return [(num, len(ps), fingerprints.of_text(p.text for p in ps))
            for num, (_, ps) in enumerate(job.batch.changes.articles, start=job.next_article)]


def _stored_prints(job: Merge, docs: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """The fingerprints of these kept articles, from their stored passages."""
    return _prints_of(job.rows, docs, job.catalog.passages)


def _prints_of(rows: Rows, docs: np.ndarray,
               read: Callable[[list[int]], list[PassageRecord]]) -> list[tuple[int, int, np.ndarray]]:
    """The fingerprints of these articles of `rows`, their passages' texts read with `read` (in id
    order, which is text order: an article's passages get consecutive ids)."""
    at = np.flatnonzero(np.isin(rows.doc, docs))
    texts: dict[int, list[str]] = {}
    for i in range(0, len(at), 20_000):
        chunk = at[i : i + 20_000]
        for doc, rec in zip(rows.doc[chunk].tolist(), read(rows.ids[chunk].tolist()), strict=True):
            texts.setdefault(doc, []).append(rec.text)
    return [(doc, len(ts), fingerprints.of_text(ts)) for doc, ts in texts.items()]


def _save_prints(folder: Path, articles: list[tuple[int, int, np.ndarray]]) -> int:
    prints = fingerprints.build(articles)
    fingerprints.save(prints, folder, fingerprints.FILE)
    return prints.passage_count


def _params(build: Build) -> bm25.Params:
    if build.lexical is None:
        raise ValueError("no BM25 parameters in this build")
    return build.lexical.params


def _save(lexical: bm25.Lexical, folder: Path) -> int:
    bm25.save(lexical, folder)
    return len(lexical.ids)


def required(loaded: Loaded, part: Part[T, Any]) -> T:
    """What a part every segment has (catalog, vectors) loaded of this segment."""
    value = loaded.get(part)
    if value is None:
        raise ValueError(f"a segment without its {part.label} part")
    return value


CATALOG = CatalogPart()
VECTORS = VectorsPart()
BM25 = BM25Part()
STORIES = StoriesPart()
SENTENCES = SentencesPart()
# Every segment is written with these parts, in this order.
PARTS: tuple[Part[Any, Any], ...] = (CATALOG, VECTORS, BM25, STORIES, SENTENCES)


def named(name: str) -> Part[Any, Any] | None:
    """The registered part of this name; None for one this qabot doesn't know."""
    return next((p for p in PARTS if p.name == name), None)


def missing(segment: Segment, build: Build) -> list[Part[Any, Any]]:
    """The registered parts this segment should have and lacks."""
    return [p for p in PARTS if p.applies(build) and segment.files_of(p.name) is None]


def check_file(index_dir: Path, name: str, sizes: Mapping[str, int]) -> str | None:
    """What is wrong with one data file ("is missing", "is truncated"...), None when nothing is
    found: its size against the one recorded, else what its header says."""
    try:
        size = (index_dir / name).stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return "is missing"
    if name in sizes and size != sizes[name]:
        return f"has {size} bytes where {sizes[name]} were written"
    return _header_problem(index_dir / name, size)


def _least_vector_bytes(segment: Segment, dim: int) -> int:
    """A lower bound on the size of a vectors file (for an index from before sizes were
    recorded): an id and the smallest code of each vector."""
    code = {"none": 4 * dim, "float16": 2 * dim, "sq8": dim}.get(segment.layout.codec, max(1, dim // 8))
    return segment.passage_count * (8 + code)


def _header_problem(path: Path, size: int) -> str | None:
    """What a file's header says is wrong with it (for an index written before sizes were
    recorded); None when it looks whole."""
    if size == 0:
        return "is empty"
    if path.suffix == ".sqlite":
        with path.open("rb") as f:
            head = f.read(100)
        if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
            return "is not an SQLite file"
        page = int.from_bytes(head[16:18], "big")
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], "big")
        # the page count is valid when "version-valid-for" matches the change counter
        if head[92:96] == head[24:28] and pages * page > size:
            return f"is truncated ({size} of {pages * page} bytes)"
    elif path.suffix == ".npz":
        try:
            with zipfile.ZipFile(path) as z:
                ends = [i.header_offset + 30 + len(i.filename) + i.compress_size for i in z.infolist()]
        except zipfile.BadZipFile:
            return "is not a whole .npz file"
        if ends and max(ends) > size:
            return "is truncated"
    return None
