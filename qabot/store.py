"""The index folder: FAISS vectors + JSONL passages per generation, committed by manifest.json.

Layout (everything a reader needs is named by the manifest, so the folder describes itself):

    manifest.json            the commit point: replaced last, atomically, with os.replace
    gen-000007/vectors.faiss IndexIDMap2(IndexFlatIP): inner product == cosine on unit vectors
    gen-000007/passages.jsonl one passage a line: id, doc_id, start, end, text
    gen-000007/bm25.npz      the BM25 matrix of those passages, + bm25-vocab.json (see bm25.py)
    encoder-<hash>/          the model exported to ONNX, shared by generations of one model
    .lock                    held by whoever writes

A crash before the rename leaves the previous manifest, and every file it names, untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25
from .errors import IndexIncompatible, IndexLocked, IndexNotFound

FORMAT = "qabot-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
METRIC = "inner_product"


@dataclass(frozen=True)
class PassageRecord:
    """A stored passage: its id in FAISS, its article and its character span in the file."""

    id: int
    doc_id: str
    start: int
    end: int
    text: str


def load_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The committed manifest, or None when the folder holds no index yet."""
    try:
        raw = (index_dir / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError:
        raise IndexIncompatible(
            f"{index_dir / MANIFEST} is not valid JSON; run `qabot index --rebuild`"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexIncompatible(
            f"{index_dir} does not hold a qabot index; point --index at another folder "
            "or run `qabot index --rebuild` to replace it"
        )
    return manifest


def check_compatible(manifest: dict[str, Any], index_dir: Path, model: str | None) -> None:
    """Refuse an index of another format version or model, saying what to run."""
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this qabot reads "
            f"{FORMAT_VERSION}; run `qabot index --rebuild --index {index_dir}`"
        )
    built = manifest["model"]["name"]
    if model is not None and built != model:
        raise IndexIncompatible(
            f"index at {index_dir} was built with model {built!r} but the settings say "
            f"{model!r}; run `qabot index --rebuild` (or set the model back)"
        )


@dataclass
class Snapshot:
    """One committed generation, fully loaded: what a reader searches."""

    manifest: dict[str, Any]
    vectors: Any  # faiss.IndexIDMap2
    passages: dict[int, PassageRecord]
    stamp: tuple[int, int]  # (mtime_ns, size) of the manifest this came from
    lexical: bm25.Lexical | None = None  # None for an index built before BM25 was added


def load_snapshot(index_dir: Path, model: str | None = None, tokens: bool = False) -> Snapshot:
    """Load the committed generation; retries if a writer swaps generations underneath us.

    `tokens` also loads the BM25 part's per-passage tokens, which only the indexer needs.
    """
    for attempt in range(5):
        manifest = load_manifest(index_dir)
        if manifest is None:
            raise IndexNotFound(f"no index in {index_dir}; run `qabot index` to build it")
        check_compatible(manifest, index_dir, model)
        stamp = manifest_stamp(index_dir)
        try:
            vectors = read_vectors(index_dir / manifest["vectors"])
            passages = {p.id: p for p in read_passages(index_dir / manifest["passages"])}
            lexical = read_lexical(index_dir, manifest, tokens)
        except FileNotFoundError:
            # A writer committed and removed this generation between our two reads: retry.
            time.sleep(0.05 * (attempt + 1))
            continue
        dim = manifest["model"]["dim"]
        if vectors.d != dim or vectors.ntotal != len(passages):
            raise IndexIncompatible(
                f"index at {index_dir} is inconsistent (vectors {vectors.d}-d x {vectors.ntotal}, "
                f"manifest {dim}-d x {len(passages)}); run `qabot index --rebuild`"
            )
        if lexical is not None and len(lexical.ids) != len(passages):
            raise IndexIncompatible(
                f"index at {index_dir} is inconsistent (BM25 has {len(lexical.ids)} passages, "
                f"the manifest {len(passages)}); run `qabot index --rebuild`"
            )
        return Snapshot(manifest, vectors, passages, stamp, lexical)
    raise IndexIncompatible(f"index at {index_dir} keeps changing or lost its files; retry")


def manifest_stamp(index_dir: Path) -> tuple[int, int]:
    """A cheap fingerprint of the committed manifest, to notice a new generation."""
    try:
        st = (index_dir / MANIFEST).stat()
    except FileNotFoundError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def new_vectors(dim: int) -> Any:
    """An empty exact inner-product index with our own int64 ids."""
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def read_vectors(path: Path) -> Any:
    """Load a FAISS index file."""
    import faiss

    if not path.is_file():
        raise FileNotFoundError(path)
    return faiss.read_index(str(path))


def read_passages(path: Path) -> Iterable[PassageRecord]:
    """Stream the passages of a generation."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            yield PassageRecord(int(d["id"]), d["doc_id"], int(d["start"]), int(d["end"]), d["text"])


def read_lexical(index_dir: Path, manifest: dict[str, Any], tokens: bool = False) -> bm25.Lexical | None:
    """The generation's BM25 part, or None when the manifest names none."""
    entry = manifest.get("bm25")
    if not entry or "matrix" not in entry:
        return None
    return bm25.load(index_dir / entry["matrix"], index_dir / entry["vocab"], entry["stemmer"],
                     with_tokens=tokens)


def remove_ids(vectors: Any, ids: Iterable[int]) -> None:
    """Drop these passage ids from a FAISS id-mapped index."""
    arr = np.fromiter(ids, dtype=np.int64)
    if arr.size:
        vectors.remove_ids(arr)


def commit(
    index_dir: Path,
    manifest: dict[str, Any],
    vectors: Any,
    passages: Iterable[PassageRecord],
    lexical: bm25.Lexical | None = None,
) -> dict[str, Any]:
    """Write a new generation and make it current; returns the committed manifest.

    With `lexical`, its files go into the generation too, and manifest["bm25"] (the parameters
    it was built with) gains their names.

    Order matters: data files written and fsynced, then the manifest written to a temporary
    name, fsynced, and renamed over the old one. The rename is the commit.
    """
    import faiss

    previous = load_manifest(index_dir)
    generation = (previous or {}).get("generation", 0) + 1
    gen = f"gen-{generation:06d}"
    gen_dir = index_dir / gen
    shutil.rmtree(gen_dir, ignore_errors=True)  # leftovers of a run that died before commit
    gen_dir.mkdir(parents=True)
    faiss.write_index(vectors, str(gen_dir / "vectors.faiss"))
    count = 0
    with (gen_dir / "passages.jsonl").open("w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps({"id": p.id, "doc_id": p.doc_id, "start": p.start, "end": p.end,
                                "text": p.text}, ensure_ascii=False) + "\n")
            count += 1
    written = ["vectors.faiss", "passages.jsonl"]
    if lexical is not None:
        names = bm25.save(lexical, gen_dir)
        written += list(names.values())
        manifest = dict(manifest, bm25=dict(manifest.get("bm25") or {},
                                            **{k: f"{gen}/{v}" for k, v in names.items()}))
    manifest = dict(manifest, format=FORMAT, format_version=FORMAT_VERSION, metric=METRIC,
                    generation=generation, passage_count=count,
                    vectors=f"{gen}/vectors.faiss", passages=f"{gen}/passages.jsonl",
                    committed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    for name in written:
        fsync_path(gen_dir / name)
    fsync_path(gen_dir)
    tmp = index_dir / f".{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / MANIFEST)
    fsync_path(index_dir)
    _collect_garbage(index_dir, manifest, previous)
    return manifest


def _collect_garbage(
    index_dir: Path, current: dict[str, Any], previous: dict[str, Any] | None
) -> None:
    """Remove generations and encoders no longer named by the current or previous manifest.

    The previous generation is kept so a reader that read the old manifest a moment ago can
    still open its files.
    """
    keep = {current["vectors"].split("/")[0], current.get("encoder")}
    if previous:
        keep |= {previous["vectors"].split("/")[0], previous.get("encoder")}
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


class WriteLock:
    """Exclusive lock on an index folder for writers; waits (saying so) unless told not to."""

    def __init__(self, index_dir: Path, wait: bool = True, notify: Any = None) -> None:
        from filelock import FileLock

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
