"""Plan the diff between seeds/ and the committed index, embed only what changed, commit."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import headline, signatures, store, vectors
from .catalog import ArticleRecord, CatalogView, Changes, PassageRecord
from .chunk import SPLITTER_VERSION, chunk_text
from .config import Settings
from .corpus import Article, BadSeed, check_seeds_folder, printable_name
from .embed import Embedder, OnnxEmbedder, Progress, SpreadsWork, TorchEmbedder, model_id
from .encoder import encoder_folder, encoder_problem
from .errors import (
    ModelUnavailable,
    NothingToIndex,
)
from .manifest import Build, Chunking, Lexical, Manifest, Model
from .sentvecs import Pooled

Log = Callable[[str], None]


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


def chunker_settings(settings: Settings) -> Chunking:
    """What the manifest records about chunking; any difference forces a rebuild."""
    return Chunking(settings.chunking.max_tokens, settings.chunking.overlap_tokens, SPLITTER_VERSION)


def lexical_current(manifest: Manifest, settings: Settings) -> bool:
    """True when the committed BM25 parts were built with these parameters."""
    entry = manifest.build.lexical
    return entry is not None and entry.current(settings.bm25)


def titles_current(manifest: Manifest) -> bool:
    """True when the committed titles were made by this qabot's headline rules."""
    return manifest.build.title_version == headline.TITLE_VERSION


def plan(
    articles: Sequence[Article],
    bad: Sequence[BadSeed],
    manifest: Manifest | None,
    settings: Settings,
    rebuild: bool = False,
    hashes: Mapping[str, str] | None = None,
    same: Sequence[str] = (),
) -> Plan:
    """Diff the seeds against the committed articles (`hashes`: doc id -> content hash); `same`
    are doc ids of files not read, known to hold the committed version (signatures.py)."""
    reason = _rebuild_reason(manifest, settings, rebuild)
    known: Mapping[str, str] = {} if reason or manifest is None or hashes is None else hashes
    unread = set(same)
    if not unread <= known.keys():
        raise ValueError("an unread article can only be unchanged from a committed one")
    added, changed, unchanged = [], [], list(same)
    for a in articles:
        old = known.get(a.doc_id)
        if old is None:
            added.append(a)
        elif old != a.content_hash:
            changed.append(a)
        else:
            unchanged.append(a.doc_id)
    # A file that is there but unreadable now keeps its last good version (an editor may be
    # half-way through saving it), and so does every article below a folder that can't be
    # listed; a file that is gone, or that qabot now refuses to read, is removed.
    files = {b.doc_id for b in bad if b.keep and not b.folder}
    folders = tuple(b.doc_id + "/" for b in bad if b.keep and b.folder)
    kept = [d for d in known if d in files or d.startswith(folders)] if bad else []
    present = {a.doc_id for a in articles} | unread | set(kept)
    removed = sorted(d for d in known if d not in present)
    return Plan(added, changed, removed, unchanged + kept, reason)


def _rebuild_reason(manifest: Manifest | None, settings: Settings, rebuild: bool) -> str | None:
    if manifest is None:
        return None
    if rebuild:
        return "--rebuild given"
    built = manifest.build
    if built.model.name != model_id(settings.model.name):
        return f"model changed from {built.model.name} to {model_id(settings.model.name)}"
    if built.model.precision != settings.model.precision:
        return f"model precision changed from {built.model.precision} to {settings.model.precision}"
    if built.chunker != chunker_settings(settings):
        now = chunker_settings(settings)
        return f"chunker settings changed from {_chunking(built.chunker)} to {_chunking(now)}"
    return None


def _chunking(c: Chunking | None) -> str:
    """"128 tokens, 32 overlap, splitter 2": a chunker record for a log line."""
    if c is None:
        return "unrecorded"
    return f"{c.max_tokens} tokens, {c.overlap_tokens} overlap, splitter {c.splitter_version}"


def run_index(
    settings: Settings,
    rebuild: bool = False,
    log: Log = print,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    wait: bool = True,
    verify: bool = False,
) -> Report:
    """Bring the index in line with the seeds folder; commit a new generation if anything changed.

    `embedder` None: the settings' model, loaded from the index's ONNX export (made when missing)
    only when there is something to embed. `verify`: read and hash every seed file, whatever the
    signature cache says (a file rewritten in place through mmap keeps its whole stat)."""
    started = time.perf_counter()
    index_dir = settings.index
    check_seeds_folder(settings.seeds)  # before the lock, which creates the index folder
    # The writer recovers, upgrades or repairs the index as it opens: what it holds then is
    # what this run builds on (nothing: a fresh build).
    with store.open_writer(settings, rebuild=rebuild, wait=wait, log=log) as writer:
        manifest, hashes = writer.manifest, writer.hashes
        if manifest is not None:
            _restore_encoder(settings, manifest, log)
        # Read the seeds only once the lock is ours: a run that waited for another writer must
        # diff the folder as it is now, or it would commit the view from before the wait
        # (bringing back an article deleted meanwhile, or undoing an edit). Files whose stat
        # says they hold the committed version are not read (signatures.py).
        known = ({} if verify or _reads_all(manifest, hashes, settings, rebuild)
                 else signatures.load(index_dir, settings.seeds))
        seen = signatures.read_seeds(settings.seeds, settings.paths.max_file_bytes, known, hashes or {})
        articles, bad = seen.articles, seen.bad
        the_plan = plan(articles, bad, manifest, settings, rebuild, hashes, seen.unchanged)
        if not articles and not the_plan.unchanged:
            raise NothingToIndex(
                f"no article in {settings.seeds} could be indexed"
                + (f" ({len(bad)} unreadable)" if bad else " (no *.txt files)")
                + "; the existing index, if any, was left as it is"
            )
        if the_plan.rebuild_reason:
            log(f"Rebuilding the whole index: {the_plan.rebuild_reason}.")
        if manifest is not None and _up_to_date(manifest, the_plan, settings):
            # Nothing changed, but a run killed inside a merge may have left one due: finish it.
            current = _merge_if_due(settings, writer, manifest, log)
            embedded, committed = 0, current is not manifest
        else:
            by_id = {a.doc_id: a for a in articles}
            current, embedded = _apply(settings, the_plan, writer, log, progress, embedder, by_id)
            committed = True
        if committed and current.layout.codec != settings.vectors.codec:
            log(f"Vectors stay float32 (exact) until the index has {vectors.PQ_MIN_POINTS} passages: "
                f"codec {settings.vectors.codec} learns its codes from that many ({current.passage_count} "
                "now).")
        if seen.entries != known:  # after the commit: its entries agree with the catalog now
            signatures.save(index_dir, settings.seeds, seen.entries)
    return _report(the_plan, bad, current, embedded, committed, started)


def _reads_all(
    manifest: Manifest | None, hashes: Mapping[str, str] | None, settings: Settings, rebuild: bool
) -> bool:
    """True when the run needs every seed's Article, not only the changed ones: a fresh build
    or a rebuild embeds them all, and new headline rules retitle every article (retitled)."""
    return (manifest is None or hashes is None or not titles_current(manifest)
            or _rebuild_reason(manifest, settings, rebuild) is not None)


def _up_to_date(manifest: Manifest, the_plan: Plan, settings: Settings) -> bool:
    """True when there is nothing to commit: the seeds match, every segment has every part, and
    BM25, the vector layout and the titles are what this qabot and these settings make."""
    return (not the_plan.rebuild_reason and the_plan.is_noop and _current(manifest, settings))


def _current(manifest: Manifest, settings: Settings) -> bool:
    """True when the committed generation is what this qabot and these settings write: a new
    segment can join it, and a merge would change nothing but fold segments."""
    return (lexical_current(manifest, settings) and store.complete(manifest)
            and _layout_current(manifest, settings) and titles_current(manifest))


def _report(
    the_plan: Plan, bad: Sequence[BadSeed], manifest: Manifest, embedded: int, committed: bool,
    started: float,
) -> Report:
    """The run's summary: the plan's counts, and the totals of the generation now current."""
    return Report(
        added=len(the_plan.added), updated=len(the_plan.changed), removed=len(the_plan.removed),
        unchanged=len(the_plan.unchanged), skipped=list(bad), passages_embedded=embedded,
        passage_count=manifest.passage_count, articles=manifest.article_count,
        seconds=time.perf_counter() - started, committed=committed,
        rebuild_reason=the_plan.rebuild_reason,
    )


def _restore_encoder(settings: Settings, manifest: Manifest, log: Log) -> None:
    """Export the model again when the folder the manifest names is missing or damaged
    (questions are encoded with it)."""
    folder = manifest.build.encoder
    if not folder or folder != encoder_folder(model_id(settings.model.name), settings.model.precision):
        return  # none, or another model's: the rebuild this calls for exports anew
    problem = encoder_problem(settings.index / folder)
    if problem:
        log(f"The model export {folder} {problem}: exporting it again.")
        shutil.rmtree(settings.index / folder, ignore_errors=True)
        load_embedder(settings, log)


def _layout_current(manifest: Manifest, settings: Settings) -> bool:
    """True when the committed vector index is what the settings ask for at its size."""
    layout = manifest.layout
    return layout == target_layout(settings, manifest.passage_count, layout)


def _apply(
    settings: Settings,
    the_plan: Plan,
    writer: store.Writer,
    log: Log,
    progress: Progress | None,
    embedder: Embedder | None,
    seeds: Mapping[str, Article],
) -> tuple[Manifest, int]:
    """Carry out the plan and commit the next generation: (its manifest, passages embedded).

    New and changed articles go into one new small segment when the index can take it (every
    part current: BM25, titles, vector layout): the commit then costs what changed. Otherwise
    every live passage is written as one segment (a merge; nothing is re-embedded). Past
    [segments] max_count segments, a second commit merges them (merge_plan)."""
    manifest = writer.manifest
    fresh = manifest is None or the_plan.rebuild_reason is not None
    used: Embedder | None = None  # removals, BM25 and layouts need no model
    if fresh or the_plan.to_embed:
        used = embedder if embedder is not None else load_embedder(settings, log)
    model, encoder = _model(settings, None if fresh else manifest, used)
    chunks = _chunk_all(the_plan.to_embed, used, settings) if used is not None else []
    vecs, pooled = _embed_chunks(chunks, used, settings, log, progress) if used is not None \
        else (np.zeros((0, model.dim), dtype=np.float32), None)
    next_id = 0 if fresh or manifest is None else manifest.build.next_id
    ids = np.arange(next_id, next_id + len(vecs), dtype=np.int64)
    stale = the_plan.removed + [a.doc_id for a in the_plan.changed]
    changes = _changes(chunks, ids, stale, None if fresh else writer, seeds, log)
    build = _build(settings, model, encoder, int(next_id + len(ids)))
    if fresh or manifest is None:
        return writer.merge(build, changes, vecs, fresh=True, sentences=pooled), len(ids)
    if the_plan.is_noop or not _current(manifest, settings):
        return writer.merge(build, changes, vecs, sentences=pooled), len(ids)
    committed = writer.add(build, changes, vecs, pooled)
    # The new articles are answerable already: what follows only keeps search as fast.
    return _merge_if_due(settings, writer, committed, log), len(ids)


def _merge_if_due(settings: Settings, writer: store.Writer, committed: Manifest, log: Log) -> Manifest:
    """The generation after the merge merge_plan asks for, committed; `committed` when none."""
    merge = merge_plan(committed, settings)
    if merge == "small":
        log(f"Merging the index's {len(committed.segments) - 1} small segments into one…")
        return writer.merge_small()
    if merge == "all":
        log(f"Merging the index's {len(committed.segments)} segments into one (nothing is re-embedded)…")
        return writer.merge()
    return committed


def merge_plan(manifest: Manifest, settings: Settings) -> str:
    """What the generation needs merged: "all" its segments into one when over a quarter of its
    stored passages are deleted or its size calls for another vector layout (or, past
    [segments] max_count, when the small segments have grown to an eighth of the first);
    "small" ones (all but the first) into one past max_count; "" nothing.

    Merging the small segments alone costs what they hold, so a commit of one article never waits
    for the first segment to be rewritten (16 s at a million passages) but every eighth of its size.
    """
    stored = sum(s.passage_count for s in manifest.segments)
    if (stored - manifest.passage_count) * 4 > stored or not _layout_current(manifest, settings):
        return "all"
    if len(manifest.segments) <= settings.segments.max_count:
        return ""
    small = stored - manifest.segments[0].passage_count
    few = len(manifest.segments) < 3  # one small segment: folding it alone changes nothing
    return "all" if few or small * 8 > manifest.segments[0].passage_count else "small"


def _model(
    settings: Settings, manifest: Manifest | None, embedder: Embedder | None
) -> tuple[Model, str | None]:
    """The model the next generation records, and the export questions will be encoded with:
    the committed ones when nothing is embedded (`embedder` None)."""
    if embedder is None:
        if manifest is None:
            raise AssertionError("a fresh index is built with a model")
        return manifest.build.model, manifest.build.encoder
    # int8 never falls back to torch (load_embedder), so the vectors have this precision
    return Model(embedder.name, embedder.dim, settings.model.precision), _export_used(settings, embedder)


def _export_used(settings: Settings, embedder: Embedder) -> str | None:
    """The folder of the index's export of the settings' model when the vectors come from that
    model; None for another embedder (a test's), or when the export failed and torch embeds."""
    if embedder.name != model_id(settings.model.name):
        return None
    folder = encoder_folder(model_id(settings.model.name), settings.model.precision)
    return folder if encoder_problem(settings.index / folder) is None else None


def _embed_chunks(
    chunks: Sequence[tuple[Article, list[tuple[int, int]]]], embedder: Embedder, settings: Settings,
    log: Log, progress: Progress | None,
) -> tuple[np.ndarray, list[Pooled] | None]:
    """The vectors of the chunks' passages, in order, and their sentence vectors when the
    embedder pools them in the same run (None: the writer pools them; Ray workers don't)."""
    texts = [a.text[s:e] for a, spans in chunks for s, e in spans]
    if texts:
        log(f"Embedding {len(texts)} passages from {len(chunks)} articles…")
    if isinstance(embedder, SpreadsWork):
        return embedder.encode_all(texts, settings.model.batch_size, progress), None
    return _embed(embedder, texts, settings.model.batch_size, progress)


def _changes(
    chunks: Sequence[tuple[Article, list[tuple[int, int]]]], ids: np.ndarray, stale: list[str],
    base: store.Writer | None, seeds: Mapping[str, Article], log: Log,
) -> Changes:
    """What the commit writes: the chunked articles' records (passages numbered by `ids`), the
    `stale` articles gone, and new titles for kept articles when the headline rules changed
    (`base`: the writer of the generation built on; None for a fresh one)."""
    it = iter(ids.tolist())
    articles = [
        (ArticleRecord(article.doc_id, article.content_hash,
                       article.date.isoformat() if article.date else None, article.title),
         [PassageRecord(next(it), article.doc_id, s, e, article.text[s:e]) for s, e in spans])
        for article, spans in chunks
    ]
    new_titles: dict[str, str] = {}
    if base is not None and base.manifest is not None and not titles_current(base.manifest):
        new_titles = retitled(base.catalog, seeds, set(stale))
        if new_titles:
            log(f"Updating the titles of {len(new_titles)} articles (nothing is re-embedded)…")
    return Changes(removed=list(stale), articles=articles, titles=new_titles)


def _build(settings: Settings, model: Model, encoder: str | None, next_id: int) -> Build:
    """What the next generation's manifest records about how it was built."""
    return Build(
        model=model,
        next_id=next_id,
        chunker=chunker_settings(settings),
        lexical=Lexical(settings.bm25),
        encoder=encoder,
        # JSON can't hold a path that is not UTF-8; the escaped form only names it in citations
        seeds=printable_name(str(settings.seeds.resolve())),
        title_version=headline.TITLE_VERSION,
    )


def target_layout(settings: Settings, count: int, current: vectors.Layout | None) -> vectors.Layout:
    """The vector index layout the settings ask for at this many passages."""
    return vectors.choose(count, settings.vectors, current)


def retitled(catalog: CatalogView, seeds: Mapping[str, Article], skip: set[str]) -> dict[str, str]:
    """doc id -> title, for stored articles (not in `skip`) whose title the seeds now give
    differently. An article whose file is unreadable now keeps its stored title."""
    return {a.doc_id: seeds[a.doc_id].title for a in catalog.articles()
            if a.doc_id in seeds and a.doc_id not in skip and seeds[a.doc_id].title != a.title}


def load_embedder(settings: Settings, log: Log) -> Embedder:
    """The settings' model: the index's ONNX export when it has one (fast); else torch, exported
    into the index first. Call it holding the index's write lock (run_index does)."""
    index_dir = settings.index
    folder = encoder_folder(model_id(settings.model.name), settings.model.precision)
    if (index_dir / folder / "encoder.json").is_file():
        return OnnxEmbedder(index_dir / folder)
    log(f"Loading embedding model {settings.model.name} (first run: ~10 s)…")
    torch_embedder = TorchEmbedder(settings.model.name)
    try:
        folder = torch_embedder.export_onnx(index_dir, settings.model.precision)
    except Exception as err:  # export is an optimisation: without it queries use torch
        if settings.model.precision != "fp32":  # torch is fp32: it would not be what was asked for
            raise ModelUnavailable(f"could not export the model as {settings.model.precision} ONNX "
                                   f"({err}); set [model] precision = \"fp32\"") from err
        log(f"Could not export the model to ONNX ({err}); questions will load torch (slower).")
        return torch_embedder
    # Encode with the exported model too: it is faster than torch here, and it is the very
    # encoder questions will go through, so passages and questions share one numeric path.
    return OnnxEmbedder(index_dir / folder)


def _chunk_all(
    articles: Sequence[Article], embedder: Embedder, settings: Settings
) -> list[tuple[Article, list[tuple[int, int]]]]:
    return [
        (a, chunk_text(a.text, a.body_start, embedder.count_tokens,
                       settings.chunking.max_tokens, settings.chunking.overlap_tokens))
        for a in articles
    ]


def _embed(embedder: Embedder, texts: list[str], batch_size: int,
           progress: Progress | None) -> tuple[np.ndarray, list[Pooled] | None]:
    """Embed in slices so progress can be told; vectors come back unit-length float32, with
    each passage's sentence vectors when the embedder pools them (OnnxEmbedder)."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32), None
    tell = progress or (lambda done, total: None)
    step = batch_size * 8
    # One sort by word pieces over all passages, not only within each slice: batches of like
    # lengths pad less. On the news dev set padding fell from 3.4 % of the tokens fed (slices
    # sorted alone) to 0.1 %, for one tokenizer pass (characters as the key left 1.9 %).
    order = np.argsort(np.array(embedder.count_tokens(texts)), kind="stable")
    parts: list[np.ndarray] = []
    pooling = embedder if isinstance(embedder, OnnxEmbedder) else None
    pooled: list[Pooled | None] = [None] * len(texts)
    tell(0, len(texts))  # starts the clock of the rate and ETA
    done = 0
    for i in range(0, len(texts), step):
        at = order[i : i + step]
        if pooling is not None:
            vecs, sentences = pooling.encode_pooled([texts[j] for j in at], batch_size)
            for j, p in zip(at.tolist(), sentences, strict=True):
                pooled[j] = p
        else:
            vecs = embedder.encode([texts[j] for j in at], batch_size)
        parts.append(vecs)
        done += len(parts[-1])
        tell(done, len(texts))
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    out[order] = np.vstack(parts)
    return out, [p for p in pooled if p is not None] if pooling is not None else None
