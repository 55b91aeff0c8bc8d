"""The commit protocol of the index folder: generations made current by manifest.json.

Layout (everything a reader needs is named by the manifest, so the folder describes itself):

    manifest.json              the commit point: replaced last, atomically, with os.replace
    gen-000007/vectors.faiss   flat or IVF FAISS index keyed by passage id (see vectors.py);
                               its type and codec are the manifest's "vectors_index"
    gen-000007/passages.sqlite the catalog: articles and passages with their texts, and
    gen-000007/rows.npz        per passage its article number and day (see catalog.py)
    gen-000007/bm25.npz        the BM25 matrix of those passages, + bm25-vocab.json (see bm25.py)
    encoder-<hash>/            the model exported to ONNX, shared by generations of one model
    seeds-cache.sqlite         signatures.py's stat signatures of the seed files: advisory,
                               outside this protocol (not named by the manifest, never collected)
    .lock                      held by whoever writes

This module writes, recovers, upgrades and collects generations, and holds the write lock; what
the catalog files contain is catalog.py's. A new generation's catalog starts as a copy of the
current one's with the changes applied, so a commit costs what changed plus a file copy, not a
re-insert of every passage. A crash before the manifest's rename leaves the previous manifest,
and every file it names, untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import bm25, vectors
from .catalog import (
    ArticleRecord,
    Articles,
    Catalog,
    Changes,
    PassageRecord,
    Passages,
    Rows,
    read_rows,
    write_rows,
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
from .manifest import FORMAT, FORMAT_VERSION, Build, Malformed, Manifest, from_json, to_json

MANIFEST = "manifest.json"
VECTORS, DB, ROWS = "vectors.faiss", "passages.sqlite", "rows.npz"


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
    if version == 1:
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


@dataclass
class Snapshot:
    """One committed generation: vectors, per-passage rows and BM25 in RAM, texts on disk."""

    manifest: Manifest
    vectors: Any  # a FAISS index (see vectors.py)
    catalog: Catalog
    rows: Rows
    stamp: tuple[int, int]  # (mtime_ns, size) of the manifest this came from
    lexical: bm25.Lexical | None = None  # None for an index built before BM25 was added

    @property
    def layout(self) -> vectors.Layout:
        """How its vectors are indexed (the manifest's record)."""
        return self.manifest.layout

    @property
    def passages(self) -> Passages:
        return Passages(self.catalog)

    @property
    def articles(self) -> Articles:
        return Articles(self.catalog)

    @property
    def folder(self) -> Path:
        """The generation folder (to copy its catalog into the next one)."""
        return self.catalog.path.parent


def load_snapshot(
    index_dir: Path, model: str | None = None, tokens: bool = False, writable: bool = False
) -> Snapshot:
    """Load the committed generation; retries if a writer swaps generations underneath us.

    `tokens` also loads the BM25 part's per-passage tokens, and `writable` reads the vectors
    into RAM rather than memory-mapping them: both only for the indexer.
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
        try:
            if problems:
                raise FileNotFoundError(first_problem(problems))
            index = vectors.read(index_dir / manifest.vectors, manifest.layout, for_update=writable)
            catalog = Catalog(index_dir / manifest.passages)
            rows = read_rows(index_dir / manifest.rows)
            lexical = read_lexical(index_dir, manifest, tokens)
        except FileNotFoundError:
            # A writer committed and removed this generation between our two reads: retry.
            time.sleep(0.05 * (attempt + 1))
            continue
        except _UNREADABLE as err:  # what FAISS, numpy, zipfile and json say of a damaged file
            raise IndexDamaged(f"the index in {index_dir} is damaged (a file of generation "
                               f"{manifest.generation} can't be read: {type(err).__name__}); "
                               "run `qabot index` to repair it") from None
        dim, count = manifest.build.model.dim, manifest.passage_count
        if index.d != dim or index.ntotal != count or len(rows.ids) != count:
            raise IndexIncompatible(
                f"index at {index_dir} is inconsistent (vectors {index.d}-d x {index.ntotal}, "
                f"{len(rows.ids)} rows, manifest {dim}-d x {count}); run `qabot index --rebuild`"
            )
        if lexical is not None and len(lexical.ids) != count:
            raise IndexIncompatible(
                f"index at {index_dir} is inconsistent (BM25 has {len(lexical.ids)} passages, "
                f"the manifest {count}); run `qabot index --rebuild`"
            )
        return Snapshot(manifest, index, catalog, rows, stamp, lexical)
    raise IndexDamaged(f"the index in {index_dir} keeps changing or lost its files; retry, "
                       "or run `qabot index` to repair it")


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


def read_lexical(index_dir: Path, manifest: Manifest, tokens: bool = False) -> bm25.Lexical | None:
    """The generation's BM25 part, or None when the manifest names none."""
    entry = manifest.build.lexical
    if entry is None or entry.matrix is None or entry.vocab is None:
        return None
    return bm25.load(index_dir / entry.matrix, index_dir / entry.vocab, entry.params.stemmer,
                     with_tokens=tokens)


def commit(
    index_dir: Path,
    build: Build,
    index: Any,
    layout: vectors.Layout,
    changes: Changes,
    base: Snapshot | None = None,
    lexical: bm25.Lexical | None = None,
) -> Manifest:
    """Write a new generation — `base` (the current one, None for a fresh index) with `changes`
    applied — and make it current; returns the committed manifest. `index` holds the vectors
    of the result.

    With `lexical`, its files go into the generation too, and build.lexical (the parameters
    it was built with) gains their names.

    Order matters: data files written and fsynced, then the manifest written to a temporary
    name, fsynced, and renamed over the old one. The rename is the commit.
    """
    try:
        previous = load_manifest(index_dir)
    except IndexIncompatible:  # damaged or another program's: this commit replaces it
        previous = None
    # Past every generation on disk, not only the previous manifest's: after a damaged
    # manifest the folders may be further along than anything it could tell us.
    done = previous.generation if previous is not None else 0
    for number in _generations(index_dir):
        if previous is not None and number > done:  # leftovers of a run that died before commit
            shutil.rmtree(index_dir / f"gen-{number:06d}", ignore_errors=True)
    generation = max([done, *_generations(index_dir)]) + 1
    gen_dir = index_dir / f"gen-{generation:06d}"
    gen_dir.mkdir(parents=True)
    try:
        manifest = _write_generation(gen_dir, generation, build, index, layout, changes, base,
                                     lexical)
    except BaseException:  # disk full, Ctrl-C...: a half-written generation only takes space
        shutil.rmtree(gen_dir, ignore_errors=True)
        raise
    _write_json_durably(index_dir / MANIFEST, manifest)
    _collect_garbage(index_dir, manifest, previous)
    return manifest


def _write_generation(
    gen_dir: Path, generation: int, build: Build, index: Any, layout: vectors.Layout,
    changes: Changes, base: Snapshot | None, lexical: bm25.Lexical | None,
) -> Manifest:
    """Write and fsync a generation's files, its manifest copy last; returns that manifest."""
    gen = gen_dir.name
    vectors.write(index, gen_dir / VECTORS)
    rows, articles = write_catalog(gen_dir / DB, changes,
                                  (base.catalog.path, base.rows) if base is not None else None)
    write_rows(gen_dir / ROWS, rows)
    if len(rows.ids) != index.ntotal:
        raise AssertionError(f"{index.ntotal} vectors for {len(rows.ids)} passages: not committed")
    written = [VECTORS, DB, ROWS]
    if lexical is not None:
        if build.lexical is None:
            raise ValueError("a BM25 part to commit needs its parameters in build.lexical")
        names = bm25.save(lexical, gen_dir)
        written += list(names.values())
        build = replace(build, lexical=replace(build.lexical, matrix=f"{gen}/{names['matrix']}",
                                               vocab=f"{gen}/{names['vocab']}"))
    elif build.lexical is not None:
        build = replace(build, lexical=build.lexical.without_files())
    manifest = Manifest(
        build=build, generation=generation, passage_count=len(rows.ids), article_count=articles,
        vectors=f"{gen}/{VECTORS}", passages=f"{gen}/{DB}", rows=f"{gen}/{ROWS}", layout=layout,
        # what check_generation compares: a truncated file shows at a stat()
        sizes={f"{gen}/{n}": (gen_dir / n).stat().st_size for n in written},
        committed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    for name in written:
        fsync_path(gen_dir / name)
    # A copy of the manifest inside the generation, written once its data is on disk: the
    # folder then describes itself, and a damaged manifest.json can be recovered from it.
    _write_json_durably(gen_dir / MANIFEST, manifest)
    return manifest


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
        elif name == manifest.vectors and name not in sizes and size < _least_vector_bytes(manifest):
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
    lexical = manifest.build.lexical
    if lexical is None:
        return manifest
    gone = set(lexical.files)
    manifest = replace(manifest, build=replace(manifest.build, lexical=lexical.without_files()),
                       sizes={k: v for k, v in manifest.sizes.items() if k not in gone})
    _write_json_durably(index_dir / MANIFEST, manifest)
    return manifest


def _least_vector_bytes(manifest: Manifest) -> int:
    """A lower bound on the size of the vectors file (for an index from before sizes were
    recorded): an id and the smallest code of each vector."""
    dim = manifest.build.model.dim
    code = {"none": 4 * dim, "float16": 2 * dim, "sq8": dim}.get(manifest.layout.codec, max(1, dim // 8))
    return manifest.passage_count * (8 + code)


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
    """Rewrite a format-1 index (one exact FAISS file, passages.jsonl, articles in the manifest)
    as format 2, keeping every vector: nothing is re-embedded. None when there is nothing to do.
    The caller holds the write lock."""
    try:
        old = read_old_manifest(index_dir)
    except FileNotFoundError:
        return None
    if old.get("format") != FORMAT or old.get("format_version") != 1:
        return None
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
    if isinstance(old.get("bm25"), dict):
        old["bm25"] = {k: v for k, v in old["bm25"].items() if k not in ("matrix", "vocab")}
    old.setdefault("next_id", max((p.id for ps in by_doc.values() for p in ps), default=-1) + 1)
    build = from_json({**old, "generation": 0, "passage_count": 0, "article_count": 0,
                       "vectors": "", "passages": "", "rows": ""}).build
    return commit(index_dir, build, index, vectors.Layout(), changes)


def _collect_garbage(index_dir: Path, current: Manifest, previous: Manifest | None) -> None:
    """Remove generations and encoders no longer named by the current or previous manifest.

    The previous generation is kept so a reader that read the old manifest a moment ago can
    still open its files.
    """
    keep = {current.folder, current.build.encoder}
    if previous:
        keep |= {previous.folder, previous.build.encoder}
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
