"""Plan the diff between seeds/ and the committed index, embed only what changed, commit."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25, headline, signatures, store, vectors
from .catalog import ArticleRecord, CatalogView, Changes, PassageRecord, deleting
from .chunk import SPLITTER_VERSION, chunk_text
from .config import Settings
from .corpus import Article, BadSeed, check_seeds_folder, printable_name
from .embed import Embedder, OnnxEmbedder, Progress, SpreadsWork, TorchEmbedder, model_id
from .encoder import encoder_folder, encoder_problem
from .errors import (
    IndexDamaged,
    IndexIncompatible,
    IndexOutdated,
    ManifestDamaged,
    ModelUnavailable,
    NothingToIndex,
)
from .manifest import FORMAT_VERSION, Build, Chunking, Lexical, Manifest, Model

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
    """True when the committed BM25 part exists and was built with these parameters."""
    entry = manifest.build.lexical
    return entry is not None and entry.current(settings.bm25) and manifest.has_lexical


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
    with store.WriteLock(index_dir, wait=wait, notify=log):
        manifest, hashes = _committed(index_dir, log, rebuild)
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
            by_id = {a.doc_id: a for a in articles}
            current = _merge_if_due(settings, manifest, log, embedder, by_id)
            embedded, committed = 0, current is not manifest
        else:
            by_id = {a.doc_id: a for a in articles}
            current, embedded = _apply(settings, the_plan, manifest, log, progress, embedder, by_id)
            committed = True
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
    """True when there is nothing to commit: the seeds match, and BM25, the vector layout and
    the titles are what this qabot and these settings make."""
    return (not the_plan.rebuild_reason and the_plan.is_noop and lexical_current(manifest, settings)
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


def _committed(
    index_dir: Path, log: Log, rebuild: bool = False
) -> tuple[Manifest | None, dict[str, str] | None]:
    """The committed manifest and its articles' hashes (upgrading an older format in place);
    (None, None) when there is no index, or none worth keeping: a fresh build replaces it.

    A damaged manifest.json is recovered from the newest intact generation, so only what
    changed since that generation is embedded again; `rebuild` starts clean instead. Only
    damage is handled here: any other error is a bug and propagates.
    """
    try:
        manifest = store.load_manifest(index_dir)
    except ManifestDamaged as err:
        if rebuild:
            log(f"{err}: starting a new index.")
            return None, None
        manifest = store.recover(index_dir)
        if manifest is None:
            log(f"{err}: no intact generation to recover, rebuilding from the seeds.")
            return None, None
        log(f"The manifest was damaged: recovered generation {manifest.generation} "
            f"({manifest.article_count} articles, committed {manifest.committed_at}).")
    except IndexOutdated as err:
        if err.version in (1, 2) and not rebuild:
            log("Upgrading the index to the current format (nothing is re-embedded)…")
            manifest = store.upgrade(index_dir)
        else:
            log(f"Rebuilding the whole index: index format {err.version} → {FORMAT_VERSION}.")
            return None, None
    except IndexIncompatible:
        if not rebuild:
            raise
        return None, None  # another program's folder: --rebuild replaces it, as its message says
    if manifest is None:
        return None, None
    problems = store.check_generation(index_dir, manifest)
    hashes = None if problems else _hashes(index_dir, manifest)
    if hashes is None:
        damage = store.first_problem(problems) if problems else "its catalog can't be read"
        return _repair(index_dir, manifest, problems, damage, log, rebuild)
    return manifest, hashes


def _repair(
    index_dir: Path, damaged: Manifest, problems: Mapping[str, str], damage: str, log: Log,
    rebuild: bool,
) -> tuple[Manifest | None, dict[str, str] | None]:
    """The manifest and hashes to build on when the current generation is damaged: the newest
    whole generation (the previous one is kept for readers), so only what changed since it is
    embedded again; else, when only BM25 is lost, the same generation without it (rebuilt from
    the stored passages); else nothing: a fresh build from the seeds."""
    if not rebuild:
        recovered = store.recover(index_dir)
        hashes = None if recovered is None else _hashes(index_dir, recovered)
        if recovered is not None and hashes is not None:
            log(f"The index is damaged ({damage}): recovered generation {recovered.generation} "
                f"({recovered.article_count} articles); bringing it up to date.")
            return recovered, hashes
        lexical = {f for s in damaged.segments for f in s.lexical_files}
        hashes = _hashes(index_dir, damaged) if problems and set(problems) <= lexical else None
        if hashes is not None:
            log(f"The index is damaged ({damage}): rebuilding its BM25 part (nothing is re-embedded).")
            return store.drop_lexical(index_dir, damaged), hashes
    log(f"The index is damaged ({damage}): rebuilding it from the seeds.")
    return None, None


def _hashes(index_dir: Path, manifest: Manifest) -> dict[str, str] | None:
    """doc id -> content hash of the generation's articles; None when its catalog is damaged."""
    try:
        catalog = store.open_catalog(index_dir, manifest)
    except (FileNotFoundError, IndexDamaged):
        return None
    try:
        return catalog.hashes()
    except IndexDamaged:
        return None
    finally:
        catalog.close()


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
    manifest: Manifest | None,
    log: Log,
    progress: Progress | None,
    embedder: Embedder | None,
    seeds: Mapping[str, Article],
) -> tuple[Manifest, int]:
    """Carry out the plan and commit the next generation: (its manifest, passages embedded).

    New and changed articles go into one new small segment when the index can take it (its
    BM25 part, titles and vector layout are current): the commit then costs what changed.
    Otherwise every live passage is written as one segment (a merge; nothing is re-embedded).
    Past [segments] max_count segments, a second commit merges them (merge_plan)."""
    fresh = manifest is None or the_plan.rebuild_reason is not None
    if fresh or manifest is None or not _appendable(manifest, the_plan, settings):
        return _rewrite(settings, the_plan, manifest, log, progress, embedder, seeds)
    committed, embedded = _append(settings, the_plan, manifest, log, progress, embedder, seeds)
    # The new articles are answerable already: what follows only keeps search as fast.
    return _merge_if_due(settings, committed, log, embedder, seeds), embedded


def _merge_if_due(
    settings: Settings, committed: Manifest, log: Log, embedder: Embedder | None,
    seeds: Mapping[str, Article],
) -> Manifest:
    """The generation after the merge merge_plan asks for, committed; `committed` when none."""
    merge = merge_plan(committed, settings)
    if merge == "small":
        log(f"Merging the index's {len(committed.segments) - 1} small segments into one…")
        return _merge_small(settings, committed)
    if merge == "all":
        log(f"Merging the index's {len(committed.segments)} segments into one (nothing is re-embedded)…")
        noop = Plan([], [], [], [])
        return _rewrite(settings, noop, committed, log, None, embedder, seeds)[0]
    return committed


def _appendable(manifest: Manifest, the_plan: Plan, settings: Settings) -> bool:
    """True when the plan's changes can go into a new segment of this generation."""
    return (not the_plan.is_noop and lexical_current(manifest, settings)
            and titles_current(manifest) and _layout_current(manifest, settings))


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


def _merge_small(settings: Settings, manifest: Manifest) -> Manifest:
    """Commit the generation with its segments after the first folded into one."""
    base = store.load_snapshot(settings.index, tokens=True)
    try:
        return store.commit_merged_tail(settings.index, base, 1)
    finally:
        base.catalog.close()


def _append(
    settings: Settings, the_plan: Plan, manifest: Manifest, log: Log, progress: Progress | None,
    embedder: Embedder | None, seeds: Mapping[str, Article],
) -> tuple[Manifest, int]:
    """Commit the plan as one new segment of the new and changed articles, the old versions
    and removed articles added to the deletion list."""
    used = None
    if the_plan.to_embed:
        used = embedder if embedder is not None else load_embedder(settings, log)
    model, encoder = _model(settings, manifest, used)
    chunks = _chunk_all(the_plan.to_embed, used, settings) if used is not None else []
    vecs = _embed_chunks(chunks, used, settings, log, progress) if used is not None \
        else np.zeros((0, model.dim), dtype=np.float32)
    base = store.load_snapshot(settings.index)
    try:
        stale = the_plan.removed + [a.doc_id for a in the_plan.changed]
        deleted = deleting(base.catalog, stale)
        next_id = base.manifest.build.next_id
        ids = np.arange(next_id, next_id + len(vecs), dtype=np.int64)
        index = vectors.new_index(vectors.Layout(), model.dim)
        vectors.add(index, ids, vecs)
        changes = _changes(chunks, ids, [], base, seeds, log)
        params = settings.bm25
        lexical = bm25.build(bm25.inputs(changes, np.zeros(0, np.int64), None, params.titles, None),
                             params)
        build = _build(settings, model, encoder, int(next_id + len(ids)))
        committed = store.commit_segment(settings.index, build, base, index, changes, lexical, deleted)
    finally:
        base.catalog.close()
    return committed, len(ids)


def _rewrite(
    settings: Settings,
    the_plan: Plan,
    manifest: Manifest | None,
    log: Log,
    progress: Progress | None,
    embedder: Embedder | None,
    seeds: Mapping[str, Article],
) -> tuple[Manifest, int]:
    """Commit the plan as a generation of one segment holding every live passage."""
    fresh = manifest is None or the_plan.rebuild_reason is not None
    used: Embedder | None = None  # removals and BM25 need no model
    if fresh or the_plan.to_embed:
        used = embedder if embedder is not None else load_embedder(settings, log)
    model, encoder = _model(settings, manifest, used)
    chunks = _chunk_all(the_plan.to_embed, used, settings) if used is not None else []
    vecs = _embed_chunks(chunks, used, settings, log, progress) if used is not None else None
    base = None if fresh else store.load_snapshot(settings.index, tokens=True, writable=True)
    try:
        stale = the_plan.removed + [a.doc_id for a in the_plan.changed]
        old_ids = _stored_ids(base, stale)
        next_id = 0 if base is None else base.manifest.build.next_id
        ids = np.arange(next_id, next_id + (0 if vecs is None else len(vecs)), dtype=np.int64)
        index, layout = _update_vectors(settings, base, model.dim, old_ids, ids, vecs, log)
        changes = _changes(chunks, ids, stale, base, seeds, log)
        lexical = _lexical(settings, base, old_ids, changes, the_plan.is_noop, log)
        build = _build(settings, model, encoder, int(next_id + len(ids)))
        committed = store.commit(settings.index, build, index, layout, changes, base, lexical)
    finally:
        if base is not None:
            base.catalog.close()
    return committed, len(ids)


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
) -> np.ndarray:
    """The vectors of the chunks' passages, in order."""
    texts = [a.text[s:e] for a, spans in chunks for s, e in spans]
    if texts:
        log(f"Embedding {len(texts)} passages from {len(chunks)} articles…")
    if isinstance(embedder, SpreadsWork):
        return embedder.encode_all(texts, settings.model.batch_size, progress)
    return _embed(embedder, texts, settings.model.batch_size, progress)


def _stored_ids(base: store.Snapshot | None, stale: Sequence[str]) -> list[int]:
    """The passage ids the articles in `stale` have in `base`."""
    if base is None:
        return []
    known = base.articles
    return [i for d in stale if d in known for i in known[d].ids]


def _update_vectors(
    settings: Settings, base: store.Snapshot | None, dim: int, old_ids: list[int], ids: np.ndarray,
    vecs: np.ndarray | None, log: Log,
) -> tuple[Any, vectors.Layout]:
    """The vector index of the next generation and its layout: `base`'s (changed in place)
    without `old_ids`, with `vecs` under `ids`, converted when its size calls for another layout."""
    count = (0 if base is None else len(base.rows.ids)) - len(old_ids) + len(ids)
    target = target_layout(settings, count, None if base is None else base.layout)
    if base is None:
        index = vectors.new_index(target, dim, vecs)
    else:
        index = base.vectors.merged(base.layout)  # every segment's live vectors in the first's index
        vectors.remove(index, old_ids)
    if vecs is not None and len(ids):
        vectors.add(index, ids, vecs)
    if target.codec != settings.vectors.codec:
        log(f"Vectors stay float32 (exact) until the index has {vectors.PQ_MIN_POINTS} passages: "
            f"codec {settings.vectors.codec} learns its codes from that many ({count} now).")
    if base is not None and base.layout != target:
        log(f"Re-indexing the {count} vectors as {describe(target)} (was {describe(base.layout)}); "
            "nothing is re-embedded…")
        index = vectors.convert(index, target)
    return index, target


def _changes(
    chunks: Sequence[tuple[Article, list[tuple[int, int]]]], ids: np.ndarray, stale: list[str],
    base: store.Snapshot | None, seeds: Mapping[str, Article], log: Log,
) -> Changes:
    """What the commit writes: the chunked articles' records (passages numbered by `ids`), the
    `stale` articles gone, and new titles for kept articles when the headline rules changed."""
    it = iter(ids.tolist())
    articles = [
        (ArticleRecord(article.doc_id, article.content_hash,
                       article.date.isoformat() if article.date else None, article.title),
         [PassageRecord(next(it), article.doc_id, s, e, article.text[s:e]) for s, e in spans])
        for article, spans in chunks
    ]
    new_titles: dict[str, str] = {}
    if base is not None and not titles_current(base.manifest):
        new_titles = retitled(base.catalog, seeds, set(stale))
        if new_titles:
            log(f"Updating the titles of {len(new_titles)} articles (nothing is re-embedded)…")
    return Changes(removed=list(stale), articles=articles, titles=new_titles)


def _lexical(
    settings: Settings, base: store.Snapshot | None, old_ids: list[int], changes: Changes,
    noop: bool, log: Log,
) -> bm25.Lexical:
    """The BM25 matrix of the next generation, tokenizing only what `base`'s can't lend."""
    params = settings.bm25
    if noop and base is not None and not lexical_current(base.manifest, settings):
        log("Building the BM25 index from the stored passages (nothing is re-embedded)…")
    previous = None
    # Passages carry their article's title into BM25: new titles mean new tokens.
    lex_entry = None if base is None else base.manifest.build.lexical
    if (base is not None and base.lexical is not None and lex_entry is not None
            and lex_entry.same_tokens(params) and not (changes.titles and params.titles)):
        previous = bm25.combine(base.lexical.parts)
    kept = np.zeros(0, dtype=np.int64)
    if base is not None:
        kept = base.rows.ids[~np.isin(base.rows.ids, np.array(old_ids, dtype=np.int64))]
    texts = bm25.inputs(changes, kept, None if base is None else base.catalog, params.titles, previous)
    return bm25.build(texts, params, previous)


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


def describe(layout: vectors.Layout) -> str:
    """"ivf (4096 cells, sq8)" / "flat (exact)": for log lines."""
    if layout.type == "flat":
        return "flat (exact)" if layout.exact else f"flat ({layout.codec})"
    return f"ivf ({layout.nlist} cells, {layout.codec})"


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


def _embed(embedder: Embedder, texts: list[str], batch_size: int, progress: Progress | None) -> np.ndarray:
    """Embed in slices so progress can be told; vectors come back unit-length float32."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    tell = progress or (lambda done, total: None)
    step = batch_size * 8
    # One sort by word pieces over all passages, not only within each slice: batches of like
    # lengths pad less. On the news dev set padding fell from 3.4 % of the tokens fed (slices
    # sorted alone) to 0.1 %, for one tokenizer pass (characters as the key left 1.9 %).
    order = np.argsort(np.array(embedder.count_tokens(texts)), kind="stable")
    parts: list[np.ndarray] = []
    tell(0, len(texts))  # starts the clock of the rate and ETA
    done = 0
    for i in range(0, len(texts), step):
        parts.append(embedder.encode([texts[j] for j in order[i : i + step]], batch_size))
        done += len(parts[-1])
        tell(done, len(texts))
    vecs = np.empty((len(texts), embedder.dim), dtype=np.float32)
    vecs[order] = np.vstack(parts)
    return vecs
