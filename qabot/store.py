"""The commit protocol of the index folder: generations made current by manifest.json.

Layout (everything a reader needs is named by the manifest, so the folder describes itself):

    manifest.json              the commit point: replaced last, atomically, with os.replace
    gen-000007/                a generation's folder: its manifest copy and what it wrote
    gen-000007/vectors.faiss   a segment: flat or IVF FAISS index keyed by passage id (see
                               vectors.py; its type and codec are the segment's "vectors_index"),
    gen-000007/passages.sqlite the catalog of its articles and passages, with texts, and
    gen-000007/rows.npz        per passage its article number and day (see catalog.py),
    gen-000007/bm25.npz        its BM25 term frequencies, + bm25-vocab.json (see bm25.py)
    gen-000009/deleted.npz     what of the older segments is no longer live (catalog.Deleted)
    encoder-<hash>/            the model exported to ONNX, shared by generations of one model
    seeds-cache.sqlite         signatures.py's stat signatures of the seed files: advisory,
                               outside this protocol (not named by the manifest, never collected)
    .lock                      held by whoever writes

A generation is a list of segments over disjoint ranges of passage ids, plus a deletion list.
A commit of a few new or changed articles writes one small segment of just those and the new
deletion list (`commit_segment`): its cost follows what changed, not the size of the index.
Segments after the first are folded into one by `commit_merged_tail` (costing what they hold);
a full merge (`commit`: also a rebuild, or a layout change) writes every live passage as one.
Segments are never changed once written, so a reader keeps those it has loaded (load_snapshot's
`reuse`). A crash before the manifest's rename leaves the previous manifest, and every file it
names, untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25, vectors
from .catalog import (
    ArticleRecord,
    Articles,
    Catalog,
    Changes,
    Deleted,
    PassageRecord,
    Passages,
    Rows,
    Stack,
    read_deleted,
    read_rows,
    write_deleted,
    write_rows,
    write_segment,
)
from .catalog import write as write_catalog
from .errors import (
    IndexDamaged,
    IndexFolderError,
    IndexIncompatible,
    IndexLocked,
    IndexNotFound,
    IndexOutdated,
    ManifestDamaged,
)
from .manifest import (
    FORMAT,
    FORMAT_VERSION,
    Build,
    Malformed,
    Manifest,
    Segment,
    from_json,
    from_json_v2,
    to_json,
)
from .vectors import Layout

MANIFEST = "manifest.json"
VECTORS, DB, ROWS, DELETED = "vectors.faiss", "passages.sqlite", "rows.npz", "deleted.npz"


def load_manifest(index_dir: Path) -> Manifest | None:
    """The committed manifest, or None when the folder holds no index yet.

    Raises ManifestDamaged when the file can't be read as a qabot manifest (`qabot index`
    then recovers the newest intact generation, see recover()), IndexOutdated when it has
    another format version, IndexIncompatible when it is another program's.
    """
    return _parse_manifest(index_dir / MANIFEST, index_dir)


def _parse_manifest(path: Path, index_dir: Path) -> Manifest | None:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        check_index_folder(index_dir)
        raise
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text") from None
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError:
        raise _damaged(path, "not valid JSON") from None
    if not isinstance(manifest, dict):
        raise _damaged(path, "not a JSON object")
    if manifest.get("format") != FORMAT:
        raise IndexIncompatible(
            f"{index_dir} does not hold a qabot index; point --index at another folder "
            "or run `qabot index --rebuild` to replace it"
        )
    version = manifest.get("format_version")
    if version in (1, 2):
        raise IndexOutdated(
            f"the index at {index_dir} was written by an older qabot; run `qabot index --index "
            f"{index_dir}` to upgrade it in place (nothing is re-embedded)", version)
    if version != FORMAT_VERSION:
        raise IndexOutdated(
            f"index at {index_dir} has format version {version}, this qabot reads "
            f"{FORMAT_VERSION}; run `qabot index --rebuild --index {index_dir}`", version)
    try:
        return from_json(manifest)
    except Malformed as err:
        raise _damaged(path, str(err)) from None


def read_old_manifest(index_dir: Path) -> dict[str, Any]:
    """The raw JSON of a manifest of another format version (for upgrade() only)."""
    data: dict[str, Any] = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    return data


def _damaged(path: Path, why: str) -> ManifestDamaged:
    return ManifestDamaged(
        f"{path} is damaged ({why}); run `qabot index` to recover the newest intact generation "
        "(or `qabot index --rebuild` to start again from the seeds)"
    )


def check_compatible(manifest: Manifest, index_dir: Path, model: str | None) -> None:
    """Refuse an index built with another model, saying what to run (load_manifest has
    already refused another format version)."""
    built = manifest.build.model.name
    if model is not None and built != model:
        raise IndexIncompatible(
            f"index at {index_dir} was built with model {built!r} but the settings say "
            f"{model!r}; run `qabot index --rebuild` (or set the model back)"
        )


@dataclass(frozen=True)
class Loaded:
    """One segment as read from disk. Its files never change, so the next snapshot of a reader
    reuses it rather than reading it again."""

    segment: Segment
    index: Any  # a FAISS index (see vectors.py)
    catalog: Catalog
    rows: Rows
    lexical: bm25.Lexical | None


@dataclass
class Snapshot:
    """One committed generation seen as one index: every segment's live passages, vectors and
    BM25 in RAM (or memory-mapped), texts on disk."""

    manifest: Manifest
    vectors: vectors.Stack
    catalog: Stack
    stamp: tuple[int, int]  # (mtime_ns, size) of the manifest this came from
    lexical: bm25.Stack | None  # None for an index whose BM25 part is missing
    loaded: tuple[Loaded, ...]
    deleted: Deleted

    @property
    def layout(self) -> Layout:
        """How its first segment's vectors are indexed (the manifest's record)."""
        return self.manifest.layout

    @property
    def rows(self) -> Rows:
        """The live passages' rows, sorted by id."""
        return self.catalog.rows

    @property
    def passages(self) -> Passages:
        return Passages(self.catalog)

    @property
    def articles(self) -> Articles:
        return Articles(self.catalog)


def load_snapshot(
    index_dir: Path, model: str | None = None, tokens: bool = False, writable: bool = False,
    reuse: Snapshot | None = None,
) -> Snapshot:
    """Load the committed generation; retries if a writer swaps generations underneath us.

    `tokens` also loads the BM25 parts' per-passage tokens, and `writable` reads the first
    segment's vectors into RAM rather than memory-mapping them: both only for the indexer.
    Segments `reuse` (a reader's previous snapshot) has loaded are taken from it.
    """
    for attempt in range(5):
        manifest = load_manifest(index_dir)
        if manifest is None:
            raise IndexNotFound(f"no index in {index_dir}; run `qabot index` to build it")
        check_compatible(manifest, index_dir, model)
        stamp = manifest_stamp(index_dir)
        problems = check_generation(index_dir, manifest)
        if problems and _current_generation(index_dir) == manifest.generation:
            raise IndexDamaged(f"the index in {index_dir} is damaged ({first_problem(problems)}); "
                               "run `qabot index` to repair it")
        known = {} if reuse is None or tokens or writable else {x.segment: x for x in reuse.loaded}
        try:
            if problems:
                raise FileNotFoundError(first_problem(problems))
            loaded = tuple(known.get(seg) or _load_segment(index_dir, manifest, seg, tokens,
                                                           writable and n == 0)
                           for n, seg in enumerate(manifest.segments))
            deleted = read_deleted(index_dir / manifest.deleted) if manifest.deleted else Deleted.empty()
        except FileNotFoundError:
            # A writer committed and removed this generation between our two reads: retry.
            time.sleep(0.05 * (attempt + 1))
            continue
        except _UNREADABLE as err:  # what FAISS, numpy, zipfile and json say of a damaged file
            raise IndexDamaged(f"the index in {index_dir} is damaged (a file of generation "
                               f"{manifest.generation} can't be read: {type(err).__name__}); "
                               "run `qabot index` to repair it") from None
        return _snapshot(index_dir, manifest, loaded, deleted, stamp)
    raise IndexDamaged(f"the index in {index_dir} keeps changing or lost its files; retry, "
                       "or run `qabot index` to repair it")


def _load_segment(index_dir: Path, manifest: Manifest, seg: Segment, tokens: bool,
                  writable: bool) -> Loaded:
    """Read one segment's files, checking they agree with each other and the manifest."""
    index = vectors.read(index_dir / seg.vectors, seg.layout, for_update=writable)
    rows = read_rows(index_dir / seg.rows)
    lexical = None
    params = manifest.build.lexical
    if params is not None and seg.matrix is not None and seg.vocab is not None:
        lexical = bm25.load(index_dir / seg.matrix, index_dir / seg.vocab, params.params.stemmer,
                            with_tokens=tokens)
    dim, count = manifest.build.model.dim, seg.passage_count
    if index.d != dim or index.ntotal != count or len(rows.ids) != count:
        raise IndexIncompatible(
            f"index at {index_dir} is inconsistent ({seg.vectors}: {index.d}-d x {index.ntotal}, "
            f"{len(rows.ids)} rows, manifest {dim}-d x {count}); run `qabot index --rebuild`")
    if lexical is not None and len(lexical.ids) != count:
        raise IndexIncompatible(
            f"index at {index_dir} is inconsistent (BM25 has {len(lexical.ids)} passages, "
            f"the manifest {count}); run `qabot index --rebuild`")
    return Loaded(seg, index, Catalog(index_dir / seg.passages), rows, lexical)


def _snapshot(index_dir: Path, manifest: Manifest, loaded: Sequence[Loaded], deleted: Deleted,
              stamp: tuple[int, int]) -> Snapshot:
    """The one view of a generation's segments, deleted passages left out."""
    stack = vectors.Stack([vectors.Part(x.index, x.segment.layout, x.segment.first_id) for x in loaded],
                          deleted.passages)
    catalog = Stack([x.catalog for x in loaded], [x.rows for x in loaded], deleted)
    lexical = None
    parts = [x.lexical for x in loaded]
    if manifest.build.lexical is not None and parts and all(p is not None for p in parts):
        lexical = bm25.Stack.of([p for p in parts if p is not None], deleted.passages,
                                manifest.build.lexical.params)
    if stack.ntotal != manifest.passage_count or len(catalog.rows.ids) != manifest.passage_count:
        raise IndexIncompatible(
            f"index at {index_dir} is inconsistent ({stack.ntotal} live vectors, "
            f"{len(catalog.rows.ids)} rows, manifest {manifest.passage_count}); "
            "run `qabot index --rebuild`")
    return Snapshot(manifest, stack, catalog, stamp, lexical, tuple(loaded), deleted)


def open_catalog(index_dir: Path, manifest: Manifest) -> Stack:
    """The live catalog of a committed generation alone (what `qabot index` diffs against);
    IndexDamaged when a file of it can't be read."""
    try:
        parts = [Catalog(index_dir / s.passages) for s in manifest.segments]
        rows = [read_rows(index_dir / s.rows) for s in manifest.segments]
        deleted = read_deleted(index_dir / manifest.deleted) if manifest.deleted else Deleted.empty()
    except (OSError, *_UNREADABLE) as err:
        raise IndexDamaged(f"the catalog in {index_dir} can't be read ({type(err).__name__})") from None
    return Stack(parts, rows, deleted)


# FAISS raises RuntimeError on a short read; numpy ValueError/EOFError; json a ValueError.
_UNREADABLE = (RuntimeError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
               sqlite3.DatabaseError)


def _current_generation(index_dir: Path) -> int | None:
    """The generation manifest.json names now (a file gone from the one we read may only mean
    writers committed twice since: then it differs)."""
    try:
        manifest = load_manifest(index_dir)
    except IndexIncompatible:
        return None
    return None if manifest is None else manifest.generation


def manifest_stamp(index_dir: Path) -> tuple[int, int]:
    """A cheap fingerprint of the committed manifest, to notice a new generation."""
    try:
        st = (index_dir / MANIFEST).stat()
    except (FileNotFoundError, NotADirectoryError):
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def commit(
    index_dir: Path,
    build: Build,
    index: Any,
    layout: vectors.Layout,
    changes: Changes,
    base: Snapshot | None = None,
    lexical: bm25.Lexical | None = None,
) -> Manifest:
    """Write a new generation of ONE segment — every live passage of `base` (the current one,
    None for a fresh index) with `changes` applied — and make it current; returns the committed
    manifest. `index` holds the vectors of the result, `lexical` (when given) its BM25 part.

    This is a merge: whatever segments and deletions `base` had are folded into the new one.
    """
    first = base.manifest.next_article if base is not None else 1

    def write(gen_dir: Path, generation: int) -> Manifest:
        rows, articles = write_catalog(gen_dir / DB, changes, base.catalog if base is not None else None,
                                       first)
        segment = _write_segment(gen_dir, index, rows, articles, 0, layout, lexical)
        manifest = Manifest(
            build=build, generation=generation, passage_count=len(rows.ids), article_count=articles,
            segments=(segment,), next_article=first + len(changes.articles),
            sizes=_sizes(index_dir, segment.files), committed_at=_now())
        _seal(index_dir, gen_dir, manifest, segment.files)
        return manifest

    return _committing(index_dir, write)


def commit_segment(
    index_dir: Path,
    build: Build,
    base: Snapshot,
    index: Any,
    changes: Changes,
    lexical: bm25.Lexical | None,
    deleted: Deleted,
) -> Manifest:
    """Write a new generation that is `base`'s segments plus one small segment of the articles
    `changes` writes (vectors in `index`, BM25 in `lexical`) and the deletion list `deleted`
    (base's, plus what this commit replaces or removes); make it current. What is written costs
    what changed, whatever the size of the index. Returns the committed manifest."""
    if changes.removed or changes.titles:
        raise ValueError("a segment commit removes through `deleted`, and can't retitle")
    def write(gen_dir: Path, generation: int) -> Manifest:
        segments, written = base.manifest.segments, []
        if changes.articles:
            rows, articles = write_segment(gen_dir / DB, changes, base.manifest.next_article)
            segment = _write_segment(gen_dir, index, rows, articles, int(rows.ids.min()),
                                     vectors.Layout(), lexical)
            segments, written = (*segments, segment), segment.files
        return _seal_over(index_dir, gen_dir, generation,
                          replace(base.manifest, build=build,
                                  next_article=base.manifest.next_article + len(changes.articles)),
                          segments, deleted, written)

    return _committing(index_dir, write)


def commit_merged_tail(index_dir: Path, base: Snapshot, start: int) -> Manifest:
    """Write a new generation that is `base` with its segments from `start` on folded into one
    (exact flat vectors, deleted passages dropped, article numbers and passage ids kept) and make
    it current. Costs what those segments hold: the ones before `start` are not touched.
    `base` must be loaded with its BM25 tokens."""
    if not 0 < start < len(base.loaded) - 1:
        raise ValueError(f"nothing to fold from segment {start} of {len(base.loaded)}")
    tail = base.loaded[start:]
    first = tail[0].segment.first_id

    def write(gen_dir: Path, generation: int) -> Manifest:
        parts = [vectors.Part(x.index, x.segment.layout, x.segment.first_id) for x in tail]
        index = vectors.Stack(parts, base.deleted.passages).merged(vectors.Layout())
        catalog = Stack([x.catalog for x in tail], [x.rows for x in tail], base.deleted)
        rows, articles = write_catalog(gen_dir / DB, Changes(), catalog, base.manifest.next_article)
        lexical = None
        lexicals = [x.lexical for x in tail]
        if base.manifest.build.lexical is not None and all(x is not None for x in lexicals):
            combined = bm25.combine([x for x in lexicals if x is not None])
            lexical = bm25.build([(int(i), "") for i in rows.ids], base.manifest.build.lexical.params,
                                 combined)
        segment = _write_segment(gen_dir, index, rows, articles, first, vectors.Layout(), lexical)
        # What stays deleted: what lies in the segments kept as they are.
        folded = np.concatenate([x.rows.doc for x in tail])
        deleted = Deleted(base.deleted.articles[~np.isin(base.deleted.articles, folded)],
                          base.deleted.passages[base.deleted.passages < first])
        segments = (*base.manifest.segments[:start], segment)
        return _seal_over(index_dir, gen_dir, generation, base.manifest, segments, deleted,
                          segment.files)

    return _committing(index_dir, write)


def _seal_over(
    index_dir: Path, gen_dir: Path, generation: int, base: Manifest, segments: Sequence[Segment],
    deleted: Deleted, written: Sequence[str],
) -> Manifest:
    """Seal a generation that is `base` with these segments, less `deleted` (written into its
    folder beside `written`, this generation's new files): its counts are the live ones, and the
    sizes of the files it keeps are those `base` recorded. Returns its manifest."""
    files = list(written)
    deleted_file = None
    if len(deleted.passages) or len(deleted.articles):
        write_deleted(gen_dir / DELETED, deleted)
        deleted_file = f"{gen_dir.name}/{DELETED}"
        files.append(deleted_file)
    named = {f for s in segments for f in s.files}
    kept = {f: n for f, n in base.sizes.items() if f in named}
    manifest = replace(
        base, generation=generation, segments=tuple(segments), deleted=deleted_file,
        passage_count=sum(s.passage_count for s in segments) - len(deleted.passages),
        article_count=sum(s.article_count for s in segments) - len(deleted.articles),
        sizes={**kept, **_sizes(index_dir, files)}, committed_at=_now())
    _seal(index_dir, gen_dir, manifest, files)
    return manifest


def _committing(index_dir: Path, write: Callable[[Path, int], Manifest]) -> Manifest:
    """Make current what `write(folder, number)` writes as the next generation, and return its
    manifest. `write` writes and fsyncs every file, its folder's manifest copy last (_seal);
    then the rename of manifest.json is the commit. A failure before it (disk full, Ctrl-C...)
    removes the half-written folder and leaves the previous generation current."""
    previous, generation, gen_dir = _next_generation(index_dir)
    try:
        manifest = write(gen_dir, generation)
    except BaseException:
        shutil.rmtree(gen_dir, ignore_errors=True)
        raise
    _write_json_durably(index_dir / MANIFEST, manifest)
    _collect_garbage(index_dir, manifest, previous)
    return manifest


def _write_segment(gen_dir: Path, index: Any, rows: Rows, articles: int, first_id: int,
                   layout: vectors.Layout, lexical: bm25.Lexical | None) -> Segment:
    """Write a segment's vectors, rows and BM25 part beside the catalog just written (which
    gave `rows` and the article count), checking vectors and rows agree; returns its record."""
    gen = gen_dir.name
    vectors.write(index, gen_dir / VECTORS)
    write_rows(gen_dir / ROWS, rows)
    if len(rows.ids) != index.ntotal:
        raise AssertionError(f"{index.ntotal} vectors for {len(rows.ids)} passages: not committed")
    segment = Segment(first_id=first_id, passage_count=len(rows.ids), article_count=articles,
                      vectors=f"{gen}/{VECTORS}", passages=f"{gen}/{DB}", rows=f"{gen}/{ROWS}",
                      layout=layout)
    return segment if lexical is None else _with_lexical(segment, lexical, gen_dir)


def _next_generation(index_dir: Path) -> tuple[Manifest | None, int, Path]:
    """The committed manifest (None: none, or a damaged one this commit replaces), and the
    number and new, empty folder of the next generation."""
    try:
        previous = load_manifest(index_dir)
    except IndexIncompatible:  # damaged, older or another program's: this commit replaces it
        previous = None
    # Past every generation on disk, not only the previous manifest's: after a damaged
    # manifest the folders may be further along than anything it could tell us.
    done = previous.generation if previous is not None else 0
    named = previous.folders if previous is not None else set()
    for number in _generations(index_dir):
        name = f"gen-{number:06d}"
        if previous is not None and number > done and name not in named:
            shutil.rmtree(index_dir / name, ignore_errors=True)  # a run that died before commit
    generation = max([done, *_generations(index_dir)]) + 1
    gen_dir = index_dir / f"gen-{generation:06d}"
    gen_dir.mkdir(parents=True)
    return previous, generation, gen_dir


def _with_lexical(segment: Segment, lexical: bm25.Lexical, gen_dir: Path) -> Segment:
    """The segment with its BM25 part, written into its folder."""
    names = bm25.save(lexical, gen_dir)
    return replace(segment, matrix=f"{gen_dir.name}/{names['matrix']}",
                   vocab=f"{gen_dir.name}/{names['vocab']}")


def _sizes(index_dir: Path, files: Sequence[str]) -> dict[str, int]:
    """What check_generation compares: a truncated file shows at a stat()."""
    return {f: (index_dir / f).stat().st_size for f in files}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _seal(index_dir: Path, gen_dir: Path, manifest: Manifest, written: Sequence[str]) -> None:
    """fsync what this generation wrote, then put its manifest copy in its folder: the folder
    then describes itself, and a damaged manifest.json can be recovered from it."""
    for name in written:
        fsync_path(index_dir / name)
    _write_json_durably(gen_dir / MANIFEST, manifest)


def _write_json_durably(path: Path, manifest: Manifest) -> None:
    """Write to a temporary name, fsync, rename over `path`, fsync the folder: all or nothing."""
    tmp = path.parent / f".{path.name}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(to_json(manifest), f, indent=1, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def _generations(index_dir: Path) -> list[int]:
    """The numbers of the gen-NNNNNN folders in the index folder."""
    return [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit() and p.is_dir()]


def check_generation(index_dir: Path, manifest: Manifest) -> dict[str, str]:
    """What is wrong with the files this manifest names: file -> "is missing"... (empty:
    nothing found). Cheap: it checks that they are there and whole, not every byte."""
    problems: dict[str, str] = {}
    sizes = manifest.sizes
    least = {s.vectors: _least_vector_bytes(s, manifest.build.model.dim) for s in manifest.segments}
    for name in manifest.files:
        try:
            size = (index_dir / name).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            problems[name] = "is missing"
            continue
        if name in sizes and size != sizes[name]:
            problems[name] = f"has {size} bytes where {sizes[name]} were written"
        elif why := _header_problem(index_dir / name, size):
            problems[name] = why
        elif name in least and name not in sizes and size < least[name]:
            problems[name] = "is truncated"
    return problems


def first_problem(problems: Mapping[str, str]) -> str:
    """"gen-000007/bm25.npz is missing": the first of check_generation's findings, for a message."""
    name, why = next(iter(problems.items()))
    return f"{name} {why}"


def drop_lexical(index_dir: Path, manifest: Manifest) -> Manifest:
    """Make current the same generation without its (damaged) BM25 part, which the caller then
    rebuilds from the stored passages (meanwhile a reader answers by meaning only, and a BM25
    or hybrid search says to run `qabot index`). The caller holds the write lock."""
    gone = {f for s in manifest.segments for f in s.lexical_files}
    if not gone:
        return manifest
    manifest = replace(manifest, segments=tuple(s.without_lexical() for s in manifest.segments),
                       sizes={k: v for k, v in manifest.sizes.items() if k not in gone})
    _write_json_durably(index_dir / MANIFEST, manifest)
    return manifest


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


def recover(index_dir: Path) -> Manifest | None:
    """Make the newest intact generation current again, from the copy of its manifest it holds;
    returns that manifest, or None when no generation is whole. The caller holds the write lock.

    "Newest" may be a generation whose run died just before its commit: its files were all
    written and fsynced before its copy was, so it is as whole as a committed one.
    """
    for number in sorted(_generations(index_dir), reverse=True):
        try:
            manifest = _parse_manifest(index_dir / f"gen-{number:06d}" / MANIFEST, index_dir)
        except IndexIncompatible:  # damaged, another format version or another program's
            continue
        if manifest is None or manifest.generation != number or check_generation(index_dir, manifest):
            continue
        _write_json_durably(index_dir / MANIFEST, manifest)
        return manifest
    return None


def upgrade(index_dir: Path) -> Manifest | None:
    """Bring an index an older qabot wrote to this format, keeping every vector: nothing is
    re-embedded. None when there is nothing to do. The caller holds the write lock."""
    try:
        old = read_old_manifest(index_dir)
    except FileNotFoundError:
        return None
    if old.get("format") != FORMAT:
        return None
    if old.get("format_version") == 1:
        return _upgrade_v1(index_dir, old)
    if old.get("format_version") == 2:
        return _upgrade_v2(index_dir, old)
    return None


def _upgrade_v1(index_dir: Path, old: dict[str, Any]) -> Manifest:
    """Format 1 (one exact FAISS file, passages.jsonl, articles in the manifest) as one segment."""
    index = vectors.read(index_dir / old["vectors"], vectors.Layout(), for_update=True)
    by_doc: dict[str, list[PassageRecord]] = {}
    with (index_dir / old["passages"]).open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            p = PassageRecord(int(d["id"]), d["doc_id"], int(d["start"]), int(d["end"]), d["text"])
            by_doc.setdefault(p.doc_id, []).append(p)
    changes = Changes()
    for doc, meta in sorted(old["articles"].items()):
        passages = sorted(by_doc.get(doc, []), key=lambda p: meta["ids"].index(p.id))
        changes.articles.append(
            (ArticleRecord(doc, meta["hash"], meta.get("date"), meta["title"]), passages))
    # BM25's files are not carried over: the next indexing run rebuilds them from the texts.
    old.setdefault("next_id", max((p.id for ps in by_doc.values() for p in ps), default=-1) + 1)
    build = from_json({**old, "generation": 0, "passage_count": 0, "article_count": 0,
                       "segments": [], "next_article": 1}).build
    return commit(index_dir, build, index, vectors.Layout(), changes)


def _upgrade_v2(index_dir: Path, old: dict[str, Any]) -> Manifest:
    """Format 2 (one generation, BM25 weights computed at commit time) as a generation of one
    segment: its files stay where they are; only the BM25 part is rewritten, as term
    frequencies, from the tokens it stored (nothing is tokenized or embedded again)."""
    try:
        db = sqlite3.connect(f"file:{index_dir / old['passages']}?mode=ro", uri=True)
        try:
            top = db.execute("SELECT max(num) FROM articles").fetchone()[0]
        finally:
            db.close()
        v2 = from_json_v2(old, int(top or 0) + 1)
    except (Malformed, KeyError, TypeError, sqlite3.DatabaseError) as err:
        raise ManifestDamaged(f"the index at {index_dir} (format 2) can't be upgraded ({err}); "
                              "run `qabot index --rebuild`") from None
    def write(gen_dir: Path, generation: int) -> Manifest:
        segment = v2.manifest.segments[0]
        lexical = None
        if v2.matrix and v2.vocab and v2.manifest.build.lexical is not None:
            try:
                lexical = bm25.from_v2(index_dir / v2.matrix, index_dir / v2.vocab,
                                       v2.manifest.build.lexical.params.stemmer)
            except (OSError, *_UNREADABLE):
                lexical = None  # damaged: the next `qabot index` rebuilds it from the texts
        if lexical is not None:
            segment = _with_lexical(segment, lexical, gen_dir)
        return _seal_over(index_dir, gen_dir, generation, v2.manifest, (segment,), Deleted.empty(),
                          segment.lexical_files)

    manifest = _committing(index_dir, write)
    # The format-2 BM25 files are no longer named; the rest of its folder is (GC keeps it).
    for name in (v2.matrix, v2.vocab):
        if name:
            (index_dir / name).unlink(missing_ok=True)
    return manifest


def _collect_garbage(index_dir: Path, current: Manifest, previous: Manifest | None) -> None:
    """Remove generations and encoders no longer named by the current or previous manifest.

    The previous generation is kept so a reader that read the old manifest a moment ago can
    still open its files.
    """
    keep = {*current.folders, current.build.encoder}
    if previous:
        keep |= {*previous.folders, previous.build.encoder}
    for child in index_dir.iterdir():
        name = child.name
        if child.is_dir() and name not in keep and (
            name.startswith("gen-") or name.startswith("encoder-") or name.startswith(".tmp-")
        ):
            shutil.rmtree(child, ignore_errors=True)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (so a rename or new entry survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_index_folder(index_dir: Path) -> None:
    """Refuse an index path that can't be a folder, saying what to do."""
    for path in (index_dir, *index_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise IndexFolderError(
                    f"{path} is a file, not a folder, so {index_dir} can't hold an index; "
                    "point --index / QABOT_INDEX at a folder")
            return


class WriteLock:
    """Exclusive lock on an index folder for writers; waits (saying so) unless told not to."""

    def __init__(self, index_dir: Path, wait: bool = True, notify: Any = None) -> None:
        from filelock import FileLock

        check_index_folder(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(index_dir / ".lock"))
        self._wait = wait
        self._notify = notify
        self._dir = index_dir

    def __enter__(self) -> WriteLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if not self._wait:
                raise IndexLocked(
                    f"another qabot is writing the index in {self._dir}; try again when it ends"
                ) from None
            if self._notify:
                self._notify(f"Another qabot is writing the index in {self._dir}; waiting for it…")
            self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
