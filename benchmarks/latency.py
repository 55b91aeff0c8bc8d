"""Where a question's time goes: search() and respond() p50/p95 with the per-stage split, next to
the duplicate check as it was before article fingerprints were stored, in one run.

    .venv/bin/python benchmarks/latency.py --index /tmp/news-dev-index     # the news dev index
    .venv/bin/python benchmarks/latency.py --synthetic 1000000             # a 1M-passage synthetic index
    .venv/bin/python benchmarks/latency.py --index /tmp/news-dev-index --synthetic 1000000

News: the dev set's 102 quiz questions (as of their question dates) and the 197 chat questions
(benchmarks/chat_questions.jsonl), asked through respond() (k=5, the configured settings) and
through search() (the ranking alone: answers=False). Synthetic: --synthetic N random 384-d
passages shaped like news (synthetic.py) with synthetic texts (Zipf-distributed words: see
zipf_changes), dates and BM25 counts, committed through qabot's own writer into a temporary
folder (or --synthetic-dir, kept and reused); the question's vector is given (a corpus row plus
noise), so encoding is not in those figures.

Two paths take turns question by question, so a load that comes and goes falls on both (they
share one question encoder, as one process has one: two onnxruntime sessions taking turns had
each spin its threads against the other's, and "encode" read twice its cost):
  after    the code as it is: each article's fingerprint read from the index (stories part)
  before   the same code, except the duplicate check hashes each article's stored passages at
           question time and remembers shingles and pair decisions per generation, as qabot did
           before the stories part (reader.Tables before it)
Each path runs twice: "first" with a fresh reader (what a new process or a new generation meets:
every story a question brings up is new), then "again" with the reader warm.

Per stage (mean ms a question): encode (the question's ONNX encoding), scan (the dense scan or
the ANN search and exact rescoring), bm25, weigh (article evidence and freshness), walk (ranking
walk and duplicate folding), catalog (passages and articles read from SQLite), sentences (the
answer layer's choice), other (time words, checks, the rest). The machine's load is printed: on
a shared 2-core box compare the paths of one run, not figures of different runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import log  # noqa: E402

from qabot import answer, rank, retrieve, store, vectors, walk  # noqa: E402
from qabot.answer import respond  # noqa: E402
from qabot.config import load_settings  # noqa: E402
from qabot.embed import Embedder  # noqa: E402
from qabot.evaluate import read_queries  # noqa: E402
from qabot.reader import CACHED_ARTICLES, Retriever, Tables  # noqa: E402
from qabot.retrieve import search  # noqa: E402

DEV = Path("/tmp/news-dev")
CHAT = ROOT / "benchmarks" / "chat_questions.jsonl"
STAGES = ("encode", "scan", "bm25", "weigh", "walk", "catalog", "sentences", "other")
CACHED_PAIRS = 1 << 16  # what reader.Tables remembered before the stories part


class Clock:
    """Time spent per stage during the current question (the wrappers below add to it)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.on = True

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] += time.perf_counter() - started


CLOCK = Clock()


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        with CLOCK.stage(name):
            return fn(*args, **kw)
    return wrapper


def instrument() -> None:
    """Wrap the stages where the core calls them (module attributes, looked up at each call)."""
    retrieve._scores = timed("scan", retrieve._scores)  # type: ignore[assignment]  # bm25 inside: subtracted
    retrieve._lexical = timed("bm25", retrieve._lexical)  # type: ignore[assignment]
    retrieve._weigh = timed("weigh", retrieve._weigh)  # type: ignore[assignment]
    walk.pick = timed("walk", walk.pick)  # type: ignore[assignment]
    walk.next_best = timed("walk", walk.next_best)  # type: ignore[assignment]
    retrieve._to_passages = timed("catalog", retrieve._to_passages)  # type: ignore[assignment]
    Tables.passages = timed("catalog", Tables.passages)  # type: ignore[method-assign]
    answer.choose = timed("sentences", answer.choose)  # type: ignore[assignment]


class TimedEncoder:
    """The question encoder, timed as the "encode" stage."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        with CLOCK.stage("encode"):
            return self.inner.encode(texts, batch_size)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


class TextTables(Tables):
    """Tables as they were before the stories part: an article's shingles hashed from its stored
    passages when a question first meets it, shingles and pair decisions remembered per
    generation (the code of reader.Tables before, with the same bounds)."""

    def __init__(self, snap: store.Snapshot) -> None:
        super().__init__(snap)
        self._sets: OrderedDict[int, frozenset[int]] = OrderedDict()
        self._pairs: OrderedDict[tuple[int, int, float, float], bool] = OrderedDict()
        self._guard = threading.Lock()

    def same_story(self, doc: int, other: int, threshold: float, contained: float) -> bool:
        key = (min(doc, other), max(doc, other), threshold, contained)
        found = self._pairs.get(key)
        if found is None:
            found = rank.same_story(self._shingles(doc), self._shingles(other), threshold, contained)
            self._pairs[key] = found
            while len(self._pairs) > CACHED_PAIRS:
                self._pairs.popitem(last=False)
        return found

    def _shingles(self, doc: int) -> frozenset[int]:
        found = self._sets.get(doc)
        if found is None:
            ids = self.articles([doc])[doc].ids
            found = rank.shingles("\n".join(p.text for p in self.snap.catalog.passages(list(ids))))
            self._sets[doc] = found
            while len(self._sets) > CACHED_ARTICLES:
                self._sets.popitem(last=False)
        return found


class Bench(Retriever):
    """A Retriever whose encoder is timed; `before` builds TextTables instead of Tables."""

    def __init__(self, index_dir: Path, before: bool, embedder: Embedder | None = None) -> None:
        super().__init__(index_dir, embedder=embedder)
        self.before = before
        self._mine: Tables | None = None
        self._timed: TimedEncoder | None = None

    def encoder(self, snap: store.Snapshot) -> Embedder:
        inner = super().encoder(snap)
        if self._timed is None or self._timed.inner is not inner:
            self._timed = TimedEncoder(inner)
        return self._timed

    def tables(self, snap: store.Snapshot) -> Tables:
        if self._mine is None or self._mine.snap is not snap:
            self._mine = TextTables(snap) if self.before else Tables(snap)
        return self._mine


@dataclasses.dataclass
class Question:
    text: str
    as_of: dt.date | None


Asker = Callable[[Retriever, Question], object]


def ask_respond(retriever: Retriever, q: Question) -> object:
    return respond(retriever, q.text, dataclasses.replace(TUNING, k=5), as_of=q.as_of)


def ask_search(retriever: Retriever, q: Question) -> object:
    return search(retriever, q.text, dataclasses.replace(TUNING, k=5), as_of=q.as_of, answers=False)


TUNING = load_settings(None).search


def run(make: Callable[[bool], Retriever], questions: list[Question], ask: Asker,
        ) -> dict[str, dict[str, list[float]]]:
    """Per path and pass: the total ms of each question, and each stage's."""
    out: dict[str, dict[str, list[float]]] = {}
    readers = {"after": make(False), "before": make(True)}
    for r in readers.values():  # load the snapshot and the encoder: not what is measured
        r.encoder(r.snapshot())
    for pass_ in ("first", "again"):
        for q in questions:
            for name, reader in readers.items():
                CLOCK.spent.clear()
                started = time.perf_counter()
                ask(reader, q)
                total = time.perf_counter() - started
                row = out.setdefault(f"{name} ({pass_})", defaultdict(list))
                spent = dict(CLOCK.spent)
                spent["scan"] = spent.get("scan", 0.0) - spent.get("bm25", 0.0)
                spent["other"] = total - sum(spent.values())
                row["total"].append(total * 1000)
                for stage in STAGES:
                    row[stage].append(spent.get(stage, 0.0) * 1000)
    return out


def table(title: str, figures: dict[str, dict[str, list[float]]]) -> str:
    head = f"{'':<16}{'p50':>7}{'p95':>7}  " + "".join(f"{s:>9}" for s in STAGES)
    lines = [f"\n{title} (ms; stages: mean a question)", head]
    for name, row in figures.items():
        s = sorted(row["total"])
        lines.append(f"{name:<16}{statistics.median(s):7.1f}{s[int(len(s) * 0.95)]:7.1f}  "
                     + "".join(f"{statistics.fmean(row[st]):9.2f}" for st in STAGES))
    return "\n".join(lines)


def news(index_dir: Path, dev: Path) -> None:
    quiz, bad = read_queries(dev / "queries.jsonl")
    chat, bad2 = read_queries(CHAT)
    if bad or bad2:
        raise SystemExit(f"bad questions: {(bad + bad2)[:3]}")
    questions = [Question(q.question, q.date) for q in quiz + chat]
    manifest = store.load_manifest(index_dir)
    assert manifest is not None
    print(f"\nNews dev index {index_dir}: {manifest.passage_count:,} passages, {manifest.article_count:,} "
          f"articles; {len(quiz)} quiz + {len(chat)} chat questions; load {load()}")
    # One question encoder for both paths (the module docstring says why).
    opened = Retriever(index_dir)
    embedder = opened.encoder(opened.snapshot())
    for title, ask in (("respond()", ask_respond), ("search()", ask_search)):
        log(f"news: {title}")
        print(table(title, run(lambda before: Bench(index_dir, before, embedder=embedder), questions, ask)))
    print(followups(index_dir))
    same = agree(index_dir, questions)
    print(f"\nDuplicate decisions, stored fingerprints vs hashed texts: {same}")
    print(blas_choice(index_dir, questions))


def followups(index_dir: Path) -> str:
    """A follow-up as the bot answers it (respond with the previous question's words and the
    message as typed: two searches, one sentence choice) against the same message as a plain
    question, over the scripted chat's follow-ups as replies (benchmarks/chat_script.jsonl),
    taking turns; warm."""
    import json

    from qabot.conversation import Turn, contextualize

    lines = [json.loads(x) for x in (ROOT / "benchmarks" / "chat_script.jsonl").read_text().splitlines()
             if x.strip()]
    reader = Retriever(index_dir)
    options = load_settings(None).bot_search
    pairs = []
    for x in lines:
        if x["kind"] != "followup":
            continue
        day = dt.date.fromisoformat(x["question_date"])
        first = respond(reader, x["first"], options, as_of=day)
        # The turn as the bot remembers it (bot.reply_for): the articles cited, the sentence led with.
        turn = Turn(x["first"], x["first"], tuple(p.doc_id for p in first.results), time=0.0, said=first.said)
        query = contextualize(x["followup"], turn, 60.0, is_reply=True)
        pairs.append((x["followup"], query, turn, day))
    times: dict[str, list[float]] = {"plain question": [], "follow-up (two searches)": []}
    for _ in range(2):  # the first round warms the caches a running bot has warm
        for name in times:
            times[name].clear()
        for message, query, turn, day in pairs:
            started = time.perf_counter()
            respond(reader, message, options, as_of=day)
            times["plain question"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            respond(reader, query, options, as_of=day, typed=message, previous=turn.doc_ids, replied=True,
                    said=turn.said_to(message))
            times["follow-up (two searches)"].append((time.perf_counter() - started) * 1000)
    plain, follow = (statistics.median(t) for t in times.values())
    # (Every one is searched with the context, as a reply; all but a pronoun's whose contextual
    # search puts a cited article first are searched alone too.)
    return (f"\nFollow-ups as replies: all {len(pairs)}: plain p50 {plain:.1f} ms, follow-up p50 "
            f"{follow:.1f} ms ({follow / plain:.2f}x); load {load()}")


def blas_choice(index_dir: Path, questions: list[Question]) -> str:
    """The exact scan's matrix-vector products on the calling thread (vectors.inner_products,
    what retrieve does) vs numpy's BLAS with its default threads, taking turns."""
    reader = Retriever(index_dir)
    snap = reader.snapshot()
    tables = reader.tables(snap)
    if not tables.exhaustive:
        return "(the index is not scanned exactly: no scan to compare)"
    encoder = reader.encoder(snap)
    vecs = encoder.encode([q.text for q in questions[:100]])
    ways: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "one thread (FAISS kernel)": vectors.inner_products, "numpy BLAS": lambda m, v: m @ v}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for v in vecs:
        for name, product in ways.items():
            started = time.perf_counter()
            for matrix, _, _ in tables.matrices:
                product(matrix, v)
            times[name].append((time.perf_counter() - started) * 1000)
    return "Exact scan: " + ", ".join(
        f"{name} p50 {statistics.median(t):.2f} ms" for name, t in times.items()) + f" (load {load()})"


def agree(index_dir: Path, questions: list[Question]) -> str:
    """Every pair of articles the questions' walks compare, decided both ways; and whether the
    results (ids and order) are the same for every question."""
    reader = Bench(index_dir, False)
    tables = reader.tables(reader.snapshot())
    text = TextTables(tables.snap)
    pairs: set[tuple[int, int, float, float]] = set()
    inner = tables.same_story

    def spy(doc: int, other: int, threshold: float, contained: float) -> bool:
        pairs.add((doc, other, threshold, contained))
        return inner(doc, other, threshold, contained)

    tables.same_story = spy  # type: ignore[method-assign]
    differ = 0
    before = Bench(index_dir, True)
    for q in questions:
        a = [(p.doc_id, p.start, [s.doc_id for s in p.duplicates]) for p in ask_search(reader, q)]  # type: ignore[attr-defined]
        b = [(p.doc_id, p.start, [s.doc_id for s in p.duplicates]) for p in ask_search(before, q)]  # type: ignore[attr-defined]
        differ += a != b
    agreed = sum(tables.same_story(*p) == text.same_story(*p) for p in pairs)
    folded = sum(inner(*p) for p in pairs)
    return (f"{agreed:,} of {len(pairs):,} pairs agree ({folded:,} of them one story); results differ "
            f"on {differ} of {len(questions)} questions")


def load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def build_synthetic(n: int, folder: Path, encoder_from: Path | None = None) -> Path:
    """The synthetic index of n passages in folder/index, built unless it is there. `encoder_from`:
    an index whose ONNX question encoder is copied in and named by the build (hard links), for a
    process that encodes real questions (benchmarks/serve.py); without, questions need vectors
    given (GivenVectors) or torch."""
    import shutil

    import scale
    import synthetic as synth

    from qabot import headline, parts
    from qabot.embed import model_id
    from qabot.indexer import chunker_settings
    from qabot.manifest import Build, Lexical, Model
    from qabot.vectors import choose

    index_dir = folder / "index"
    if index_dir.exists() and store.load_manifest(index_dir) is not None:
        return index_dir
    log(f"synthetic: building {n:,} passages in {index_dir}…")
    corpus = synth.corpus_vectors(n)
    settings = scale.scale_settings(index_dir, "", "")
    changes = zipf_changes(n)
    encoder = None
    if encoder_from is not None:
        found = store.load_manifest(encoder_from)
        encoder = found.build.encoder if found is not None else None
        if encoder is None:
            raise SystemExit(f"{encoder_from} holds no ONNX encoder to copy")
        index_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(encoder_from / encoder, index_dir / encoder, copy_function=os.link,
                        dirs_exist_ok=True)
    build = Build(Model(model_id(settings.model.name), scale.DIM), next_id=n,
                  chunker=chunker_settings(settings), seeds=str(settings.seeds), encoder=encoder,
                  title_version=headline.TITLE_VERSION, lexical=Lexical(settings.bm25))
    # No sentence vectors: with an encoder named, the writer would have the model read every
    # synthetic text to pool them (hours at 1M); the index answers without the cosine, as one
    # written before them does.
    kept = parts.PARTS
    parts.PARTS = tuple(p for p in kept if p is not parts.SENTENCES)
    try:
        with store.open_writer(settings, log=log) as writer:
            writer.merge(build, changes, corpus, fresh=True, layout=choose(n, settings.vectors))
    finally:
        parts.PARTS = kept
    return index_dir


def synthetic_questions(index_dir: Path, count: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    """`count` questions on the synthetic index: each five of a random passage's words (as a
    person picks a few words of a story, leaving out the 200 commonest: function words, which
    BM25's stop list drops from real text but which no stop list names here), and its vector
    (the passage's plus noise: synthetic.py)."""
    rng = np.random.default_rng(seed)
    snap = store.load_snapshot(index_dir)
    n = snap.manifest.passage_count
    rows = np.sort(rng.integers(0, n, size=count))
    vecs = snap.vectors.vectors_of(rows)
    queries = vecs + 1.02 * rng.standard_normal(vecs.shape).astype(np.float32) / np.sqrt(vecs.shape[1])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def content(text: str) -> list[str]:
        found = [w for w in text.rstrip(".").lower().split() if int(w[1:]) >= 200]
        return found if len(found) >= 5 else text.rstrip(".").lower().split()

    texts = [" ".join(rng.choice(content(p.text), size=5, replace=False))
             for p in snap.catalog.passages(rows.tolist())]
    return texts, queries.astype(np.float32)


def synthetic(n: int, folder: Path | None) -> None:
    """A synthetic index of n passages (built once into `folder`), asked 300 questions."""
    work = folder or Path(tempfile.mkdtemp(prefix="qabot-latency-"))
    index_dir = build_synthetic(n, work)
    snap = store.load_snapshot(index_dir)
    texts, queries = synthetic_questions(index_dir, 300)
    given = GivenVectors(queries)
    questions = [Question(f"{t} q{i}", None) for i, t in enumerate(texts)]
    print(f"\nSynthetic index {index_dir}: {snap.manifest.passage_count:,} passages, "
          f"{vectors_desc(snap)}; {len(questions)} questions (vectors given); load {load()}")
    for title, ask in (("respond()", ask_respond), ("search()", ask_search)):
        log(f"synthetic: {title}")
        print(table(title, run(lambda before: Bench(index_dir, before, embedder=given), questions, ask)))


VOCABULARY = 30_000
PER_ARTICLE = 10


def zipf_changes(n: int, seed: int = 0) -> Any:
    """n passages of 40 words drawn from a 30,000-word vocabulary with Zipf's law (exponent 1.07,
    as in English news): the words a question shares with a passage are then spread over the
    index as real words are (scale.py's 100-word vocabulary puts every word in a third of all
    passages, and BM25 then scores most of the index for any question). Ten passages an article,
    ten years of dates."""
    from qabot import catalog

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.07
    words = np.array([f"w{i}" for i in range(VOCABULARY)])
    changes = catalog.Changes()
    base = 730_000
    for a in range(0, n, PER_ARTICLE):
        picks = words[rng.choice(VOCABULARY, size=(min(PER_ARTICLE, n - a), 40), p=weights / weights.sum())]
        doc, recs, pos = f"{a // PER_ARTICLE:07d}.txt", [], 17
        for i, row in enumerate(picks):
            text = " ".join(row).capitalize() + "."
            recs.append(catalog.PassageRecord(a + i, doc, pos, pos + len(text), text))
            pos += len(text) + 1
        day = base + (a // PER_ARTICLE) % 3650
        date = dt.date.fromordinal(day).isoformat()
        changes.articles.append((catalog.ArticleRecord(doc, f"{a:064x}", date, f"Article {a // 10}"), recs))
    return changes


class GivenVectors:
    """An 'embedder' that returns the vector a question names by its last word ("… q17": row 17)."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries, self.name, self.dim = queries, "synthetic", queries.shape[1]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.queries[[int(t.split()[-1][1:]) for t in texts]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def vectors_desc(snap: store.Snapshot) -> str:
    from qabot.vectors import describe

    return describe(snap.layout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, help="the news dev index (built from --dev's corpus)")
    ap.add_argument("--dev", type=Path, default=DEV, help="the built news dev set [/tmp/news-dev]")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="also a synthetic index of N passages")
    ap.add_argument("--synthetic-dir", type=Path, help="build the synthetic index here, and reuse it")
    args = ap.parse_args()
    if not args.index and not args.synthetic:
        ap.error("give --index, --synthetic N, or both")
    instrument()
    if args.index:
        news(args.index, args.dev)
    if args.synthetic:
        synthetic(args.synthetic, args.synthetic_dir)


if __name__ == "__main__":
    main()
