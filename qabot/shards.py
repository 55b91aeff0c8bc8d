"""The index served in shards: each shard holds a run of a generation's passages, a router merges.

The plan (`plan`) cuts the segments' passages, in id order, into one even run a shard, each
cut moved to an article start: a shard holds whole segments, or part of one too big for a
single shard (after a full merge an index is one segment), never part of an article. A shard
(`Shard`) loads the segments its run touches, of the generation the router pinned, treats the
rows outside its run as deleted, and scores its rows exactly as one process would
(retrieve.score_rows: dense, BM25, fusion, article evidence, freshness). Everything that is not
local to an article comes from the router: BM25's idf, ceiling and mean length are worked out
from every shard's statistics (`bm25.Totals` over each shard's run, summed once per generation:
segments never change), and an article lies in one shard, so its lead, its second-best passage
and its fingerprint are where its passages are.

On an approximate index (IVF, or compressed vectors) one process scores only the candidates
its searches find: the ANN's nearest and BM25's best over the whole index (retrieve.pools). Each
shard's own would be more, so with several shards the router first merges every shard's pools
into the whole index's (retrieve.merge_pools) and the shards score those: one round trip more,
on approximate indexes only.

Each shard sends its best rows (`Candidates`: ids, scores, their articles, the texts of the rows
a reply likely shows, and the score below which it sent nothing, `bound`); the router merges
them by score, runs the same ranking walk, floor and passage building (retrieve.passages_of)
over the merge, asking the shards for the fingerprints the walk compares and for any shown text
they did not send. The walk knows when rows it would need might be missing
(walk.Incomplete): the router then asks again for more, so the result is always the one a
single process gives. `Router` is an answer.Index, so `respond()` runs on it unchanged.

How the router reaches the shards is a `Transport`: in this process (tests, one machine), or
Ray Serve deployments (serve_ray.py). Nothing here imports Ray.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import bm25, parts, sentvecs, store
from .answer import Terms, question_terms_by
from .catalog import ArticleRecord, PassageRecord
from .config import SEARCH_MODES, SearchOptions
from .embed import Embedder
from .errors import IndexIncompatible, IndexNotFound, ShardUnavailable
from .manifest import Manifest
from .passage import Passage
from .reader import (
    Pair,
    QuestionVectors,
    Tables,
    encoder_key,
    newest_day,
    open_encoder,
    remember,
    remembered_same_story,
)
from .retrieve import Pools, Scored, check_question, merge_pools, passages_of, pool_size, pools, score_rows
from .walk import Incomplete

# Articles a shard sends at first per question (their best rows): with k = 5 the walk rarely needs
# more; when it does, the router asks again for DEEPER times as many.
DEPTH = 32
DEEPER = 4
PRINTS_AHEAD = 11  # fingerprints fetched with one the walk asks for
# Articles whose fingerprints a shard sends with its candidates, of those the router lacks
# (Ask.prints): as many as one fetch brings.
PRINTS_SENT = PRINTS_AHEAD + 1
# Articles past k whose shown rows' texts a shard sends with its candidates (Ask.texts).
TEXTS_SPARE = 2


def plan(manifest: Manifest, shards: int) -> tuple[Part, ...]:
    """Each shard's share: the segments' stored passages in id order (deleted ones included,
    as BM25 counts them) cut into `shards` runs of equal length, so a segment too big for one
    shard is split between several. A cut falls inside a segment at a row number; the shards on
    either side move it to the nearest article start alike (Shard.bounds), so every article
    lies whole in one shard. A function of the manifest alone: every router computes the same
    plan, and each commit's new segment joins the last shard's run (the cuts shift with it)."""
    segs = sorted((s for s in manifest.segments if s.passage_count), key=lambda s: s.first_id)
    starts = np.cumsum([0, *[s.passage_count for s in segs]]).tolist()
    total = starts[-1]
    out: list[Part] = []
    for i in range(shards):
        lo, hi = total * i // shards, total * (i + 1) // shards
        held = [n for n in range(len(segs)) if lo < hi and starts[n] < hi and starts[n + 1] > lo]
        if not held:
            out.append(Part(replace(manifest, segments=())))
            continue
        first, last = held[0], held[-1]
        stop = hi - starts[last]
        out.append(Part(replace(manifest, segments=tuple(segs[n] for n in held)), lo - starts[first],
                        None if stop == segs[last].passage_count else stop))
    return tuple(out)


def nearest_article_start(doc: np.ndarray, at: int) -> int:
    """The row, of a segment's stored rows (their article numbers `doc`, in id order), where
    the article nearest to row `at` begins (ties: the earlier), or len(doc): where a cut at
    `at` falls once moved so that no article is split (an article's rows are consecutive)."""
    if at <= 0 or at >= len(doc):
        return max(0, min(at, len(doc)))
    starts = np.concatenate([[0], np.flatnonzero(doc[1:] != doc[:-1]) + 1, [len(doc)]])
    after = int(np.searchsorted(starts, at))
    before = after - 1
    return int(starts[before] if at - starts[before] <= starts[after] - at else starts[after])


# ------------------------------------------------------------------------------- what crosses


@dataclass(frozen=True)
class Part:
    """A shard's share of a generation: the manifest with only the segments it holds rows of,
    and, when it holds part of a segment, where its run begins in its first segment and ends in
    its last (stored rows, before the cut moves to an article start: Shard.bounds)."""

    manifest: Manifest
    start: int = 0  # the row of its first segment it begins at
    stop: int | None = None  # the row of its last segment it ends before (None: that segment's end)

    @property
    def key(self) -> tuple[int, tuple[int, ...], int, int | None]:
        segments = tuple(s.first_id for s in self.manifest.segments)
        return self.manifest.generation, segments, self.start, self.stop

    @property
    def whole(self) -> bool:
        """True when it holds its segments whole."""
        return self.start == 0 and self.stop is None


@dataclass(frozen=True)
class ShardTotals:
    """What the router sums once per generation: BM25 statistics (None: no BM25 part), the days
    articles are dated (for "newest"), and the shard's counts."""

    lexical: bm25.Totals | None
    days: np.ndarray  # sorted distinct days (ordinals) of its live passages' articles, 0 = undated
    articles: int
    passages: int


@dataclass(frozen=True)
class Ask:
    """One question, as a shard scores it: the router's BM25 weights, its question vector."""

    part: Part
    text: str
    vector: np.ndarray
    lexical: bm25.Question | None
    mean_length: float | None
    options: SearchOptions
    since: dt.date | None
    until: dt.date | None
    as_of: dt.date
    depth: int  # rows to send, of those the walk may take (each article's best options.per_article)
    per_article: int  # rows of an article the walk and the passages beside a result may use
    texts: int = 0  # of its best this many articles, the texts of the rows sent come too
    # Of its best this many articles, the fingerprints come too, but for those `known` (a
    # known_filter of the articles whose fingerprints the router holds) says it has.
    prints: int = 0
    known: np.ndarray | None = None
    # On an approximate index, the candidates to score: every shard's pools merged (the router's
    # first round), so the shards together score one process's candidates, no more.
    pools: Pools | None = None


@dataclass(frozen=True)
class Fetch:
    """Passages (or articles, by number) to read from a shard."""

    part: Part
    ids: list[int]


@dataclass(frozen=True)
class Score:
    """Passages whose sentences a shard scores against the question's vector."""

    part: Part
    ids: list[int]
    vector: np.ndarray


@dataclass(frozen=True)
class Candidates:
    """A shard's best rows, by passage id, and what the walk asks about their articles."""

    ids: np.ndarray  # int64 passage ids, ascending
    doc: np.ndarray  # article number of each
    scores: np.ndarray  # what the walk ranks by
    relevance: np.ndarray
    bound: float  # rows scoring above it are all here; -inf: every row the mode ranks is
    articles: dict[int, ArticleRecord]
    texts: dict[int, PassageRecord] = field(default_factory=dict)  # by passage id: those likely shown
    # Their sentences' cosines to the question (the answer layer's), worked out here from the
    # stored vectors: a float and a span a sentence cross (12 bytes), not the int8 vector and
    # its scale (388). None: a segment has none.
    sentences: sentvecs.Cosines | None = None
    prints: dict[int, np.ndarray] = field(default_factory=dict)  # by article number: Ask.prints


# A Bloom filter of article numbers, KNOWN_BITS bits: what a router tells its shards of the
# fingerprints it holds, so that they send with their candidates those of their best articles it
# lacks (one round trip fewer while its cache fills, ~5 ms a question) and not the others (~5 kB
# each). 4 kB for the router's CACHED_ARTICLES (4,096) with two bits an article: ~5% of the
# articles it lacks read as held, and are fetched as before (Merged._print), when the walk needs
# them. Article numbers are never reused, so a filter built now holds for any generation.
KNOWN_BITS = 1 << 15


def _bits(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The filter's two bit positions of each article number (multiplicative hashing)."""
    n = numbers.astype(np.uint64)
    with np.errstate(over="ignore"):  # wrapping around is the hash
        return ((n * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(49),
                ((n ^ np.uint64(0x5BD1E995)) * np.uint64(0xC2B2AE3D27D4EB4F)) >> np.uint64(49))


def known_filter(numbers: Iterable[int]) -> np.ndarray:
    """The filter (uint8, KNOWN_BITS / 8 bytes) holding these article numbers."""
    bits = np.zeros(KNOWN_BITS, dtype=bool)
    n = np.fromiter(numbers, dtype=np.int64)
    if len(n):
        first, second = _bits(n)
        bits[first.astype(np.int64)] = True
        bits[second.astype(np.int64)] = True
    return np.packbits(bits)


def in_filter(known: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """Whether the filter says it holds each article number (sometimes wrongly yes, never wrongly no)."""
    bits = np.unpackbits(known).astype(bool)
    first, second = _bits(numbers)
    return bits[first.astype(np.int64)] & bits[second.astype(np.int64)]


# ------------------------------------------------------------------------------- a shard


class Shard:
    """A run of an index's passages (whole segments, or part of one), loaded for the generation
    each request names."""

    def __init__(self, index_dir: Path, nprobe: int = 0) -> None:
        self.index_dir = index_dir
        self.nprobe = nprobe
        self._lock = threading.Lock()
        # The newest two parts' snapshots, and tables per (part, mean length): while a commit
        # reaches the shards, questions pinned to the old generation still finish.
        self._snaps: dict[tuple[Any, ...], store.Snapshot] = {}
        self._within: dict[tuple[Any, ...], tuple[int, int]] = {}  # each part's passage ids [lo, hi)
        self._tables: dict[tuple[Any, ...], Tables] = {}

    def snapshot(self, part: Part) -> store.Snapshot:
        """The part's segments loaded (reusing those already loaded: segments never change),
        less the rows of a split segment that other shards hold."""
        snap = self._snaps.get(part.key)
        if snap is not None:
            return snap
        with self._lock:
            snap = self._snaps.get(part.key)
            if snap is None:
                newest = max(self._snaps.items(), key=lambda kv: kv[0], default=None)
                snap = store.load_segments(self.index_dir, part.manifest,
                                           reuse=newest[1] if newest is not None else None)
                within = self.bounds(part, snap)
                if not part.whole:
                    snap = _only(snap, *within)
                self._within[part.key] = within
                self._snaps = {part.key: snap, **dict([newest] if newest is not None else [])}
                self._within = {k: v for k, v in self._within.items() if k in self._snaps}
            return snap

    @staticmethod
    def bounds(part: Part, snap: store.Snapshot) -> tuple[int, int]:
        """The passage ids [lo, hi) of the part's rows: its run cut at article starts."""
        if not snap.loaded:
            return 0, 0
        first = parts.required(snap.loaded[0], parts.CATALOG).rows
        last = parts.required(snap.loaded[-1], parts.CATALOG).rows
        begin = nearest_article_start(first.doc, part.start)
        end = nearest_article_start(last.doc, len(last.ids) if part.stop is None else part.stop)
        lo = int(first.ids[begin]) if begin < len(first.ids) else int(first.ids[-1]) + 1
        hi = int(last.ids[end]) if end < len(last.ids) else int(last.ids[-1]) + 1
        return lo, max(lo, hi)

    def tables(self, part: Part, mean_length: float | None) -> Tables:
        """The per-row tables of the part, BM25 normalised by the whole index's mean length."""
        key = (*part.key, mean_length)
        found = self._tables.get(key)
        if found is None:
            snap = self.snapshot(part)
            lex = snap.lexical
            if lex is not None and mean_length is not None:
                lex = replace(lex, mean_length=mean_length)
            found = Tables(snap, lex)
            with self._lock:
                held = [id(snap) for snap in self._snaps.values()]  # by identity: no array ==
                self._tables = {key: found, **{k: v for k, v in self._tables.items() if id(v.snap) in held}}
        return found

    def totals(self, part: Part) -> ShardTotals:
        """This part's statistics, for the router to sum."""
        snap = self.snapshot(part)
        lex = snap.lexical
        # Over the rows of its run only, deleted ones included: a split segment's other rows
        # are counted by the shards that hold them.
        # (Worked out again if a newer generation's snapshot has just taken its place.)
        within = None if part.whole else self._within.get(part.key) or self.bounds(part, snap)
        return ShardTotals(lex.totals(within) if lex is not None else None, np.unique(snap.rows.day),
                           snap.catalog.summary().articles, len(snap.rows.ids))

    def pools(self, ask: Ask) -> Pools:
        """This shard's candidates on an approximate index (retrieve.pools over its run), for the
        router to merge."""
        tables = self.tables(ask.part, ask.mean_length)
        question: str | bm25.Question = ask.lexical if ask.lexical is not None else ask.text
        allowed = tables.window(ask.since, ask.until, ask.as_of)
        return pools(tables, question, ask.vector, ask.options, allowed, self.nprobe)

    def candidates(self, ask: Ask) -> Candidates:
        """The question's best rows here (Candidates)."""
        tables = self.tables(ask.part, ask.mean_length)
        question: str | bm25.Question = ask.lexical if ask.lexical is not None else ask.text
        found = score_rows(tables, question, ask.vector, ask.options, ask.since, ask.until, ask.as_of,
                           self.nprobe, ask.pools)
        ok = np.isfinite(found.scores)
        rows, scores, relevance = found.rows[ok], found.scores[ok], found.relevance[ok]
        ids, doc = tables.ids[rows], tables.doc[rows]
        top, keep, bound = rows_to_send(ids, doc, scores, ask.depth, ask.options.per_article, ask.per_article)
        docs = sorted({int(d) for d in doc[keep]})
        # The rows the reply likely shows: those sent of this shard's best articles (the top k
        # overall are among each shard's top k, but for near-duplicates folded together). Their
        # texts now spare the router a second round trip; any other it asks for (passages()).
        best = list(dict.fromkeys(doc[top].tolist()))[: ask.texts]
        shown = ids[keep][np.isin(doc[keep], best)].tolist() if best else []
        texts = {r.id: r for r in tables.passages(shown)}
        stack: sentvecs.Stack = self.snapshot(ask.part).stack(parts.SENTENCES)
        return Candidates(ids[keep], doc[keep], scores[keep], relevance[keep], bound, tables.articles(docs),
                          texts, stack.cosines(shown, ask.vector), self._prints(tables, ask, doc[top]))

    @staticmethod
    def _prints(tables: Tables, ask: Ask, ranked: np.ndarray) -> dict[int, np.ndarray]:
        """The fingerprints of its best ask.prints articles (`ranked`: the articles of the rows
        sent, best first) that the router's filter does not say it holds."""
        if not ask.prints or not len(ranked):
            return {}
        best = np.array(list(dict.fromkeys(ranked.tolist()))[: ask.prints], dtype=np.int64)
        if ask.known is not None:
            best = best[~in_filter(ask.known, best)]
        return {int(n): tables.fingerprint(int(n)) for n in best}

    def passages(self, fetch: Fetch) -> list[PassageRecord]:
        """These passages' records, in this order."""
        return self.snapshot(fetch.part).catalog.passages(fetch.ids)

    def sentences(self, score: Score) -> sentvecs.Cosines | None:
        """Those of these passages this shard holds, each sentence scored against the question;
        None when a segment of its part has no sentence vectors (the reply is then scored
        without them)."""
        stack: sentvecs.Stack = self.snapshot(score.part).stack(parts.SENTENCES)
        return stack.cosines(score.ids, score.vector)

    def prints(self, fetch: Fetch) -> dict[int, np.ndarray]:
        """These articles' fingerprints (fetch.ids: article numbers), for the walk's same-story test.
        They don't depend on BM25: the tables the question's candidates were scored with serve."""
        tables = next((t for k, t in self._tables.items() if k[:-1] == fetch.part.key), None) \
            or self.tables(fetch.part, None)
        return {n: tables.fingerprint(n) for n in fetch.ids}


# Rows sorted first when choosing what to send: the best this many (or more, for a deep ask).
# Sorting a shard's every scored row (~17k on the news dev index) took ~3 of its ~8 ms a question.
HEAD_ROWS = 2048


def rows_to_send(ids: np.ndarray, doc: np.ndarray, scores: np.ndarray, depth: int, walk: int,
                 shown: int) -> tuple[np.ndarray, np.ndarray, float]:
    """What a shard sends of its scored rows (positions into ids/doc/scores): `top`, the best
    `depth` rows among their article's best `walk` (the walk takes no more of an article and
    looks no further into it: an article lives in one shard), best first, ties by id (the walk's
    order); `keep`, those with the next best rows of their articles, up to `shown` an article
    (the passages shown beside a result), in id order; and `bound`, the score of the next row the
    walk could take (-inf when there is none). Exactly what sorting every row gives: only the
    best rows are sorted first, and all when they don't decide it."""
    head = max(HEAD_ROWS, 8 * depth * walk)
    decided = False
    if len(scores) > head:
        least = np.partition(scores, len(scores) - head)[len(scores) - head]
        top, bound, decided = _best_rows(ids, doc, scores, np.flatnonzero(scores >= least), depth, walk)
    if not decided:
        top, bound, _ = _best_rows(ids, doc, scores, np.arange(len(scores)), depth, walk)
    # The next best rows of the articles sent, wherever they rank: all of theirs, sorted.
    theirs = np.flatnonzero(np.isin(doc, doc[top]))
    theirs = theirs[np.lexsort((ids[theirs], -scores[theirs]))]
    keep = np.union1d(top, theirs[_nth(doc[theirs]) < shown])
    return top, keep[np.argsort(ids[keep], kind="stable")], bound


def _best_rows(ids: np.ndarray, doc: np.ndarray, scores: np.ndarray, rows: np.ndarray, depth: int,
               walk: int) -> tuple[np.ndarray, float, bool]:
    """rows_to_send's `top` and `bound` from `rows`, which hold every row scoring at least as
    well as any of them (ties included, so an article's better rows are all there), and whether
    that decides them: it does when they hold more than `depth` rows the walk could take, or are
    all the rows; otherwise the next one may be among the others."""
    order = rows[np.lexsort((ids[rows], -scores[rows]))]  # best first, ties by id
    useful = order[_nth(doc[order]) < walk]
    if len(useful) > depth:
        return useful[:depth], float(scores[useful[depth]]), True
    return useful, -np.inf, len(rows) == len(scores)


def _nth(ranked: np.ndarray) -> np.ndarray:
    """Each row's place among its article's rows in this order (`ranked`: their articles)."""
    by_doc = np.argsort(ranked, kind="stable")
    nth = np.empty(len(ranked), dtype=np.int64)
    nth[by_doc] = np.arange(len(ranked)) - np.searchsorted(ranked[by_doc], ranked[by_doc])
    return nth


def _only(snap: store.Snapshot, lo: int, hi: int) -> store.Snapshot:
    """The snapshot with the rows outside passage ids [lo, hi) treated as deleted: every part
    leaves them out as it leaves out deleted passages (vectors, BM25 rows, catalog, the rows)."""
    ids = np.concatenate([parts.required(x, parts.CATALOG).rows.ids for x in snap.loaded])
    docs = np.concatenate([parts.required(x, parts.CATALOG).rows.doc for x in snap.loaded])
    out = (ids < lo) | (ids >= hi)
    # Whole articles: the cuts are at article starts, so an article is all in or all out.
    deleted = snap.deleted.plus(np.unique(docs[out]), ids[out])
    stacks = {p.name: p.stack(snap.loaded, deleted, snap.manifest.build) for p in parts.PARTS}
    cut = store.Snapshot(snap.manifest, snap.stamp, snap.loaded, deleted, stacks)
    return replace(cut, manifest=replace(snap.manifest, passage_count=len(cut.rows.ids)))


# ------------------------------------------------------------------------------- the router


class Transport(Protocol):
    """How the router reaches its shards: `call` sends each named shard its argument and waits
    until the deadline; a shard that fails or is late is an exception in the result."""

    shards: int

    def call(self, method: str, args: dict[int, Any], deadline: float) -> dict[int, Any]: ...


class InProcess:
    """Shards in this process (tests; one machine without Ray)."""

    def __init__(self, shards: Sequence[Shard]) -> None:
        self.members = list(shards)
        self.shards = len(self.members)

    def call(self, method: str, args: dict[int, Any], deadline: float) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for i, arg in args.items():
            try:
                out[i] = getattr(self.members[i], method)(arg)
            except Exception as err:  # a shard's failure is reported, not raised, as over Ray
                out[i] = err
        return out


@dataclass
class Generation:
    """What the router keeps per generation: the plan, and the sums of the shards' statistics."""

    manifest: Manifest
    stamp: tuple[int, int]
    parts: tuple[Part, ...]
    lexical: bm25.Totals | None
    days: np.ndarray
    articles: int
    missing: tuple[int, ...] = ()  # shards whose statistics are not in the sums (partial only)


@dataclass
class Coverage:
    """Which shards an answer comes from (`partial=true`)."""

    shards: int
    missing: tuple[int, ...] = ()
    reasons: dict[int, str] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.shards - len(self.missing)


class Router:
    """The index seen through its shards: an answer.Index (so respond() runs on it) that follows
    commits. Each reply pins one generation (`pinned()`): every shard is asked for that one."""

    def __init__(self, index_dir: Path, transport: Transport, *, deadline: float = 10.0,
                 model: str | None = None, embedder: Embedder | None = None, texts: bool = True,
                 threads: int | None = None, spin: bool = True) -> None:
        self.index_dir = index_dir
        self.transport = transport
        # The question encoder's threads (None: every CPU this process may use), and whether they
        # spin on after each question (encoder.open_session). A router beside its shards passes
        # spin=False: the spinning took the cores its shards were about to score the question on.
        self.threads = threads
        self.spin = spin
        self.deadline = deadline  # seconds a shard has to answer
        # Ask for the texts of the rows likely shown with the candidates (one round trip a reply
        # when they are the ones shown); False: in a round of their own (benchmarks compare).
        self.texts = texts
        self.model = model
        self._fixed = embedder
        self._encoder: tuple[str, Embedder] | None = None
        self._lock = threading.Lock()
        self._gens: tuple[Generation, ...] = ()  # the newest two
        self._held = threading.local()
        # Article fingerprints by article number (an article's number is never reused, so they
        # hold across generations), the most recent CACHED_ARTICLES (reader.remember).
        self.prints: OrderedDict[int, np.ndarray] = OrderedDict()
        # The walk's same-story decisions, by article pair: as lasting as the fingerprints. A walk
        # makes a hundred or more; without them a reply through the router cost ~9 ms more than
        # one process's (which remembers them too: reader.Reader.same_story).
        self.pairs: OrderedDict[Pair, bool] = OrderedDict()
        self._questions = QuestionVectors()

    # -- generations

    def generation(self, partial: bool = False) -> Generation:
        """The pinned generation, or the newest committed one (its shards' sums taken once)."""
        held = getattr(self._held, "gen", None)
        if held is not None:
            return held  # type: ignore[no-any-return]
        stamp = store.manifest_stamp(self.index_dir)
        for gen in self._gens:
            if gen.stamp == stamp and not gen.missing:
                return gen
        with self._lock:
            for gen in self._gens:
                if gen.stamp == stamp and not gen.missing:
                    return gen
            manifest = store.load_manifest(self.index_dir)
            if manifest is None:
                raise IndexNotFound(f"no index in {self.index_dir}; run `qabot index` to build it")
            store.check_compatible(manifest, self.index_dir, self.model)
            gen = self._sum(manifest, stamp, partial)
            if not gen.missing:  # a partial sum is used once, never kept
                self._gens = (gen, *self._gens[:1])
            return gen

    def _sum(self, manifest: Manifest, stamp: tuple[int, int], partial: bool) -> Generation:
        parts = plan(manifest, self.transport.shards)
        # A shard the plan gives nothing (an empty index) is not asked at all.
        got, missing = self._fan("totals", {i: p for i, p in enumerate(parts) if p.manifest.segments},
                                 partial)
        lexical: bm25.Totals | None = None
        days: list[np.ndarray] = []
        for t in got.values():
            if t.lexical is not None:
                lexical = t.lexical if lexical is None else lexical.plus(t.lexical)
            days.append(t.days)
        known = np.unique(np.concatenate(days)) if days else np.zeros(0, np.int64)
        return Generation(manifest, stamp, parts, lexical, known, sum(t.articles for t in got.values()),
                          tuple(missing))

    def _fan(self, method: str, args: dict[int, Any], partial: bool) -> tuple[dict[int, Any], dict[int, str]]:
        """Call the shards; those that fail or miss the deadline raise ShardUnavailable, or with
        `partial` are left out (and reported in the coverage)."""
        got = self.transport.call(method, args, time.monotonic() + self.deadline)
        missing = {i: _reason(r) for i, r in got.items() if isinstance(r, BaseException)}
        if missing and not partial:
            said = "; ".join(f"shard {i}: {why}" for i, why in sorted(missing.items()))
            raise ShardUnavailable(f"shard {', '.join(map(str, sorted(missing)))} of {self.transport.shards} "
                                   f"did not answer ({said}); retry, or ask with partial=true for "
                                   "the other shards' results", tuple(sorted(missing)))
        self._note(missing)
        return {i: r for i, r in got.items() if i not in missing}, missing

    def _note(self, missing: dict[int, str]) -> None:
        coverage: Coverage | None = getattr(self._held, "coverage", None)
        if coverage is not None and missing:
            coverage.reasons.update(missing)
            coverage.missing = tuple(sorted(coverage.reasons))

    @contextlib.contextmanager
    def pinned(self, partial: bool = False) -> Iterator[Coverage]:
        """Hold one generation for the block (nested blocks keep the outer one's); yields the
        coverage the block's answers come from (shards left out, with `partial`)."""
        held = self._held
        if getattr(held, "gen", None) is not None:
            yield held.coverage
            return
        held.partial = partial
        held.sentences = {}  # sent with this block's candidates, for its replies' cosines
        held.coverage = Coverage(self.transport.shards)
        gen = self.generation(partial)
        held.coverage.missing = gen.missing
        held.gen = gen
        try:
            yield held.coverage
        finally:
            held.gen = held.coverage = held.sentences = None
            held.partial = False

    # -- answer.Index

    def newest(self, as_of: dt.date) -> dt.date | None:
        """The date of the newest article published on or before `as_of`."""
        return newest_day(self.generation().days, as_of)

    def terms(self, question: str) -> Terms:
        """The question's BM25 terms and their idf over every shard."""
        gen = self.generation()
        params = gen.manifest.build.lexical
        if gen.lexical is None or params is None:
            return Terms({})
        stop, stem = bm25.stopword_list(params.params.stopwords), params.params.stemmer
        totals = gen.lexical
        return Terms(question_terms_by(question, stop, stem, lambda ts: bm25.idf_of(totals, ts)), stop, stem)

    def sentences(self, question: str, ids: Sequence[int]) -> sentvecs.Evidence | None:
        """The passages' sentences scored against the question, by every shard that answers (each
        scores those it holds: a passage id alone does not say which shard has it)."""
        gen = self.generation()
        sent: dict[int, sentvecs.Scored | None] | None = getattr(self._held, "sentences", None)
        found = {i: c for i in ids for c in [(sent or {}).get(i)] if c is not None}
        if sent is not None and any(i in sent and sent[i] is None for i in ids):
            return None  # a shard that sent candidates has no sentence vectors
        missing_ids = [i for i in ids if i not in found]
        if missing_ids:  # not sent with the candidates (or no reply pinned): one more round trip
            vector = self.question_vector(gen.manifest, question)
            asks = {i: Score(p, missing_ids, vector) for i, p in enumerate(gen.parts)
                    if p.manifest.segments and i not in gen.missing}
            got, missing = self._fan("sentences", asks, bool(getattr(self._held, "partial", False)))
            if missing or any(more is None for more in got.values()):
                return None  # a partial reply is scored without them: what it holds is all alike
            for more in got.values():
                found.update(more.unpacked())
        return sentvecs.Evidence(found)

    def _keep(self, got: dict[int, Candidates]) -> None:
        """Keep what the shards sent with their candidates: the fingerprints, in the router's
        cache; the sentences' cosines, for the pinned block's answer (a shard without sentence
        vectors marks the rows it sent: None)."""
        with self._lock:
            for c in got.values():
                remember(self.prints, c.prints)
        sent: dict[int, sentvecs.Scored | None] | None = getattr(self._held, "sentences", None)
        if sent is None:
            return
        for c in got.values():
            if c.sentences is None:
                sent.update(dict.fromkeys(c.texts))
            else:
                sent.update(c.sentences.unpacked())

    def question_vector(self, manifest: Manifest, question: str) -> np.ndarray:
        return self._questions.get(encoder_key(manifest), question, self.encoder(manifest))

    def encoder(self, manifest: Manifest) -> Embedder:
        """The question encoder the index names (ONNX; torch only if there is no export)."""
        if self._fixed is not None:
            return self._fixed
        key = encoder_key(manifest)
        with self._lock:
            if self._encoder is None or self._encoder[0] != key:
                self._encoder = (key, open_encoder(self.index_dir, manifest, self.threads, self.spin))
            return self._encoder[1]

    def search(self, question: str, options: SearchOptions, *, floor: bool = True,
               since: dt.date | None = None, until: dt.date | None = None, as_of: dt.date | None = None,
               answers: bool = True, more: int = 0) -> list[Passage]:
        """retrieve.search over the shards: the same passages, scores and order."""
        q = check_question(question)
        if options.mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {SEARCH_MODES}, not {options.mode!r}")
        with self.pinned(getattr(self._held, "partial", False)):
            gen = self.generation()
            manifest = gen.manifest
            if manifest.passage_count == 0 or options.k < 1:
                return []
            params = manifest.build.lexical
            if options.mode != "dense" and (gen.lexical is None or params is None):
                raise IndexIncompatible(
                    f"the index at {self.index_dir} has no BM25 part (an older qabot built it); run "
                    f"`qabot index --index {self.index_dir}` to add it: nothing is re-embedded")
            encoder = self.encoder(manifest)
            qvec = self.question_vector(manifest, q)
            lexical = mean = None
            if options.mode != "dense" and gen.lexical is not None and params is not None:
                lexical = bm25.question(q, gen.lexical, bm25.stopword_list(params.params.stopwords),
                                        params.params.stemmer)
                mean = gen.lexical.mean_length
            with self._lock:
                known = known_filter(self.prints)
            ask = Ask(gen.parts[0], q, qvec, lexical, mean, options, since, until, as_of or dt.date.today(),
                      DEPTH, options.per_article + more, options.k + TEXTS_SPARE if self.texts else 0,
                      PRINTS_SENT, known)
            seeds = Path(manifest.build.seeds or ".")
            asks = {i: replace(ask, part=p) for i, p in enumerate(gen.parts)
                    if p.manifest.segments and i not in gen.missing}
            if len(asks) > 1 and not all(s.layout.exact for s in manifest.segments):
                # One process scores the whole index's ANN and BM25 candidates; each shard's own
                # would add more (docs/scaling.md): merge the shards' pools first. (One shard's
                # own are the whole index's.)
                found, missing = self._fan("pools", asks, bool(getattr(self._held, "partial", False)))
                ask = replace(ask, pools=merge_pools(list(found.values()), pool_size(options)))
                asks = {i: a for i, a in asks.items() if i not in missing}  # not waited for twice
            while True:
                got, _ = self._fan("candidates", {i: replace(ask, part=a.part) for i, a in asks.items()},
                                   bool(getattr(self._held, "partial", False)))
                view = Merged(self, gen, got)
                self._keep(got)
                try:
                    return passages_of(view, seeds, view.scored, options, floor=floor,
                                       encoder=encoder if answers else None, qvec=qvec, more=more,
                                       beyond=view.beyond)
                except Incomplete:
                    ask = replace(ask, depth=ask.depth * DEEPER)


def _reason(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "no answer before the deadline"
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'failed'}"[:200]


class Merged:
    """The shards' candidates merged, in passage id order: what the walk and the passages read
    (a retrieve.View)."""

    def __init__(self, router: Router, gen: Generation, got: dict[int, Candidates]) -> None:
        self.router, self.gen = router, gen
        shards = sorted(got)
        ids = np.concatenate([got[i].ids for i in shards]) if shards else np.zeros(0, np.int64)
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.doc = np.concatenate([got[i].doc for i in shards])[order] if shards else np.zeros(0, np.int64)
        self.owner = np.concatenate([np.full(len(got[i].ids), i) for i in shards])[order] \
            if shards else np.zeros(0, np.int64)
        pick = (lambda name: np.concatenate([getattr(got[i], name) for i in shards])[order]) if shards \
            else (lambda name: np.zeros(0, np.float32))
        self.scored = Scored(np.arange(len(self.ids)), pick("scores"), pick("relevance"))
        self.beyond = max((got[i].bound for i in shards), default=-np.inf)
        self._articles = {n: a for i in shards for n, a in got[i].articles.items()}
        self._texts = {n: r for i in shards for n, r in got[i].texts.items()}
        # Articles in the order the walk meets them (best row first), and which shard holds each.
        ranked = np.lexsort((self.ids, -self.scored.scores))
        docs, first = np.unique(self.doc[ranked], return_index=True)
        self._met = [int(d) for d in docs[np.argsort(first)]]
        self._holder = {int(d): int(self.owner[ranked[f]]) for d, f in zip(docs, first, strict=True)}

    def articles(self, nums: list[int]) -> dict[int, ArticleRecord]:
        return {n: self._articles[n] for n in nums}

    def date(self, num: int) -> dt.date | None:
        found = self._articles[num].date
        return dt.date.fromisoformat(found) if found else None

    def same_story(self, doc: int, other: int, threshold: float, contained: float) -> bool:
        return remembered_same_story(self.router.pairs, self.router._lock, self._print, doc, other, threshold,
                                     contained)

    def _print(self, doc: int) -> np.ndarray:
        """An article's fingerprint: from the router's cache, or fetched with the next few
        articles the walk will meet (one call per shard), as the walk needs them: it compares
        the ten or so articles it meets, not the dozens sent."""
        cache = self.router.prints
        found = cache.get(doc)
        if found is not None:
            return found
        batch = [doc, *[d for d in self._met if d != doc and d not in cache][:PRINTS_AHEAD]]
        asks: dict[int, Fetch] = {}
        for d in batch:
            holder = self._holder[d]
            asks.setdefault(holder, Fetch(self.gen.parts[holder], [])).ids.append(d)
        got, _ = self.router._fan("prints", asks, partial=False)
        with self.router._lock:
            for prints in got.values():
                remember(cache, prints)
        return got[self._holder[doc]][doc]

    def passages(self, ids: list[int]) -> list[PassageRecord]:
        """Those the shards sent with their candidates; the rest read from the shards that hold
        them (one call each, in parallel)."""
        found = {p: self._texts[p] for p in ids if p in self._texts}  # sent with the candidates
        missing = [p for p in ids if p not in found]
        if missing:
            owner = self.owner[np.searchsorted(self.ids, missing)]
            asks = {int(i): Fetch(self.gen.parts[int(i)], [p for p, o in zip(missing, owner, strict=True)
                                                           if o == i]) for i in np.unique(owner)}
            got, _ = self.router._fan("passages", asks, partial=False)
            found.update((r.id, r) for records in got.values() for r in records)
        return [found[p] for p in ids]

