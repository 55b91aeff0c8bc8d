"""An index open for reading: the newest committed generation, reloaded when a commit lands,
with what each search of it needs once per generation (row tables, the question encoder).

`open_index(settings)` is how every front end gets one: it upgrades an index an older qabot
wrote and builds one from the seeds when there is none, so `qabot ask`, `qabot eval`, the bot
and a library caller all start the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from . import bm25, fingerprints, parts, sentvecs, store
from .catalog import ArticleRecord, PassageRecord
from .embed import Embedder, OnnxEmbedder, Progress, TorchEmbedder, model_id
from .errors import IndexNotFound, IndexOutdated, SeedsNotFound

if TYPE_CHECKING:
    from .config import Settings
    from .manifest import Manifest


class Retriever:
    """A loaded index that notices new generations: a long-running process never restarts.

    Each search takes the current snapshot once, so a reload in between never mixes two
    generations inside one answer; `pinned()` holds one for every step of a reply.
    """

    def __init__(
        self, index_dir: Path, model: str | None = None, embedder: Embedder | None = None,
        nprobe: int = 0,
    ) -> None:
        self.index_dir = index_dir
        self.model = model
        # Cells an IVF index scans per question ([vectors] nprobe, 0: vectors.nprobe_for's
        # rule): read here, at query time, so a change needs no commit.
        self.nprobe = nprobe
        self._lock = threading.Lock()
        self._snap: store.Snapshot | None = None
        self._encoders: dict[str, Embedder] = {}
        self._fixed = embedder  # tests inject a fake; otherwise the index names its encoder
        # The newest two generations' tables: while a commit lands, replies still pinned to the
        # old one and those on the new one don't rebuild each other's.
        self._tables: tuple[Tables, ...] = ()
        self._held = threading.local()  # the snapshot pinned() holds, per thread
        self._questions = QuestionVectors()

    @classmethod
    def for_settings(cls, settings: Settings) -> Retriever:
        """A Retriever on the settings' index, checked against their model, scanning
        [vectors] nprobe cells of an IVF index."""
        return cls(settings.index, model_id(settings.model.name), nprobe=settings.vectors.nprobe)

    def snapshot(self) -> store.Snapshot:
        """The newest committed generation (reloaded only when the manifest changed); inside
        `pinned()`, the one this thread's block took first."""
        held = self._held
        if not getattr(held, "on", False):
            return self._newest()
        if held.snap is None:
            held.snap = self._newest()
        snap: store.Snapshot = held.snap
        return snap

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold one generation: until the block ends, every `snapshot()` in this thread returns
        the one it took first, so the steps of one reply (search, the corpus's newest day, the
        answering sentence's BM25 terms) never straddle a commit. Taken lazily (small talk needs
        no index); a nested block keeps the outer one's."""
        held = self._held
        if getattr(held, "on", False):
            yield
            return
        held.on, held.snap = True, None
        try:
            yield
        finally:
            held.on, held.snap = False, None

    def _newest(self) -> store.Snapshot:
        """The newest committed generation, loaded when the manifest changed."""
        stamp = store.manifest_stamp(self.index_dir)
        snap = self._snap
        if snap is not None and snap.stamp == stamp:
            return snap
        with self._lock:
            stamp = store.manifest_stamp(self.index_dir)
            if self._snap is None or self._snap.stamp != stamp:
                # Segments never change once written: only the new ones are read.
                snap = store.load_snapshot(self.index_dir, self.model, reuse=self._snap)
                # load_snapshot stamps the manifest after reading it: a commit landing in between
                # would pair the old generation with the new stamp, and no question would notice
                # until the next commit. Keep the stamp taken before the load: it can only be
                # older than what was read, which costs at worst one extra reload.
                snap = replace(snap, stamp=stamp)
                self._snap = snap
            return self._snap

    def encoder(self, snap: store.Snapshot) -> Embedder:
        """The question encoder matching this snapshot's model (ONNX; torch only if no export)."""
        if self._fixed is not None:
            return self._fixed
        key = encoder_key(snap.manifest)
        enc = self._encoders.get(key)
        if enc is None:
            with self._lock:
                enc = self._encoders.get(key)
                if enc is None:
                    enc = open_encoder(self.index_dir, snap.manifest)
                    self._encoders = {key: enc}  # one model at a time: drop the old one
        return enc

    def question_vector(self, snap: store.Snapshot, question: str) -> np.ndarray:
        """The question's vector by this snapshot's encoder (remembered: the answering sentence's
        cosine asks again for the vector search just used)."""
        return self._questions.get(encoder_key(snap.manifest), question, self.encoder(snap))

    def sentences(self, question: str, ids: Sequence[int]) -> sentvecs.Evidence | None:
        """Each sentence of these passages scored against the question, from their stored vectors;
        None when a segment of the pinned generation has none (an index written before them)."""
        snap = self.snapshot()
        stack: sentvecs.Stack = snap.stack(parts.SENTENCES)
        found = stack.cosines(ids, self.question_vector(snap, question)) if stack.complete else None
        return sentvecs.Evidence(found.unpacked()) if found is not None else None

    def newest(self, as_of: dt.date) -> dt.date | None:
        """The date of the newest article published on or before `as_of` (None: none dated)."""
        return newest_day(self.tables(self.snapshot()).days, as_of)

    def tables(self, snap: store.Snapshot) -> Tables:
        """Per-row arrays of this snapshot (built once per generation)."""
        kept = self._tables
        for tables in kept:
            if tables.snap is snap:
                return tables
        tables = Tables(snap)
        self._tables = (tables, *kept[:1])
        return tables


class Tables:
    """A snapshot seen row by row (rows: its passages sorted by id): each row's article number
    and day, where BM25 and the exact matrix keep it, and the few articles a query shows.
    What the ranking walk asks of an index (a walk.Stories)."""

    def __init__(self, snap: store.Snapshot, lexical: bm25.Stack | None = None) -> None:
        self.snap = snap
        # What BM25 scores with: the snapshot's, or a shard's weighed by every shard's mean length.
        self.lexical = lexical if lexical is not None else snap.lexical
        self.ids, self.doc, self.day = snap.rows.ids, snap.rows.doc, snap.rows.day
        self.max_day = int(self.day.max()) if len(self.day) else 0
        # Every publication day, once (each reply asks for the newest on or before a day: a
        # scan of every row was ~40 ms at a million passages).
        self.days = np.unique(self.day[self.day > 0])
        # The row of each row's article's first passage (its lead: headline and first
        # paragraph): an article's passages get consecutive ids in text order, so it is the
        # article's first row.
        _, first, group = np.unique(self.doc, return_index=True, return_inverse=True)
        self.lead = first[group].astype(np.int64) if len(self.doc) else np.zeros(0, np.int64)
        self.exhaustive = snap.vectors.exact
        # Per segment: its vectors (a view of the index's storage, valid while self.snap holds
        # it; from its first live vector to its last), the row of each of its live vectors, and
        # which of the view's vectors those are (None: all, in row order).
        self.matrices: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        if self.exhaustive:
            for matrix, matrix_ids in snap.vectors.flat_parts():
                live = np.flatnonzero(~np.isin(matrix_ids, snap.deleted.passages)) \
                    if len(snap.deleted.passages) else None
                rows = np.searchsorted(self.ids, matrix_ids if live is None else matrix_ids[live])
                if live is not None:
                    # Only the span of live vectors is scanned: a shard holding a run of a
                    # segment (qabot/shards.py) scans its run, not the whole segment.
                    if not len(live):
                        continue
                    matrix, live = matrix[live[0] : live[-1] + 1], live - live[0]
                    live = None if len(live) == len(matrix) else live
                self.matrices.append((matrix, rows, live))
        # Bounded: at a million passages, caching every article ever shown would grow without end.
        self._articles: OrderedDict[int, ArticleRecord] = OrderedDict()
        self.prints = snap.stack(parts.STORIES)
        self._hashed: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pairs: OrderedDict[Pair, bool] = OrderedDict()
        self._lock = threading.Lock()

    def window(self, since: dt.date | None, until: dt.date | None, as_of: dt.date) -> np.ndarray | None:
        """Rows whose article is in [since, until] and not published after `as_of`; None when
        that is every row (the usual case: nothing to filter).

        An undated article passes `as_of` (nothing says it is from the future) but not an
        explicit since/until (nothing says it is inside).
        """
        if since is None and until is None and as_of.toordinal() >= self.max_day:
            return None
        ok = (self.day <= as_of.toordinal()) | (self.day == 0)
        if since is not None:
            ok &= self.day >= since.toordinal()
        if until is not None:
            ok &= (self.day != 0) & (self.day <= until.toordinal())
        return ok

    def articles(self, nums: list[int]) -> dict[int, ArticleRecord]:
        """These articles (by number), read once per generation."""
        with self._lock:
            have = {n: self._articles[n] for n in nums if n in self._articles}
        missing = [n for n in nums if n not in have]
        if missing:
            have.update(self.snap.catalog.articles_by_num(missing))
            with self._lock:
                remember(self._articles, {n: have[n] for n in missing})
        return {n: have[n] for n in nums}

    def passages(self, ids: list[int]) -> list[PassageRecord]:
        """These passages' records, in this order."""
        return self.snap.catalog.passages(ids)

    def date(self, num: int) -> dt.date | None:
        found = self.articles([num])[num].date
        return dt.date.fromisoformat(found) if found else None

    def same_story(self, doc: int, other: int, threshold: float, contained: float) -> bool:
        """True when one article nearly repeats (Jaccard from `threshold`) or contains (the
        shorter's shingles, from `contained`) the other: one intersection of the two articles'
        stored fingerprints (fingerprints.py). Remembered per generation: a walk makes a hundred
        such decisions, the same stories come up in the next questions, and a remembered one
        costs a dict lookup rather than ~20 µs."""
        return remembered_same_story(self._pairs, self._lock, self.fingerprint, doc, other, threshold,
                                     contained)

    def fingerprint(self, doc: int) -> np.ndarray:
        """The article's sorted shingle hashes: stored with its segment, or, for a segment an
        older qabot wrote (until the next `qabot index` adds them), hashed from its stored
        passages and remembered for this generation."""
        found = self.prints.of(doc)
        if found is not None:
            return found
        with self._lock:
            found = self._hashed.get(doc)
        if found is None:
            ids = self.articles([doc])[doc].ids
            found = fingerprints.of_text(p.text for p in self.snap.catalog.passages(list(ids)))
            with self._lock:
                remember(self._hashed, {doc: found})
        return found


K = TypeVar("K")  # a cache's key
CACHED_ARTICLES = 4096
CACHED_PAIRS = 1 << 16


class QuestionVectors:
    """The last few questions' vectors, per encoder: a reply asks for one twice (its search,
    then its sentences' cosines), a chat's follow-up searches the same words again."""

    SIZE = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, key: str, question: str, encoder: Embedder) -> np.ndarray:
        with self._lock:
            found = self._found.get((key, question))
            if found is not None:
                self._found.move_to_end((key, question))
                return found
        vector = encoder.encode([question])[0]
        vector.setflags(write=False)  # shared by every caller
        with self._lock:
            remember(self._found, {(key, question): vector}, self.SIZE)
        return vector


Pair = tuple[int, int, float, float]  # two article numbers (smaller first) and the walk's thresholds


def remembered_same_story(pairs: OrderedDict[Pair, bool], lock: threading.Lock,
                          fingerprint: Callable[[int], np.ndarray], doc: int, other: int, threshold: float,
                          contained: float) -> bool:
    """fingerprints.same_story for two articles, remembered in `pairs` (the most recent
    CACHED_PAIRS, guarded by `lock`): one process's Reader and the shards' router both ask it a
    hundred times a walk, mostly of pairs met before."""
    key = (min(doc, other), max(doc, other), threshold, contained)
    with lock:
        found = pairs.get(key)
    if found is None:
        found = fingerprints.same_story(fingerprint(doc), fingerprint(other), threshold, contained)
        with lock:
            remember(pairs, {key: found}, CACHED_PAIRS)
    return found


def remember(cache: OrderedDict[K, Any], new: Mapping[K, Any], size: int = CACHED_ARTICLES) -> None:
    """Add to a least-recently-added cache of `size` entries (the caller holds its lock)."""
    cache.update(new)
    while len(cache) > size:
        cache.popitem(last=False)


def newest_day(days: np.ndarray, as_of: dt.date) -> dt.date | None:
    """The latest of these sorted publication days (ordinals; 0: undated) on or before `as_of`."""
    at = int(np.searchsorted(days, as_of.toordinal(), side="right"))
    return dt.date.fromordinal(int(days[at - 1])) if at and days[at - 1] > 0 else None


def encoder_key(manifest: Manifest) -> str:
    """Which question encoder an index's manifest names: its ONNX export, else its model."""
    return manifest.build.encoder or f"torch:{manifest.build.model.name}"


def open_encoder(index_dir: Path, manifest: Manifest, threads: int | None = None,
                 spin: bool = True) -> Embedder:
    """That encoder, loaded (ONNX; torch only when the index has no export; `spin`:
    encoder.open_session)."""
    folder = manifest.build.encoder
    if not folder:
        return TorchEmbedder(manifest.build.model.name)
    return OnnxEmbedder(index_dir / folder, threads, spin)


def open_index(
    settings: Settings, log: Callable[[str], None] = lambda msg: None, progress: Progress | None = None,
) -> Retriever:
    """A Retriever on the settings' index, ready to answer.

    An index an older qabot wrote (format 1 to 3) is upgraded in place first (nothing
    re-embedded; any other old format raises IndexOutdated, which says to rebuild). When there
    is no index, it is built from the seeds (SeedsNotFound when they are missing too), telling
    `log` what it does and `progress` how embedding goes.
    """
    try:
        store.load_manifest(settings.index)
    except IndexOutdated as err:
        if err.version not in store.UPGRADABLE:
            raise
        with store.WriteLock(settings.index, notify=log):
            log(f"Upgrading the index in {settings.index} to the current format (nothing is re-embedded)…")
            store.upgrade(settings.index)
    retriever = Retriever.for_settings(settings)
    try:
        retriever.snapshot()
    except IndexNotFound:
        from .indexer import run_index  # the query path never imports the indexer otherwise

        if not settings.seeds.is_dir():
            raise SeedsNotFound(
                f"no index in {settings.index} to answer from, and seeds folder {settings.seeds} "
                "does not exist; point --seeds / QABOT_SEEDS at your articles, or --index at an index"
            ) from None
        log(f"No index in {settings.index} yet; building it from {settings.seeds} first.")
        log(run_index(settings, log=log, progress=progress).summary())
    return retriever
