"""Plan the diff between seeds/ and the committed index, embed only what changed, commit."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25, store
from .chunk import SPLITTER_VERSION, chunk_text
from .config import Settings
from .corpus import Article, BadSeed, read_corpus
from .embed import Embedder, OnnxEmbedder, TorchEmbedder, encoder_folder, model_id
from .errors import NothingToIndex

Log = Callable[[str], None]
# How passages become vectors: (embedder, texts, batch_size, progress) -> unit float32 rows.
# The default runs in this process; `qabot index --ray` passes one that runs on a Ray cluster.
Encode = Callable[["Embedder", list[str], int, bool], np.ndarray]


@dataclass(frozen=True)
class Plan:
    """What an index run will do, article by article."""

    added: list[Article]
    changed: list[Article]
    removed: list[str]
    unchanged: list[str]
    rebuild_reason: str | None = None

    @property
    def to_embed(self) -> list[Article]:
        """Articles whose passages must be (re)computed."""
        return self.added + self.changed

    @property
    def is_noop(self) -> bool:
        """True when the committed index already matches the seeds."""
        return not (self.added or self.changed or self.removed)


@dataclass
class Report:
    """The outcome of one `qabot index` run, for the summary line."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[BadSeed] = field(default_factory=list)
    passages_embedded: int = 0
    passage_count: int = 0
    articles: int = 0
    seconds: float = 0.0
    committed: bool = False
    rebuild_reason: str | None = None

    def summary(self) -> str:
        """One line a person can read at a glance."""
        verb = "Indexed" if self.committed else "Index up to date:"
        return (
            f"{verb} {self.articles} articles, {self.passage_count} passages "
            f"({self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped) in {self.seconds:.1f}s"
        )


def chunker_settings(settings: Settings) -> dict[str, int]:
    """What the manifest records about chunking; any difference forces a rebuild."""
    return {"max_tokens": settings.chunk_tokens, "overlap_tokens": settings.chunk_overlap,
            "splitter_version": SPLITTER_VERSION}


def bm25_params(settings: Settings) -> bm25.Params:
    """The BM25 parameters the settings ask for."""
    return bm25.Params(k1=settings.bm25_k1, b=settings.bm25_b, stemmer=settings.bm25_stemmer,
                       stopwords=settings.bm25_stopwords, titles=settings.bm25_titles)


def lexical_current(manifest: dict[str, Any], settings: Settings) -> bool:
    """True when the committed BM25 part exists and was built with these parameters."""
    entry = manifest.get("bm25") or {}
    return "matrix" in entry and all(entry.get(k) == v for k, v in bm25_params(settings).as_dict().items())


def plan(
    articles: Sequence[Article],
    bad: Sequence[BadSeed],
    manifest: dict[str, Any] | None,
    settings: Settings,
    rebuild: bool = False,
) -> Plan:
    """Diff the seeds against the manifest by content hash."""
    reason = _rebuild_reason(manifest, settings, rebuild)
    known: dict[str, Any] = {} if reason or manifest is None else manifest["articles"]
    added, changed, unchanged = [], [], []
    for a in articles:
        old = known.get(a.doc_id)
        if old is None:
            added.append(a)
        elif old["hash"] != a.content_hash:
            changed.append(a)
        else:
            unchanged.append(a.doc_id)
    # A file that is there but unreadable now keeps its last good version (an editor may be
    # half-way through saving it); only a file that is gone is removed.
    kept = [b.doc_id for b in bad if b.doc_id in known]
    present = {a.doc_id for a in articles} | set(kept)
    removed = sorted(d for d in known if d not in present)
    return Plan(added, changed, removed, unchanged + kept, reason)


def _rebuild_reason(manifest: dict[str, Any] | None, settings: Settings, rebuild: bool) -> str | None:
    if manifest is None:
        return None
    if rebuild:
        return "--rebuild given"
    if manifest.get("format_version") != store.FORMAT_VERSION:
        return f"index format {manifest.get('format_version')} → {store.FORMAT_VERSION}"
    if manifest["model"]["name"] != model_id(settings.model):
        return f"model changed from {manifest['model']['name']} to {model_id(settings.model)}"
    if manifest.get("chunker") != chunker_settings(settings):
        return f"chunker settings changed from {manifest.get('chunker')} to {chunker_settings(settings)}"
    return None


def run_index(
    settings: Settings,
    rebuild: bool = False,
    log: Log = print,
    progress: bool = True,
    embedder: Embedder | None = None,
    wait: bool = True,
    encode: Encode | None = None,
) -> Report:
    """Bring the index in line with the seeds folder; commit a new generation if anything changed."""
    started = time.perf_counter()
    index_dir = settings.index
    articles, bad = read_corpus(settings.seeds)
    with store.WriteLock(index_dir, wait=wait, notify=log):
        try:
            manifest = store.load_manifest(index_dir)
        except Exception as err:  # unreadable manifest: a rebuild replaces it
            log(f"Existing index unreadable ({err}); rebuilding.")
            manifest = None
        the_plan = plan(articles, bad, manifest, settings, rebuild)
        report = Report(skipped=list(bad), rebuild_reason=the_plan.rebuild_reason)
        if not articles and not the_plan.unchanged:
            raise NothingToIndex(
                f"no article in {settings.seeds} could be indexed"
                + (f" ({len(bad)} unreadable)" if bad else " (no *.txt files)")
                + "; the existing index, if any, was left as it is"
            )
        if the_plan.rebuild_reason:
            log(f"Rebuilding the whole index: {the_plan.rebuild_reason}.")
        if (manifest is not None and not the_plan.rebuild_reason and the_plan.is_noop
                and lexical_current(manifest, settings)):
            report.unchanged = len(the_plan.unchanged)
            report.articles = len(manifest["articles"])
            report.passage_count = manifest["passage_count"]
        else:
            manifest = _apply(settings, the_plan, manifest, report, log, progress, embedder,
                              encode or _embed)
            report.committed = True
    report.seconds = time.perf_counter() - started
    return report


def _apply(
    settings: Settings,
    the_plan: Plan,
    manifest: dict[str, Any] | None,
    report: Report,
    log: Log,
    progress: bool,
    embedder: Embedder | None,
    encode: Encode,
) -> dict[str, Any]:
    index_dir = settings.index
    fresh = manifest is None or the_plan.rebuild_reason is not None
    model: dict[str, Any] = {} if manifest is None else manifest["model"]
    encoder: str | None = None if manifest is None or fresh else manifest.get("encoder")
    if embedder is None and (fresh or the_plan.to_embed):  # removals and BM25 need no model
        embedder, encoder = _load_embedder(settings, index_dir, log)
    if embedder is not None:
        model = {"name": embedder.name, "dim": embedder.dim}
    chunks = _chunk_all(the_plan.to_embed, embedder, settings) if embedder is not None else []
    texts = [a.text[s:e] for a, spans in chunks for s, e in spans]
    if texts:
        log(f"Embedding {len(texts)} passages from {len(the_plan.to_embed)} articles…")
    vecs = encode(embedder, texts, settings.batch_size, progress) if embedder is not None else None

    previous: bm25.Lexical | None = None
    if fresh or manifest is None:
        vectors, passages, articles_meta, next_id = store.new_vectors(model["dim"]), {}, {}, 0
    else:
        snap = store.load_snapshot(index_dir, tokens=True)
        vectors, passages, previous = snap.vectors, snap.passages, snap.lexical
        articles_meta, next_id = dict(manifest["articles"]), int(manifest["next_id"])
        if not bm25_params(settings).same_tokens(manifest.get("bm25") or {}):
            previous = None
    stale = the_plan.removed + [a.doc_id for a in the_plan.changed]
    old_ids = [i for d in stale for i in articles_meta.pop(d, {}).get("ids", [])]
    store.remove_ids(vectors, old_ids)
    for i in old_ids:
        passages.pop(i, None)

    ids = np.arange(next_id, next_id + len(texts), dtype=np.int64)
    if len(texts) and vecs is not None:
        vectors.add_with_ids(vecs, ids)
    it = iter(ids.tolist())
    for article, spans in chunks:
        pids = []
        for s, e in spans:
            pid = next(it)
            passages[pid] = store.PassageRecord(pid, article.doc_id, s, e, article.text[s:e])
            pids.append(pid)
        articles_meta[article.doc_id] = {
            "hash": article.content_hash, "date": article.date.isoformat() if article.date else None,
            "title": article.title, "ids": pids,
        }
    params = bm25_params(settings)
    if the_plan.is_noop and not fresh:
        log("Building the BM25 index from the stored passages (nothing is re-embedded)…")
    lexical = bm25.build(lexical_texts(passages, articles_meta, params.titles), params, previous)
    new_manifest = {
        "model": model,
        "chunker": chunker_settings(settings),
        "bm25": params.as_dict(),
        "encoder": encoder,
        "seeds": str(settings.seeds.resolve()),
        "next_id": int(next_id + len(texts)),
        "articles": dict(sorted(articles_meta.items())),
    }
    committed = store.commit(index_dir, new_manifest, vectors,
                             (passages[i] for i in sorted(passages)), lexical)
    report.added, report.updated = len(the_plan.added), len(the_plan.changed)
    report.removed, report.unchanged = len(the_plan.removed), len(the_plan.unchanged)
    report.passages_embedded = len(texts)
    report.passage_count = committed["passage_count"]
    report.articles = len(committed["articles"])
    return committed


def lexical_texts(
    passages: dict[int, store.PassageRecord], articles: dict[str, Any], titles: bool
) -> list[tuple[int, str]]:
    """What BM25 indexes: each passage, after its first with the article's title in front
    (a headline names the story's subject; nDCG@10 +0.006 on SciFact, docs/retrieval.md)."""
    out = []
    for i in sorted(passages):
        p = passages[i]
        meta = articles[p.doc_id]
        out.append((i, f"{meta['title']}\n{p.text}" if titles and meta["ids"][0] != i else p.text))
    return out


def _load_embedder(settings: Settings, index_dir: Path, log: Log) -> tuple[Embedder, str | None]:
    """The ONNX encoder when the index has one for this model (fast); else torch, and export."""
    folder = encoder_folder(model_id(settings.model))
    if (index_dir / folder / "encoder.json").is_file():
        return OnnxEmbedder(index_dir / folder), folder
    log(f"Loading embedding model {settings.model} (first run: ~10 s)…")
    torch_embedder = TorchEmbedder(settings.model)
    try:
        folder = torch_embedder.export_onnx(index_dir)
    except Exception as err:  # export is an optimisation: without it queries use torch
        log(f"Could not export the model to ONNX ({err}); questions will load torch (slower).")
        return torch_embedder, None
    # Encode with the exported model too: it is faster than torch here, and it is the very
    # encoder questions will go through, so passages and questions share one numeric path.
    return OnnxEmbedder(index_dir / folder), folder


def _chunk_all(
    articles: Sequence[Article], embedder: Embedder, settings: Settings
) -> list[tuple[Article, list[tuple[int, int]]]]:
    return [
        (a, chunk_text(a.text, a.body_start, embedder.count_tokens,
                       settings.chunk_tokens, settings.chunk_overlap))
        for a in articles
    ]


def _embed(embedder: Embedder, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    """Embed in slices so a progress bar can move; vectors come back unit-length float32."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    from tqdm import tqdm

    step = batch_size * 8
    parts = []
    with tqdm(total=len(texts), unit="passage", desc="Embedding", disable=not progress or None,
              leave=False) as bar:
        for i in range(0, len(texts), step):
            parts.append(embedder.encode(texts[i : i + step], batch_size))
            bar.update(len(parts[-1]))
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
