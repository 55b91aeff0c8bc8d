"""The manifest: what a committed generation holds and how it was built, as typed records.

A generation is a list of segments (each a set of parts, parts.py: the files of its vectors, its
catalog, its BM25 counts..., over a disjoint range of passage ids) plus a deletion list: what of
the older segments is no longer live. This module only maps the record to and from its JSON form;
store.py is the one place that reads and writes the file (and upgrades older formats, read here
by `from_json_v2` and `from_json_v3`). Everyone else reads fields, never string keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import bm25
from .vectors import Layout

FORMAT = "qabot-index"
FORMAT_VERSION = 4
# 1: one IndexFlatIP + passages.jsonl + articles in the manifest; 2: one segment per generation,
# BM25 weights computed at commit time; 3: segments, a field per file. 4: a segment's files by
# part. store.upgrade reads them all, nothing is re-embedded.
METRIC = "inner_product"


class Malformed(ValueError):
    """The JSON is a qabot manifest of this format version but lacks or mistypes a field."""


@dataclass(frozen=True)
class Model:
    """The embedding model the vectors came from."""

    name: str
    dim: int
    precision: str = "fp32"  # of the ONNX encoder the vectors came from: "fp32" or "int8"


@dataclass(frozen=True)
class Chunking:
    """How articles were cut into passages; any difference from the settings forces a rebuild."""

    max_tokens: int
    overlap_tokens: int
    splitter_version: int


@dataclass(frozen=True)
class Lexical:
    """How the BM25 part was built (its files are each segment's "bm25" part)."""

    params: bm25.Params
    tokenizer_version: int = bm25.TOKENIZER_VERSION

    def current(self, params: bm25.Params) -> bool:
        """True when it was built with these parameters by this qabot."""
        return self.params == params and self.tokenizer_version == bm25.TOKENIZER_VERSION

    def same_tokens(self, params: bm25.Params) -> bool:
        """True when its matrix tokenized passages as `params` would (k1 and b may differ)."""
        def tokens(p: bm25.Params) -> tuple[str, str, bool]:
            return (p.stemmer, p.stopwords, p.titles)

        return self.tokenizer_version == bm25.TOKENIZER_VERSION and tokens(self.params) == tokens(params)


@dataclass(frozen=True)
class Build:
    """What the indexer says about a generation's content: everything but where its files are."""

    model: Model
    next_id: int  # the id the next new passage gets (ids are never reused)
    chunker: Chunking | None = None
    lexical: Lexical | None = None
    encoder: str | None = None  # encoder-<hash>/: the ONNX export questions are encoded with
    seeds: str | None = None  # the seeds folder, to open the files citations name
    title_version: int | None = None  # headline.TITLE_VERSION that made the stored titles


@dataclass(frozen=True)
class Files:
    """One part of a segment as the manifest records it: the part's name (parts.py) and its
    files, relative to the index folder, in the order the part names them."""

    part: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """One immutable segment: the passages with ids from `first_id` up to the next segment's,
    how many it stores (deleted ones included), and the files of each of its parts. `layout` is
    how its vectors are indexed: the commit that writes a segment chooses it."""

    first_id: int
    passage_count: int
    article_count: int
    parts: tuple[Files, ...]
    layout: Layout = field(default_factory=Layout)

    @property
    def files(self) -> list[str]:
        return [f for p in self.parts for f in p.paths]

    def files_of(self, part: str) -> tuple[str, ...] | None:
        """The files of the named part; None when the segment has no such part."""
        return next((p.paths for p in self.parts if p.part == part), None)

    def without(self, parts: set[str]) -> Segment:
        """The same segment without the named parts (dropped as damaged; rebuilt by a merge)."""
        return replace(self, parts=tuple(p for p in self.parts if p.part not in parts))


@dataclass(frozen=True)
class Manifest:
    """A committed generation: its build, live counts, segments and deletion list."""

    build: Build
    generation: int
    passage_count: int  # live passages, over every segment
    article_count: int
    segments: tuple[Segment, ...]
    next_article: int  # the number the next new article gets in the catalog (never reused)
    deleted: str | None = None  # gen-NNNNNN/deleted.npz: passages of older segments no longer live
    sizes: Mapping[str, int] = field(default_factory=dict)  # bytes written, file -> size
    committed_at: str | None = None

    @property
    def layout(self) -> Layout:
        """How the first (largest) segment's vectors are indexed: the layout merges write;
        later segments are small and exact."""
        return self.segments[0].layout if self.segments else Layout()

    @property
    def folder(self) -> str:
        """This generation's own folder, gen-NNNNNN (it may hold no data file of its own)."""
        return f"gen-{self.generation:06d}"

    @property
    def folders(self) -> set[str]:
        """Every folder its files lie in, its own included: what garbage collection keeps."""
        return {self.folder, *(f.split("/")[0] for f in self.files)}

    @property
    def files(self) -> list[str]:
        """The data files it names, relative to the index folder."""
        out = [f for s in self.segments for f in s.files]
        return out + ([self.deleted] if self.deleted else [])


def to_json(m: Manifest) -> dict[str, Any]:
    """The manifest as written to manifest.json."""
    b = m.build
    out: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "metric": METRIC,
        "model": {"name": b.model.name, "dim": b.model.dim, "precision": b.model.precision},
        "chunker": None if b.chunker is None else {
            "max_tokens": b.chunker.max_tokens, "overlap_tokens": b.chunker.overlap_tokens,
            "splitter_version": b.chunker.splitter_version},
        "encoder": b.encoder, "seeds": b.seeds, "title_version": b.title_version,
        "next_id": b.next_id, "next_article": m.next_article, "generation": m.generation,
        "passage_count": m.passage_count, "article_count": m.article_count,
        "segments": [_segment_json(s) for s in m.segments], "deleted": m.deleted,
        "sizes": dict(m.sizes), "committed_at": m.committed_at,
    }
    if b.lexical is not None:
        out["bm25"] = {**bm25_json(b.lexical.params), "tokenizer_version": b.lexical.tokenizer_version}
    return out


def _segment_json(s: Segment) -> dict[str, Any]:
    return {"first_id": s.first_id, "passage_count": s.passage_count,
            "article_count": s.article_count, "vectors_index": s.layout.as_dict(),
            "parts": {p.part: list(p.paths) for p in s.parts}}


def bm25_json(p: bm25.Params) -> dict[str, Any]:
    """The manifest's record of BM25 parameters (keys as format 2 has always written them)."""
    return {"k1": p.k1, "b": p.b, "stemmer": p.stemmer, "stopwords": p.stopwords,
            "titles": p.titles, "method": "lucene"}


def from_json(d: Mapping[str, Any]) -> Manifest:
    """Read a manifest of this format version; Malformed names what is missing or mistyped."""
    return _manifest(d, tuple(_segment(s) for s in _list(d, "segments")))


def _manifest(d: Mapping[str, Any], segments: tuple[Segment, ...]) -> Manifest:
    try:
        return Manifest(
            build=_build(d),
            generation=int(d["generation"]),
            passage_count=int(d["passage_count"]),
            article_count=int(d["article_count"]),
            segments=segments,
            next_article=int(d["next_article"]),
            deleted=d.get("deleted"),
            sizes={str(k): int(v) for k, v in (d.get("sizes") or {}).items()},
            committed_at=d.get("committed_at"),
        )
    except KeyError as err:
        raise Malformed(f"it lacks {err.args[0]}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise Malformed(f"a field has the wrong type ({err})") from None


def _list(d: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    try:
        found = d[key]
    except KeyError:
        raise Malformed(f"it lacks {key}") from None
    if not isinstance(found, list) or not all(isinstance(x, Mapping) for x in found):
        raise Malformed(f"{key} is not a list of records")
    return found


def _segment(s: Mapping[str, Any]) -> Segment:
    try:
        parts = tuple(Files(str(name), tuple(str(f) for f in files))
                      for name, files in s["parts"].items())
        return replace(_bare_segment(s), parts=parts)
    except KeyError as err:
        raise Malformed(f"a segment lacks {err.args[0]}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise Malformed(f"a segment field has the wrong type ({err})") from None


def _bare_segment(s: Mapping[str, Any], first_id: int | None = None) -> Segment:
    """A segment's counts and layout, without its parts (format 2 keeps them at the top level)."""
    try:
        return Segment(first_id=int(s["first_id"]) if first_id is None else first_id,
                       passage_count=int(s["passage_count"]), article_count=int(s["article_count"]),
                       parts=(), layout=Layout.from_dict(s.get("vectors_index")))
    except KeyError as err:
        raise Malformed(f"it lacks {err.args[0]}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise Malformed(f"a field has the wrong type ({err})") from None


@dataclass(frozen=True)
class OldSegment:
    """A segment as format 2 or 3 recorded it: its counts, and its files under the keys of that
    format ("vectors", "passages", "rows", "bm25_matrix", "bm25_vocab"; format 2's BM25 files,
    kept under "bm25", are given the format-3 keys). Each part says which keys are its own."""

    segment: Segment  # without parts
    files: Mapping[str, str]


@dataclass(frozen=True)
class Old:
    """A manifest of format 2 or 3, as store.upgrade needs it: the same generation in this
    format, its segments not yet given their parts."""

    version: int
    manifest: Manifest  # its segments have no parts yet
    segments: tuple[OldSegment, ...]


# The keys under which formats 2 and 3 named a segment's files.
_OLD_KEYS = ("vectors", "passages", "rows", "bm25_matrix", "bm25_vocab")


def from_json_v3(d: Mapping[str, Any]) -> Old:
    """Read a format-3 manifest (a file per field of each segment); Malformed names what is
    missing or mistyped."""
    segments = tuple(OldSegment(_bare_segment(s), _old_files(s)) for s in _list(d, "segments"))
    return Old(3, _manifest(d, tuple(s.segment for s in segments)), segments)


def from_json_v2(d: Mapping[str, Any], next_article: int) -> Old:
    """Read a format-2 manifest (one segment, its files at the top level; fields added to format
    2 over time are optional, so an index written before them loads); Malformed names what is
    missing or mistyped."""
    entry = d.get("bm25") or {}
    if not isinstance(entry, Mapping):
        raise Malformed("bm25 is not a record")
    files = _old_files({**d, "bm25_matrix": entry.get("matrix"), "bm25_vocab": entry.get("vocab")})
    segment = _bare_segment(d, first_id=0)
    manifest = _manifest({**d, "next_article": next_article, "deleted": None}, (segment,))
    return Old(2, manifest, (OldSegment(segment, files),))


def _old_files(s: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(s[k]) for k in _OLD_KEYS if s.get(k)}


def _build(d: Mapping[str, Any]) -> Build:
    model = d["model"]
    chunker = d.get("chunker")
    return Build(
        # indexes from before int8 were all fp32
        model=Model(str(model["name"]), int(model["dim"]), str(model.get("precision", "fp32"))),
        next_id=int(d["next_id"]),
        chunker=None if not chunker else Chunking(
            int(chunker["max_tokens"]), int(chunker["overlap_tokens"]),
            int(chunker.get("splitter_version", 1))),
        lexical=_lexical(d.get("bm25")),
        encoder=d.get("encoder"),
        seeds=d.get("seeds"),
        title_version=d.get("title_version"),
    )


def _lexical(entry: Mapping[str, Any] | None) -> Lexical | None:
    if not entry:
        return None
    default = bm25.Params()
    params = bm25.Params(k1=float(entry.get("k1", default.k1)), b=float(entry.get("b", default.b)),
                         stemmer=str(entry.get("stemmer", default.stemmer)),
                         stopwords=str(entry.get("stopwords", default.stopwords)),
                         titles=bool(entry.get("titles", default.titles)))
    # A record from before a parameter existed was built without it: version 0 never matches,
    # so the next `qabot index` rebuilds the matrix (from the stored passages, nothing re-embedded).
    whole = all(k in entry for k in ("k1", "b", "stemmer", "stopwords", "titles"))
    version = int(entry.get("tokenizer_version", 0)) if whole else 0
    return Lexical(params, version)
