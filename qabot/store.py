"""The index folder's commit protocol and its one writer: generations made current by manifest.json.

Layout (everything a reader needs is named by the manifest, so the folder describes itself):

    manifest.json              the commit point: replaced last, atomically, with os.replace
    gen-000007/                a generation's folder: its manifest copy and what it wrote,
                               usually one segment: the files of each of its parts (parts.py):
    gen-000007/passages.sqlite   catalog: articles and passages with texts, and
    gen-000007/rows.npz          per passage its article number and day (catalog.py)
    gen-000007/vectors.faiss     vectors: flat or IVF FAISS index keyed by passage id (vectors.py;
                                 its type and codec are the segment's "vectors_index")
    gen-000007/bm25.npz          bm25: term frequencies, + bm25-vocab.json (bm25.py)
    gen-000009/deleted.npz     what of the older segments is no longer live (catalog.Deleted)
    encoder-<hash>/            the model exported to ONNX, shared by generations of one model
    seeds-cache.sqlite         signatures.py's stat signatures of the seed files: advisory,
                               outside this protocol (not named by the manifest, never collected)
    .lock                      held by the writer

A generation is a list of segments over disjoint ranges of passage ids, plus a deletion list.
Segments are never changed once written, so a reader keeps those it has loaded (load_snapshot's
`reuse`). Nothing here names a part's files: the commits, the loader, the checker, garbage
collection and the upgrade go through parts.PARTS.

Writing goes through `open_writer(settings)`, a context manager (`Writer`): entering takes the
write lock and makes the index one to build on (a damaged manifest.json recovered from the newest
intact generation, an older format upgraded in place, a damaged generation repaired). Its commits:

    add()          a few new or changed articles as one small segment, and the new deletion
                   list: what is written costs what changed, not the size of the index
    merge_small()  the segments after the first folded into one (costing what they hold)
    merge()        every live passage as one segment (also a rebuild, or a layout change)

Each writes its new files into a new generation's folder, fsyncs them, seals the folder with a
copy of its manifest, and only then replaces manifest.json: a crash at any point before that
rename leaves the previous manifest, and every file it names, untouched.
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
from typing import Any, TypeVar, cast

import numpy as np

from . import bm25, parts, vectors
from .catalog import (
    ArticleRecord,
    Articles,
    Changes,
    Deleted,
    PassageRecord,
    Passages,
    Rows,
    Stack,
    deleting,
    read_deleted,
    rows_of,
    write_deleted,
)
from .config import Settings, VectorSettings
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
    Files,
    Malformed,
    Manifest,
    Old,
    Segment,
    from_json,
    from_json_v2,
    from_json_v3,
    to_json,
)
from .parts import Batch, Inconsistent, Loaded, Merge, Reading, Write
from .sentvecs import Pooled
from .vectors import Layout

MANIFEST = "manifest.json"
DELETED = "deleted.npz"
UPGRADABLE = (1, 2, 3)  # older format versions upgrade() brings to this one in place
S = TypeVar("S")
Log = Callable[[str], None]


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
    if version in UPGRADABLE:
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
    return _read_json(index_dir / MANIFEST)


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
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


@dataclass
class Snapshot:
    """One committed generation seen as one index: every segment's live passages, vectors and
    BM25 in RAM (or memory-mapped), texts on disk. Each part's `stack` is what readers search."""

    manifest: Manifest
    stamp: tuple[int, int]  # (mtime_ns, size) of the manifest this came from
    loaded: tuple[Loaded, ...]
    deleted: Deleted
    stacks: Mapping[str, object]  # part name -> what its stack() gave

    def stack(self, part: parts.Part[Any, S]) -> S:
        """What `part` gives readers of this generation."""
        return cast(S, self.stacks[part.name])

    @property
    def vectors(self) -> vectors.Stack:
        return self.stack(parts.VECTORS)

    @property
    def catalog(self) -> Stack:
        return self.stack(parts.CATALOG)

    @property
    def lexical(self) -> bm25.Stack | None:
        """None for an index whose BM25 part is missing."""
        return self.stack(parts.BM25)

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
    index_dir: Path, model: str | None = None, reuse: Snapshot | None = None, for_merge: bool = False,
) -> Snapshot:
    """Load the committed generation; retries if a writer swaps generations underneath us.

    Segments `reuse` (a reader's previous snapshot) has loaded are taken from it. `for_merge`
    loads what a merge needs besides (BM25's tokens, vectors in RAM): for the writer, and tests.
    """
    how = Reading(merging=for_merge)
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
        known = {} if reuse is None or for_merge else {x.segment: x for x in reuse.loaded}
        try:
            if problems:
                raise FileNotFoundError(first_problem(problems))
            loaded = tuple(known.get(seg) or _load_segment(index_dir, manifest, seg, how)
                           for seg in manifest.segments)
            deleted = _read_deleted(index_dir, manifest)
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


def load_segments(index_dir: Path, manifest: Manifest, reuse: Snapshot | None = None) -> Snapshot:
    """Some segments of a committed generation as one snapshot: a shard's share of the index
    (qabot/shards.py). `manifest` is the generation's, with only those segments; its deletion
    list is the whole generation's. Segments `reuse` has loaded are taken from it. The router
    pins the current generation, and garbage collection keeps it and the one before, so the
    files are there unless two commits landed while a question was being answered (then
    IndexDamaged: the router's next question pins the newer one)."""
    known = {} if reuse is None else {x.segment: x for x in reuse.loaded}
    try:
        loaded = tuple(known.get(seg) or _load_segment(index_dir, manifest, seg, Reading())
                       for seg in manifest.segments)
        everywhere = _read_deleted(index_dir, manifest)
    except (FileNotFoundError, *_UNREADABLE) as err:
        raise IndexDamaged(f"generation {manifest.generation} of {index_dir} can't be read "
                           f"({type(err).__name__}): it may have been replaced twice since; ask "
                           "again") from None
    # The deletion list less what lies in other segments (the vectors count it per passage).
    held = [parts.required(x, parts.CATALOG).rows for x in loaded]
    ids = np.concatenate([r.ids for r in held]) if held else np.zeros(0, np.int64)
    docs = np.concatenate([r.doc for r in held]) if held else np.zeros(0, np.int64)
    deleted = Deleted(everywhere.articles[np.isin(everywhere.articles, docs)],
                      everywhere.passages[np.isin(everywhere.passages, ids)])
    stacks = {p.name: p.stack(loaded, deleted, manifest.build) for p in parts.PARTS}
    snap = Snapshot(manifest, (0, 0), loaded, deleted, stacks)
    live = len(snap.catalog.rows.ids)
    if snap.vectors.ntotal != live:
        raise _inconsistent(index_dir, f"{snap.vectors.ntotal} live vectors, {live} rows in "
                                       f"segments {[s.first_id for s in manifest.segments]}")
    return replace(snap, manifest=replace(manifest, passage_count=live))


def _load_segment(index_dir: Path, manifest: Manifest, seg: Segment, how: Reading) -> Loaded:
    """Read each part of one segment, checking each holds the passages the manifest says."""
    values: dict[str, object] = {}
    for part in parts.PARTS:
        files = seg.files_of(part.name)
        if files is None or not part.applies(manifest.build):
            continue
        try:
            value = part.load([index_dir / f for f in files], seg, manifest.build, how)
        except Inconsistent as err:
            raise _inconsistent(index_dir, str(err)) from None
        if part.count(value) != seg.passage_count:
            raise _inconsistent(index_dir, f"{files[0]}: {part.count(value)} passages, "
                                           f"manifest {seg.passage_count}")
        values[part.name] = value
    return Loaded(seg, values)


def _inconsistent(index_dir: Path, why: str) -> IndexIncompatible:
    return IndexIncompatible(f"index at {index_dir} is inconsistent ({why}); run `qabot index --rebuild`")


def _snapshot(index_dir: Path, manifest: Manifest, loaded: Sequence[Loaded], deleted: Deleted,
              stamp: tuple[int, int]) -> Snapshot:
    """The one view of a generation's segments, deleted passages left out."""
    stacks = {p.name: p.stack(loaded, deleted, manifest.build) for p in parts.PARTS}
    snap = Snapshot(manifest, stamp, tuple(loaded), deleted, stacks)
    live = len(snap.catalog.rows.ids)
    if snap.vectors.ntotal != manifest.passage_count or live != manifest.passage_count:
        raise _inconsistent(index_dir, f"{snap.vectors.ntotal} live vectors, {live} rows, "
                                       f"manifest {manifest.passage_count}")
    return snap


def _read_deleted(index_dir: Path, manifest: Manifest) -> Deleted:
    return read_deleted(index_dir / manifest.deleted) if manifest.deleted else Deleted.empty()


def open_catalog(index_dir: Path, manifest: Manifest) -> Stack:
    """The live catalog of a committed generation alone (what `qabot index` diffs against);
    IndexDamaged when a file of it can't be read."""
    part = parts.CATALOG
    try:
        loaded = [Loaded(s, {part.name: part.load([index_dir / f for f in s.files_of(part.name) or ()],
                                                  s, manifest.build, Reading())})
                  for s in manifest.segments]
        deleted = _read_deleted(index_dir, manifest)
    except (OSError, IndexError, *_UNREADABLE) as err:
        raise IndexDamaged(f"the catalog in {index_dir} can't be read ({type(err).__name__})") from None
    return part.stack(loaded, deleted, manifest.build)


def complete(manifest: Manifest) -> bool:
    """True when every segment has every part this qabot writes (a damaged derived part
    dropped, or a part added since the index was written: the next full merge builds it)."""
    return not any(parts.missing(s, manifest.build) for s in manifest.segments)


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


def open_writer(settings: Settings, rebuild: bool = False, wait: bool = True, log: Log = print) -> Writer:
    """The writer of the settings' index, to use as a context manager (see Writer)."""
    return Writer(settings.index, settings.vectors, rebuild=rebuild, wait=wait, log=log)


class Writer:
    """The one writer of an index folder: `with open_writer(settings) as writer: ...`.

    Entering takes the write lock (waiting, and telling `log` so, unless `wait` is False) and
    makes the index one to build on: a damaged manifest.json is recovered from the newest intact
    generation, an older format upgraded in place (nothing re-embedded), a damaged generation
    repaired (an older whole one made current, or a damaged derived part such as BM25 dropped
    for the next full merge to rebuild). `manifest` and `hashes` then say what is committed;
    None when there is nothing worth keeping (or `rebuild` over an unreadable one): build anew.
    Only damage is handled so: any other error is a bug and propagates.

    The commits: add(), merge_small(), merge(). Each makes a new generation current and
    updates `manifest`. Leaving closes what it opened and releases the lock.
    """

    def __init__(self, index_dir: Path, vector_settings: VectorSettings | None = None, *,
                 rebuild: bool = False, wait: bool = True, log: Log = print) -> None:
        self.index_dir = index_dir
        self._vectors = vector_settings or VectorSettings()
        self._rebuild = rebuild
        self._log = log
        self._lock = WriteLock(index_dir, wait=wait, notify=log)
        self._catalog: Stack | None = None
        self.manifest: Manifest | None = None
        self.hashes: dict[str, str] | None = None  # doc id -> content hash, as opened

    def __enter__(self) -> Writer:
        self._lock.__enter__()
        try:
            self.manifest, self.hashes = self._open()
        except BaseException:
            self._lock.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_catalog()
        self._lock.__exit__()

    @property
    def catalog(self) -> Stack:
        """The live catalog of the committed generation (opened once, closed at a commit)."""
        if self._catalog is None:
            self._catalog = open_catalog(self.index_dir, self._base())
        return self._catalog

    def add(self, build: Build, changes: Changes, vecs: np.ndarray,
            sentences: Sequence[Pooled] | None = None) -> Manifest:
        """Commit `changes` as one new small segment of the current generation: its articles
        (their passages' vectors in `vecs`, in order, and their sentence vectors in `sentences`
        when the embedder pooled them) in a segment of their own, the articles
        `changes.removed` names (changed ones' old versions too) added to the deletion list.
        Nothing older is rewritten, so it costs what changed whatever the size of the index."""
        base = self._base()
        if changes.titles:
            raise ValueError("a segment holds new articles only: a retitle is a merge")
        deleted = deleting(self.catalog, changes.removed)
        count = len(changes.articles)
        rows = rows_of(changes.articles, base.next_article)
        job = Write(build, Batch(changes, vecs, sentences), Layout(), rows, count, base.next_article,
                    self._log)
        after = replace(base, build=build, next_article=base.next_article + count)

        def write(gen_dir: Path, generation: int) -> Manifest:
            segments, written = base.segments, {}
            if count:
                first = int(rows.ids[0]) if len(rows.ids) else base.build.next_id
                segment = _write_parts(gen_dir, job, first)
                segments, written = (*segments, segment), _sizes(self.index_dir, segment)
            return _seal_over(self.index_dir, gen_dir, generation, after, segments, deleted, written)

        return self._commit(write)

    def merge(
        self, build: Build | None = None, changes: Changes | None = None, vecs: np.ndarray | None = None,
        *, fresh: bool = False, layout: Layout | None = None, sentences: Sequence[Pooled] | None = None,
    ) -> Manifest:
        """Commit a generation of ONE segment: every live passage of the current one (none when
        `fresh`: a rebuild) with `changes` applied, new articles' vectors in `vecs`; returns its
        manifest (no index yet: as fresh). Nothing is re-embedded. Its vectors take `layout`, by
        default the one [vectors] asks for at its size. `build` defaults to the current one's."""
        base = None if fresh else self.manifest
        if build is None:
            build = self._base().build
        changes = changes if changes is not None else Changes()
        batch = Batch(changes, vecs if vecs is not None else np.zeros((0, build.model.dim), np.float32),
                      sentences)
        if base is None:
            return self._commit(_fresh(self.index_dir, build, batch, layout, self._vectors, self._log))
        loaded = self._load(base.segments)
        live = parts.CATALOG.stack(loaded, _read_deleted(self.index_dir, base), base.build)
        try:
            deleted = deleting(live, changes.removed)
            catalog = parts.CATALOG.stack(loaded, deleted, base.build)
            rows = catalog.rows.plus(rows_of(changes.articles, base.next_article))
            articles = catalog.count("articles") + len(changes.articles)
            layout = layout or vectors.choose(len(rows.ids), self._vectors, base.layout)
            job = Merge(build, batch, layout, rows, articles, base.next_article, self._log,
                        old=base.build, segments=loaded, catalog=catalog, deleted=deleted)
            after = replace(base, build=build, next_article=base.next_article + len(changes.articles))

            def write(gen_dir: Path, generation: int) -> Manifest:
                segment = _write_parts(gen_dir, job, 0)
                return _seal_over(self.index_dir, gen_dir, generation, after, (segment,), Deleted.empty(),
                                  _sizes(self.index_dir, segment))

            return self._commit(write)
        finally:
            live.close()  # the loaded segments' catalogs, which both stacks share

    def merge_small(self) -> Manifest:
        """Commit the generation with its segments after the first folded into one (exact flat
        vectors, deleted passages dropped, article numbers and passage ids kept). Costs what
        those segments hold: the first is not touched."""
        base, start = self._base(), 1
        if not 0 < start < len(base.segments) - 1:
            raise ValueError(f"nothing to fold from segment {start} of {len(base.segments)}")
        tail = base.segments[start:]
        deleted = _read_deleted(self.index_dir, base)
        loaded = self._load(tail)
        catalog = parts.CATALOG.stack(loaded, deleted, base.build)
        try:
            job = Merge(base.build, Batch(Changes(), np.zeros((0, base.build.model.dim), np.float32)),
                        Layout(), catalog.rows, catalog.count("articles"), base.next_article, self._log,
                        old=base.build, segments=loaded, catalog=catalog, deleted=deleted)
            first = tail[0].first_id
            # What stays deleted: what lies in the segments kept as they are.
            folded = np.concatenate([parts.required(x, parts.CATALOG).rows.doc for x in loaded])
            left = Deleted(deleted.articles[~np.isin(deleted.articles, folded)],
                           deleted.passages[deleted.passages < first])

            def write(gen_dir: Path, generation: int) -> Manifest:
                segment = _write_parts(gen_dir, job, first)
                return _seal_over(self.index_dir, gen_dir, generation, base,
                                  (*base.segments[:start], segment), left, _sizes(self.index_dir, segment))

            return self._commit(write)
        finally:
            catalog.close()

    def _base(self) -> Manifest:
        if self.manifest is None:
            raise ValueError(f"no index in {self.index_dir} to build on: commit a fresh one")
        return self.manifest

    def _load(self, segments: Sequence[Segment]) -> tuple[Loaded, ...]:
        """These segments of the current generation, read for merging."""
        manifest = self._base()
        try:
            return tuple(_load_segment(self.index_dir, manifest, s, Reading(merging=True)) for s in segments)
        except (FileNotFoundError, *_UNREADABLE) as err:
            raise IndexDamaged(f"the index in {self.index_dir} is damaged (a file of generation "
                               f"{manifest.generation} can't be read: {type(err).__name__}); "
                               "run `qabot index` to repair it") from None

    def _commit(self, write: Callable[[Path, int], Manifest]) -> Manifest:
        self._close_catalog()
        self.manifest = _committing(self.index_dir, write)
        return self.manifest

    def _close_catalog(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def _open(self) -> tuple[Manifest | None, dict[str, str] | None]:
        """The committed manifest and its articles' hashes, once recovered, upgraded or repaired;
        (None, None) when there is no index, or none worth keeping: a fresh build replaces it.

        A damaged manifest.json is recovered from the newest intact generation, so only what
        changed since that generation is embedded again; `rebuild` starts clean instead.
        """
        index_dir, log = self.index_dir, self._log
        try:
            manifest = load_manifest(index_dir)
        except ManifestDamaged as err:
            if self._rebuild:
                log(f"{err}: starting a new index.")
                return None, None
            manifest = recover(index_dir)
            if manifest is None:
                log(f"{err}: no intact generation to recover, rebuilding from the seeds.")
                return None, None
            log(f"The manifest was damaged: recovered generation {manifest.generation} "
                f"({manifest.article_count} articles, committed {manifest.committed_at}).")
        except IndexOutdated as err:
            if err.version in UPGRADABLE and not self._rebuild:
                log("Upgrading the index to the current format (nothing is re-embedded)…")
                manifest = upgrade(index_dir)
            else:
                log(f"Rebuilding the whole index: index format {err.version} → {FORMAT_VERSION}.")
                return None, None
        except IndexIncompatible:
            if not self._rebuild:
                raise
            return None, None  # another program's folder: --rebuild replaces it, as its message says
        if manifest is None:
            return None, None
        problems = check_generation(index_dir, manifest)
        hashes = None if problems else _hashes(index_dir, manifest)
        if hashes is None:
            damage = first_problem(problems) if problems else "its catalog can't be read"
            return self._repair(manifest, problems, damage)
        return manifest, hashes

    def _repair(self, damaged: Manifest, problems: Sequence[Problem],
                damage: str) -> tuple[Manifest | None, dict[str, str] | None]:
        """The manifest and hashes to build on when the current generation is damaged: the newest
        whole generation (the previous one is kept for readers), so only what changed since it is
        embedded again; else, when only derived parts are lost, the same generation without them
        (the next full merge rebuilds them from the stored passages); else nothing: a fresh build."""
        index_dir, log = self.index_dir, self._log
        if not self._rebuild:
            recovered = recover(index_dir)
            hashes = None if recovered is None else _hashes(index_dir, recovered)
            if recovered is not None and hashes is not None:
                log(f"The index is damaged ({damage}): recovered generation {recovered.generation} "
                    f"({recovered.article_count} articles); bringing it up to date.")
                return recovered, hashes
            lost = _derived(problems)
            hashes = _hashes(index_dir, damaged) if lost else None
            if lost and hashes is not None:
                labels = sorted({p.label for _, p in lost})
                log(f"The index is damaged ({damage}): rebuilding its {' and '.join(labels)} part "
                    "(nothing is re-embedded).")
                return _drop(index_dir, damaged, lost), hashes
        log(f"The index is damaged ({damage}): rebuilding it from the seeds.")
        return None, None


def _hashes(index_dir: Path, manifest: Manifest) -> dict[str, str] | None:
    """doc id -> content hash of the generation's articles; None when its catalog is damaged."""
    try:
        catalog = open_catalog(index_dir, manifest)
    except (FileNotFoundError, IndexDamaged):
        return None
    try:
        return catalog.hashes()
    except IndexDamaged:
        return None
    finally:
        catalog.close()


def _derived(problems: Sequence[Problem]) -> set[tuple[int, parts.Part[Any, Any]]]:
    """(segment, part) of each problem when every one lies in a derived part; else empty."""
    found = {(p.segment, parts.named(p.part)) for p in problems if p.part is not None}
    lost = {(n, part) for n, part in found if n is not None and part is not None and part.derived}
    return lost if problems and len(lost) == len(problems) else set()


def _drop(index_dir: Path, manifest: Manifest, lost: set[tuple[int, parts.Part[Any, Any]]]) -> Manifest:
    """Make current the same generation without these (damaged) derived parts, which the next
    full merge rebuilds (meanwhile a reader answers without them: by meaning only, for BM25)."""
    segments = tuple(s.without({p.name for n, p in lost if n == i}) for i, s in enumerate(manifest.segments))
    named = {*(f for s in segments for f in s.files), manifest.deleted}
    manifest = replace(manifest, segments=segments,
                       sizes={k: v for k, v in manifest.sizes.items() if k in named})
    _write_json_durably(index_dir / MANIFEST, manifest)
    return manifest


def _fresh(index_dir: Path, build: Build, batch: Batch, layout: Layout | None, settings: VectorSettings,
           log: Log) -> Callable[[Path, int], Manifest]:
    """What writes a generation of just `batch`'s articles as one segment (nothing kept)."""
    articles = batch.changes.articles
    rows = rows_of(articles, 1)
    job = Write(build, batch, layout or vectors.choose(len(rows.ids), settings, None), rows, len(articles),
                1, log)

    def write(gen_dir: Path, generation: int) -> Manifest:
        segment = _write_parts(gen_dir, job, 0)
        empty = Manifest(build=build, generation=generation, passage_count=0, article_count=0, segments=(),
                         next_article=1 + len(articles))
        return _seal_over(index_dir, gen_dir, generation, empty, (segment,), Deleted.empty(),
                          _sizes(index_dir, segment))

    return write


def _write_parts(gen_dir: Path, job: Write, first_id: int) -> Segment:
    """Write every part of the segment `job` describes into the generation's folder (a merge
    when `job` is one); returns its record. Each part must hold the job's rows, or nothing is
    committed."""
    written = []
    for part in parts.PARTS:
        if not part.applies(job.build):
            continue
        held = part.merge(gen_dir, job) if isinstance(job, Merge) else part.write(gen_dir, job)
        if held != len(job.rows.ids):
            raise AssertionError(f"the {part.label} part holds {held} passages of {len(job.rows.ids)}: "
                                 "not committed")
        written.append(Files(part.name, tuple(f"{gen_dir.name}/{f}" for f in part.files)))
    return Segment(first_id, len(job.rows.ids), job.articles, tuple(written), job.layout)


def _sizes(index_dir: Path, segment: Segment) -> dict[str, int]:
    """The bytes each part of the segment wrote, per file: what check_generation compares."""
    out: dict[str, int] = {}
    for files in segment.parts:
        part = parts.named(files.part)
        out.update(part.sizes(index_dir, files.paths) if part is not None
                   else {f: (index_dir / f).stat().st_size for f in files.paths})
    return out


def _seal_over(
    index_dir: Path, gen_dir: Path, generation: int, base: Manifest, segments: Sequence[Segment],
    deleted: Deleted, written: Mapping[str, int],
) -> Manifest:
    """Seal a generation that is `base` with these segments, less `deleted` (written into its
    folder beside `written`, this generation's new files and their sizes): its counts are the
    live ones, and the sizes of the files it keeps are those `base` recorded. Returns it."""
    sizes = dict(written)
    deleted_file = None
    if len(deleted.passages) or len(deleted.articles):
        write_deleted(gen_dir / DELETED, deleted)
        deleted_file = f"{gen_dir.name}/{DELETED}"
        sizes[deleted_file] = (index_dir / deleted_file).stat().st_size
    named = {f for s in segments for f in s.files}
    kept = {f: n for f, n in base.sizes.items() if f in named}
    manifest = replace(
        base, generation=generation, segments=tuple(segments), deleted=deleted_file,
        passage_count=sum(s.passage_count for s in segments) - len(deleted.passages),
        article_count=sum(s.article_count for s in segments) - len(deleted.articles),
        sizes={**kept, **sizes}, committed_at=_now())
    _seal(index_dir, gen_dir, manifest, list(sizes))
    return manifest


def _committing(index_dir: Path, write: Callable[[Path, int], Manifest],
                previous: Manifest | None = None) -> Manifest:
    """Make current what `write(folder, number)` writes as the next generation, and return its
    manifest. `write` writes and fsyncs every file, its folder's manifest copy last (_seal);
    then the rename of manifest.json is the commit. A failure before it (disk full, Ctrl-C...)
    removes the half-written folder and leaves the previous generation current. Garbage
    collection keeps `previous`'s folders (by default the manifest it replaces)."""
    found, generation, gen_dir = _next_generation(index_dir)
    try:
        manifest = write(gen_dir, generation)
    except BaseException:
        shutil.rmtree(gen_dir, ignore_errors=True)
        raise
    _write_json_durably(index_dir / MANIFEST, manifest)
    _collect_garbage(index_dir, manifest, previous or found)
    return manifest


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
    _write_text_durably(path, json.dumps(to_json(manifest), indent=1, ensure_ascii=False))


def _write_text_durably(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def _generations(index_dir: Path) -> list[int]:
    """The numbers of the gen-NNNNNN folders in the index folder."""
    return [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit() and p.is_dir()]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a generation's files, and where it lies."""

    what: str  # "gen-000007/bm25.npz is missing"
    part: str | None = None  # the damaged part's name; None: the deletion list
    segment: int | None = None  # the index of the part's segment in the manifest


def check_generation(index_dir: Path, manifest: Manifest) -> list[Problem]:
    """What is wrong with the files this manifest names (empty: nothing found). Cheap: each
    part looks at its files' sizes and headers, not every byte. A derived part a segment lacks
    is no damage (the next full merge builds it); any other part is."""
    problems: list[Problem] = []
    for n, seg in enumerate(manifest.segments):
        problems += [Problem(f"segment {n} of generation {manifest.generation} has no {p.label} part",
                             p.name, n) for p in parts.missing(seg, manifest.build) if not p.derived]
        for files in seg.parts:
            part = parts.named(files.part)
            if part is not None:
                why = part.check(index_dir, seg, files.paths, manifest.sizes, manifest.build)
            else:  # a part this qabot doesn't know: its files are looked at all the same
                why = next((f"{f} {w}" for f in files.paths
                            if (w := parts.check_file(index_dir, f, manifest.sizes))), None)
            if why:
                problems.append(Problem(why, files.part, n))
    if manifest.deleted and (why := parts.check_file(index_dir, manifest.deleted, manifest.sizes)):
        problems.append(Problem(f"{manifest.deleted} {why}"))
    return problems


def first_problem(problems: Sequence[Problem]) -> str:
    """"gen-000007/bm25.npz is missing": the first of check_generation's findings, for a message."""
    return problems[0].what


def recover(index_dir: Path) -> Manifest | None:
    """Make the newest intact generation current again, from the copy of its manifest it holds;
    returns that manifest, or None when no generation is whole. The caller holds the write lock.

    "Newest" may be a generation whose run died just before its commit: its files were all
    written and fsynced before its copy was, so it is as whole as a committed one. A copy an
    older qabot wrote is put back as it was, then upgraded (nothing re-embedded).
    """
    for number in sorted(_generations(index_dir), reverse=True):
        copy = index_dir / f"gen-{number:06d}" / MANIFEST
        try:
            manifest = _parse_manifest(copy, index_dir)
        except IndexOutdated as err:
            if err.version in (2, 3) and _old_copy_whole(index_dir, copy, number):
                _write_text_durably(index_dir / MANIFEST, copy.read_text(encoding="utf-8"))
                return upgrade(index_dir)
            continue
        except IndexIncompatible:  # damaged, another format version or another program's
            continue
        if manifest is None or manifest.generation != number or check_generation(index_dir, manifest):
            continue
        _write_json_durably(index_dir / MANIFEST, manifest)
        return manifest
    return None


def _old_copy_whole(index_dir: Path, copy: Path, number: int) -> bool:
    """True when an older format's manifest copy names generation `number` and every file it
    names is there and whole."""
    try:
        old = _read_old(index_dir, _read_json(copy))
    except (OSError, ValueError, IndexIncompatible):
        return False
    files = [f for s in old.segments for f in s.files.values()]
    files += [old.manifest.deleted] if old.manifest.deleted else []
    return old.manifest.generation == number and not any(
        parts.check_file(index_dir, f, old.manifest.sizes) for f in files)


def upgrade(index_dir: Path) -> Manifest | None:
    """Bring an index an older qabot wrote to this format, keeping every vector: nothing is
    re-embedded. None when there is nothing to do. The caller holds the write lock.

    Like any commit, the upgraded generation becomes current by the rename of manifest.json:
    killed before it, the older manifest and every file it names are as they were."""
    try:
        old = read_old_manifest(index_dir)
    except FileNotFoundError:
        return None
    if old.get("format") != FORMAT:
        return None
    if old.get("format_version") == 1:
        return _upgrade_v1(index_dir, old)
    if old.get("format_version") in (2, 3):
        return _upgrade_segments(index_dir, _read_old(index_dir, old))
    return None


def _read_old(index_dir: Path, old: Mapping[str, Any]) -> Old:
    """A format-2 or format-3 manifest as typed records; ManifestDamaged when it can't be read."""
    version = old.get("format_version")
    try:
        if version == 3:
            return from_json_v3(old)
        # Format 2 did not record the next article number: one past the catalog's largest.
        db = sqlite3.connect(f"file:{index_dir / old['passages']}?mode=ro", uri=True)
        try:
            top = db.execute("SELECT max(num) FROM articles").fetchone()[0]
        finally:
            db.close()
        return from_json_v2(old, int(top or 0) + 1)
    except (Malformed, KeyError, TypeError, sqlite3.DatabaseError) as err:
        raise ManifestDamaged(f"the index at {index_dir} (format {version}) can't be upgraded ({err}); "
                              "run `qabot index --rebuild`") from None


def _upgrade_v1(index_dir: Path, old: dict[str, Any]) -> Manifest:
    """Format 1 (one exact FAISS file, passages.jsonl, articles in the manifest) as one segment,
    its vectors read back from the FAISS file (exactly: float32)."""
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
    old.setdefault("next_id", max((p.id for ps in by_doc.values() for p in ps), default=-1) + 1)
    build = from_json({**old, "generation": 0, "passage_count": 0, "article_count": 0,
                       "segments": [], "next_article": 1}).build
    ids = np.array([p.id for _, ps in changes.articles for p in ps], dtype=np.int64)
    batch = Batch(changes, vectors.vectors_of(index, ids))
    return _committing(index_dir, _fresh(index_dir, build, batch, Layout(), VectorSettings(), lambda _: None))


def _upgrade_segments(index_dir: Path, old: Old) -> Manifest:
    """Format 2 or 3 as a generation of the same segments, each given its parts: every part
    takes its files from the old record where they are, or rewrites them into the new folder
    when its format changed since (format 2's BM25 weights: rewritten as counts from the tokens
    it stored). Nothing is tokenized or embedded again."""
    base = old.manifest
    try:
        deleted = _read_deleted(index_dir, base)
    except (OSError, *_UNREADABLE) as err:
        raise ManifestDamaged(f"the index at {index_dir} (format {old.version}) can't be upgraded "
                              f"({base.deleted}: {type(err).__name__}); run `qabot index --rebuild`"
                              ) from None

    def write(gen_dir: Path, generation: int) -> Manifest:
        segments, written = [], {}
        for s in old.segments:
            found = []
            for part in parts.PARTS:
                files = part.upgrade(index_dir, gen_dir, s, old.version, base.build)
                if files is None:
                    continue
                found.append(Files(part.name, files))
                if files[0].startswith(f"{gen_dir.name}/"):
                    written.update(part.sizes(index_dir, files))
            segments.append(replace(s.segment, parts=tuple(found)))
        return _seal_over(index_dir, gen_dir, generation, base, segments, deleted, written)

    manifest = _committing(index_dir, write, previous=base)
    # Files the old format named and this one doesn't (format 2's BM25 weights) are removed;
    # the rest stays where it is, named by the new manifest.
    named = set(manifest.files)
    for s in old.segments:
        for name in s.files.values():
            if name not in named:
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
