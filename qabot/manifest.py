"""The manifest: what a committed generation holds and how it was built, as typed records.

This module only maps the record to and from its JSON form (the keys on disk are those of
format 2 since it began, so an existing index loads unchanged); store.py is the one place that
reads and writes the file. Everyone else reads fields, never string keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import bm25
from .vectors import Layout

FORMAT = "qabot-index"
FORMAT_VERSION = 2  # 1: one IndexFlatIP + passages.jsonl + articles in the manifest (store.upgrade)
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
    """The BM25 part: the parameters its matrix was built with, and its files (None while the
    part is missing: an index from before BM25, or one whose BM25 files were damaged)."""

    params: bm25.Params
    tokenizer_version: int = bm25.TOKENIZER_VERSION
    matrix: str | None = None
    vocab: str | None = None

    @property
    def files(self) -> list[str]:
        """Its files, relative to the index folder."""
        return [f for f in (self.matrix, self.vocab) if f is not None]

    def current(self, params: bm25.Params) -> bool:
        """True when its matrix exists and was built with these parameters by this qabot."""
        return (self.matrix is not None and self.params == params
                and self.tokenizer_version == bm25.TOKENIZER_VERSION)

    def same_tokens(self, params: bm25.Params) -> bool:
        """True when its matrix tokenized passages as `params` would (k1 and b may differ)."""
        def tokens(p: bm25.Params) -> tuple[str, str, bool]:
            return (p.stemmer, p.stopwords, p.titles)

        return self.tokenizer_version == bm25.TOKENIZER_VERSION and tokens(self.params) == tokens(params)

    def without_files(self) -> Lexical:
        """The same parameters with no files: what the next commit rebuilds."""
        return replace(self, matrix=None, vocab=None)


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
class Manifest:
    """A committed generation: its build, counts and files (relative to the index folder)."""

    build: Build
    generation: int
    passage_count: int
    article_count: int
    vectors: str  # gen-NNNNNN/vectors.faiss
    passages: str  # gen-NNNNNN/passages.sqlite
    rows: str  # gen-NNNNNN/rows.npz
    layout: Layout = field(default_factory=Layout)
    sizes: Mapping[str, int] = field(default_factory=dict)  # bytes written, file -> size
    committed_at: str | None = None

    @property
    def folder(self) -> str:
        """The generation's folder name, gen-NNNNNN."""
        return self.vectors.split("/")[0]

    @property
    def files(self) -> list[str]:
        """The data files it names, relative to the index folder."""
        lexical = self.build.lexical.files if self.build.lexical else []
        return [self.vectors, self.passages, self.rows, *lexical]


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
        "next_id": b.next_id, "generation": m.generation, "passage_count": m.passage_count,
        "article_count": m.article_count, "vectors": m.vectors, "vectors_index": m.layout.as_dict(),
        "passages": m.passages, "rows": m.rows, "sizes": dict(m.sizes), "committed_at": m.committed_at,
    }
    if b.lexical is not None:
        lex = b.lexical
        out["bm25"] = {**bm25_json(lex.params), "tokenizer_version": lex.tokenizer_version,
                       **({"matrix": lex.matrix} if lex.matrix else {}),
                       **({"vocab": lex.vocab} if lex.vocab else {})}
    return out


def bm25_json(p: bm25.Params) -> dict[str, Any]:
    """The manifest's record of BM25 parameters (keys as format 2 has always written them)."""
    return {"k1": p.k1, "b": p.b, "stemmer": p.stemmer, "stopwords": p.stopwords,
            "titles": p.titles, "method": "lucene"}


def from_json(d: Mapping[str, Any]) -> Manifest:
    """Read a format-2 manifest; Malformed names what is missing or mistyped.

    Fields added to format 2 over time are optional, so an index written before them loads.
    """
    try:
        model = d["model"]
        chunker = d.get("chunker")
        build = Build(
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
        return Manifest(
            build=build,
            generation=int(d["generation"]),
            passage_count=int(d["passage_count"]),
            article_count=int(d["article_count"]),
            vectors=str(d["vectors"]),
            passages=str(d["passages"]),
            rows=str(d["rows"]),
            layout=Layout.from_dict(d.get("vectors_index")),
            sizes={str(k): int(v) for k, v in (d.get("sizes") or {}).items()},
            committed_at=d.get("committed_at"),
        )
    except KeyError as err:
        raise Malformed(f"it lacks {err.args[0]}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise Malformed(f"a field has the wrong type ({err})") from None


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
    return Lexical(params, version, entry.get("matrix"), entry.get("vocab"))
