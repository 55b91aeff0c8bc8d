"""How qabot's store and search hold up as the corpus grows: a synthetic corpus, no model needed.

    .venv/bin/python benchmarks/scale.py --passages 100000
    .venv/bin/python benchmarks/scale.py --passages 1000000 --json
    .venv/bin/python benchmarks/scale.py --passages 1000000 --codec sq8
    .venv/bin/python benchmarks/scale.py --passages 100000 --cold-ask   # + real `qabot ask` timing
    .venv/bin/python benchmarks/scale.py --passages 1000000 --noop-index  # 100,000 seed files

N passages (random unit 384-d vectors shaped like a news corpus, see synthetic.py; synthetic
texts, titles and dates, 10 passages an article) are committed through qabot's own code
(store.open_writer → Writer.merge: the vectors part trains and fills the index the settings pick,
BM25 counts its terms; with --cold-ask also written as seed files),
with the vector index the settings pick at that
size ([vectors] in config/qabot.toml, or --type/--codec). Then a fresh process loads the index
with qabot's Retriever and asks 1,000 questions through `search()` (dense mode, k=10, the
question's vector given: the model is not what is measured here), and reports:

    build_s            the writer's commit of every passage (train + add, BM25 with seeds), in seconds
    bytes_per_passage  the committed generation on disk / N
    p50_ms, p95_ms     search() latency per question in the query process
    recall_at_10       search()'s top 10 against exact brute-force top 10 (computed here)
    query_rss_mib      peak RSS of the query process (load + 1,000 questions)
    index_type         the layout committed, e.g. "ivf (2048 cells, none), nprobe 64"
    with --cold-ask, also:
    cold_ask_median_s  median wall time of 5 `qabot ask` processes
    add_one_s          one more seed file: `qabot index`'s run_index starts -> a Retriever that
                       was already running (a bot) answers with the new article first
    add_one_index_s    of which run_index alone (read the seeds, plan, chunk, commit; the
                       article's vectors are synthetic, so embedding is not in it)
    add_one_commit_s   the segment commit starting -> the running reader answering with it
    segments           segments after more single-article runs, up to [segments] max_count
    p50_ms_segments    search() p50 on that many segments (same questions, fresh process)
    merge_s            the run that adds one more: commit its segment, then merge them all
    with --noop-index (seed files written as with --cold-ask), also:
    noop_index_s       median of 3 no-op `qabot index` runs (run_index, seeds unchanged) with the
                       seed signature cache warm: unchanged files cost a stat, not a read
    noop_index_nocache_s  the baseline: the same no-op with the cache file removed first, so
                       every file is read and hashed (what every no-op did before the cache)

The same run also times a baseline: an exact flat index of the same vectors, searched with
FAISS alone (no qabot), so the cost of qabot's layers and of approximation show side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import log  # noqa: E402
from synthetic import corpus_vectors, exact_top_k, query_vectors  # noqa: E402

from qabot import catalog, headline, signatures, store, vectors  # noqa: E402
from qabot.config import Settings, load_settings  # noqa: E402
from qabot.corpus import read_corpus  # noqa: E402
from qabot.embed import model_id  # noqa: E402
from qabot.indexer import chunker_settings, run_index  # noqa: E402
from qabot.manifest import Build, Lexical, Model, to_json  # noqa: E402

DIM = 384
PER_ARTICLE = 10
K = 10
KEYS = ("passages", "build_s", "bytes_per_passage", "p50_ms", "p95_ms", "recall_at_10",
        "query_rss_mib", "index_type")
_WORDS = np.array(("harbour council minister vote election market bank rate storm flood road "
                   "border talks peace court trial police fire school hospital budget tax energy "
                   "oil gas price strike union rail airport football cup final league coach player "
                   "river bridge city village farm crop drought heat winter summer report study "
                   "science space rocket satellite ship port trade export import law reform health "
                   "vaccine virus doctor nurse army troops ceasefire refugee aid charity museum art "
                   "film music festival concert").split())


def synthetic_changes(n: int, seed: int = 0) -> catalog.Changes:
    """Articles of PER_ARTICLE passages with words, titles and dates (ids 0..n-1 in order). Each
    article's text is " date YYYY-MM-DD " and its passages joined by spaces (write_seeds)."""
    rng = np.random.default_rng(seed)
    words = _WORDS[rng.integers(0, len(_WORDS), size=(n, 40))]
    changes = catalog.Changes()
    base = 730_000  # ~2000-09: ten years of dates
    for a in range(0, n, PER_ARTICLE):
        doc = f"{a // PER_ARTICLE:07d}.txt"
        recs, pos = [], 17
        for i in range(a, min(n, a + PER_ARTICLE)):
            text = " ".join(words[i]).capitalize() + "."
            recs.append(catalog.PassageRecord(i, doc, pos, pos + len(text), text))
            pos += len(text) + 1
        day = base + (a // PER_ARTICLE) % 3650
        date = time.strftime("%Y-%m-%d", time.gmtime((day - 719_163) * 86400))
        changes.articles.append((catalog.ArticleRecord(doc, f"{a:064x}", date, f"Article {a // 10}"), recs))
    return changes


def article_text(date: str | None, recs: list[catalog.PassageRecord]) -> str:
    """The seed file of a synthetic article: its passages sit at their recorded offsets."""
    return f" date {date} " + " ".join(p.text for p in recs)


def write_seeds(seeds: Path, changes: catalog.Changes) -> catalog.Changes:
    """Write each article as a seed file, and take its content hash and title from qabot's own
    reading of that file, so `qabot index` (run_index) sees every stored article unchanged."""
    seeds.mkdir(parents=True, exist_ok=True)
    for art, recs in changes.articles:
        (seeds / art.doc_id).write_text(article_text(art.date, recs), encoding="utf-8")
    read, bad = read_corpus(seeds)
    assert not bad, bad[:3]
    real = {a.doc_id: a for a in read}
    return catalog.Changes(articles=[
        (dataclasses.replace(art, hash=real[art.doc_id].content_hash, title=real[art.doc_id].title), recs)
        for art, recs in changes.articles])


def scale_settings(index_dir: Path, kind: str, codec: str) -> Settings:
    """The settings, with the seeds beside the index and the layout asked for on the command line."""
    settings = load_settings(seeds=index_dir.parent / "seeds", index=index_dir)
    wanted = dataclasses.replace(settings.vectors, type=kind or settings.vectors.type,
                                 codec=codec or settings.vectors.codec)
    return dataclasses.replace(settings, vectors=wanted)


def build(index_dir: Path, corpus: np.ndarray, kind: str, codec: str, lexical: bool) -> tuple[float, str]:
    """Commit the corpus as one generation through qabot's own code; (seconds, layout). With
    `lexical` (--cold-ask, --noop-index) the articles are written as seed files too, for run_index."""
    settings = scale_settings(index_dir, kind, codec)
    n = len(corpus)
    changes = synthetic_changes(n)  # not timed: stands for the chunker's output
    if lexical:
        changes = write_seeds(settings.seeds, changes)
    started = time.perf_counter()
    layout = vectors.choose(n, settings.vectors)
    # what run_index checks before an incremental run: model, chunker and title rules; with
    # BM25 parameters the writer also counts every passage's terms (a first `qabot index` does)
    build = Build(Model(model_id(settings.model.name), DIM), next_id=n, chunker=chunker_settings(settings),
                  seeds=str(settings.seeds), title_version=headline.TITLE_VERSION,
                  lexical=Lexical(settings.bm25) if lexical else None)
    with store.open_writer(settings, log=log) as writer:
        writer.merge(build, changes, corpus, fresh=True, layout=layout)
    probe = vectors.nprobe_for(layout.nlist, settings.vectors.nprobe)
    shown = vectors.describe(layout) + (f", nprobe {probe}" if layout.type == "ivf" else "")
    return time.perf_counter() - started, shown


def disk_bytes(index_dir: Path) -> int:
    manifest = store.load_manifest(index_dir)
    assert manifest is not None
    return sum((index_dir / f).stat().st_size for f in manifest.files) + \
        (index_dir / store.MANIFEST).stat().st_size


class GivenVectors:
    """An 'embedder' that returns the question vector named by the question ("q17" -> row 17)."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries, self.name, self.dim = queries, "synthetic", queries.shape[1]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.queries[[int(t[1:]) for t in texts]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def query_process(index_dir: Path, queries_path: Path) -> None:
    """Run in a fresh process: load the index with qabot's Retriever, ask every question."""
    from qabot.config import SearchOptions
    from qabot.reader import Retriever
    from qabot.retrieve import search

    queries = np.load(queries_path)
    retriever = Retriever(index_dir, embedder=GivenVectors(queries))
    # No recency bonus: it reorders near-ties, which is not what recall measures. Duplicate
    # detection stays on (its cost is part of a query; random texts are never near-duplicates).
    dense = SearchOptions(k=K, per_article=PER_ARTICLE, mode="dense", recency_margin=0.0)
    search(retriever, "q0", dense, floor=False, answers=False)
    times, found = [], []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        hits = search(retriever, f"q{i}", dense, floor=False, answers=False)
        times.append((time.perf_counter() - t0) * 1000)
        snap = retriever.snapshot()
        # Passage ids back from the citation: synthetic passage i sits in article i // 10.
        found.append([_passage_id(snap, h.doc_id, h.start) for h in hits])
    print(json.dumps({"times": times, "found": found, **memory()}))


def memory() -> dict[str, float]:
    """Peak and current RSS of this process in MiB, from /proc (not getrusage: its ru_maxrss
    carries over the parent's peak through fork + exec, which here is the whole corpus)."""
    status = Path("/proc/self/status").read_text()
    kib = {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmHWM", "VmRSS", "RssAnon", "RssFile"))
    }
    # RssFile: pages of memory-mapped index files (shared with the page cache, reclaimable).
    return {
        "rss_mib": kib["VmHWM"] / 1024,
        "anon_mib": kib["RssAnon"] / 1024,
        "file_mib": kib["RssFile"] / 1024,
    }


_OFFSETS: dict[tuple[str, int], int] = {}


def _passage_id(snap: store.Snapshot, doc: str, start: int) -> int:
    if (doc, start) not in _OFFSETS:
        for p in snap.catalog.passages(list(snap.articles[doc].ids)):
            _OFFSETS[(p.doc_id, p.start)] = p.id
    return _OFFSETS[(doc, start)]


def baseline(corpus: np.ndarray, queries: np.ndarray, count: int = 200) -> float:
    """p50 ms of an exact FAISS IndexFlatIP over the same vectors, one question at a time."""
    import faiss

    flat = faiss.IndexFlatIP(DIM)
    flat.add(corpus)
    times = []
    for q in queries[:count]:
        t0 = time.perf_counter()
        flat.search(q.reshape(1, -1), K)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class NewVectors:
    """The model for add_one's run_index: synthetic vectors for the new article's passages, the
    real model's name (so the index is not taken for another model's) and word counts as tokens."""

    def __init__(self, name: str, seed: int = 5) -> None:
        self.name, self.dim, self.seed = name, DIM, seed
        self.last: np.ndarray | None = None

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.last = corpus_vectors(len(texts), DIM, seed=self.seed)
        return self.last

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


ADD_COMMIT: list[float] = []  # per add_one: the segment commit starting -> the reader answering


class FirstNew:
    """A question encoder whose question is the new article's first passage (once embedded)."""

    def __init__(self, new: NewVectors) -> None:
        self.new, self.name, self.dim = new, "synthetic", DIM

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        first = self.new.last[0] if self.new.last is not None else corpus_vectors(1, DIM, seed=7)[0]
        return np.tile(first, (len(texts), 1))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def add_one(index_dir: Path, n: int, kind: str, codec: str, name: str = "new.txt",
            seed: int = 5) -> tuple[float, float]:
    """(seconds from `qabot index`'s run_index starting to a Retriever that was running all
    along answering with the new article first, seconds of run_index alone) after one more
    article lands in the seeds; embedding aside (synthetic vectors)."""
    from qabot.config import SearchOptions
    from qabot.reader import Retriever
    from qabot.retrieve import search

    settings = scale_settings(index_dir, kind, codec)
    art, recs = synthetic_changes(n + PER_ARTICLE, seed=seed).articles[-1]
    (settings.seeds / name).write_text(article_text(art.date, recs), encoding="utf-8")
    manifest = store.load_manifest(index_dir)
    assert manifest is not None
    new = NewVectors(manifest.build.model.name, seed)
    reader = Retriever(index_dir, embedder=FirstNew(new))
    dense = SearchOptions(k=1, mode="dense", recency_margin=0.0)
    search(reader, "warm", dense, floor=False, answers=False)  # loaded before the commit, as a bot is
    commit_started: list[float] = []
    real_commit = store.Writer.add

    def timed_commit(*args: Any, **kwargs: Any) -> store.Manifest:
        commit_started.append(time.perf_counter())
        return real_commit(*args, **kwargs)

    store.Writer.add = timed_commit  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        report = run_index(settings, log=log, embedder=new)
        indexed = time.perf_counter() - started
        hits = search(reader, "new", dense, floor=False, answers=False)
        done = time.perf_counter()
    finally:
        store.Writer.add = real_commit  # type: ignore[method-assign]
    answered = done - started
    ADD_COMMIT.append(done - commit_started[0] if commit_started else float("nan"))
    if report.rebuild_reason or report.added != 1 or report.updated or report.removed:
        raise SystemExit(f"expected one added article, run_index said: {report.summary()}")
    if not hits or hits[0].doc_id != name:
        raise SystemExit(f"the running reader did not answer with {name}: {hits[:1]}")
    return answered, indexed


def fill_segments(index_dir: Path, n: int, kind: str, codec: str) -> int:
    """Add single articles until the index has [segments] max_count segments; returns that."""
    settings = scale_settings(index_dir, kind, codec)
    count = 0
    while True:
        manifest = store.load_manifest(index_dir)
        assert manifest is not None
        count = len(manifest.segments)
        if count >= settings.segments.max_count:
            return count
        add_one(index_dir, n, kind, codec, f"more-{count}.txt", seed=100 + count)


def ask_all(index_dir: Path, root: Path) -> dict[str, Any]:
    """The query process's report: every question asked in a fresh process."""
    proc = subprocess.run(
        [sys.executable, __file__, "--passages", "0", "--query-process", str(index_dir),
         str(root / "queries.npy")],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(HERE.parent)),
    )
    if proc.returncode != 0:
        raise SystemExit(f"query process failed:\n{proc.stderr}")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def noop_index(index_dir: Path, kind: str, codec: str, runs: int = 3) -> tuple[float, float]:
    """Median seconds of a no-op `qabot index` (run_index over the unchanged seeds): with the
    signature cache warm, and with it removed first (the baseline). Runs alternate, so both
    meet the same page cache."""
    settings = warm_cache(index_dir, kind, codec)
    warm, cold = [], []
    for _ in range(runs):
        (index_dir / signatures.CACHE).unlink()
        cold.append(_noop(settings))
        warm.append(_noop(settings))
    return statistics.median(warm), statistics.median(cold)


def warm_cache(index_dir: Path, kind: str, codec: str) -> Settings:
    """Run one no-op `qabot index`, as any earlier run would have: the synthetic build committed
    without run_index, so there is no seed signature cache yet. Returns the settings."""
    settings = scale_settings(index_dir, kind, codec)
    # Seed files stamped within signatures.RACY_NS of a scan are read again by the next run: let
    # the newest (written before the commit, so before the manifest) age past that first.
    age = time.time_ns() - (index_dir / store.MANIFEST).stat().st_mtime_ns
    time.sleep(max(0.0, (signatures.RACY_NS - age) / 1e9))
    _noop(settings)
    return settings


def _noop(settings: Settings) -> float:
    """Seconds of one run_index that must find nothing to do."""
    started = time.perf_counter()
    report = run_index(settings, log=log)
    seconds = time.perf_counter() - started
    if report.committed or report.rebuild_reason or report.skipped:
        raise SystemExit(f"expected a no-op, run_index said: {report.summary()}")
    return seconds


def cold_ask(index_dir: Path, runs: int = 5) -> list[float]:
    """Wall seconds of `qabot ask` (hybrid) processes against this index, with the real encoder."""
    from common import clean_env, qabot_exe

    encoder = _encoder_for(index_dir)
    meta = json.loads((index_dir / encoder / "encoder.json").read_text())
    committed = store.load_manifest(index_dir)
    assert committed is not None
    # point the synthetic index at the real encoder, so `qabot ask` encodes questions for real
    build = dataclasses.replace(committed.build, encoder=encoder, model=Model(meta["model"], DIM))
    record = dataclasses.replace(committed, build=build)
    (index_dir / store.MANIFEST).write_text(json.dumps(to_json(record)))
    seeds = index_dir / "seeds"
    seeds.mkdir(exist_ok=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                str(qabot_exe()),
                "ask",
                "Which harbour council vote was held?",
                "--index",
                str(index_dir),
                "--seeds",
                str(seeds),
            ],
            env=clean_env(),
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"qabot ask failed:\n{proc.stderr}")
    return times


def _encoder_for(index_dir: Path) -> str:
    """The real model's ONNX export, copied from the repo's index or exported once."""
    from qabot.config import PACKAGED_MODEL
    from qabot.embed import model_id
    from qabot.encoder import encoder_folder

    name = encoder_folder(model_id(PACKAGED_MODEL))
    for source in (HERE.parent / "embeddings", Path(tempfile.gettempdir()) / "qabot-scale-encoder"):
        if (source / name / "encoder.json").is_file():
            shutil.copytree(source / name, index_dir / name)
            return name
    from qabot.embed import TorchEmbedder

    cache = Path(tempfile.gettempdir()) / "qabot-scale-encoder"
    TorchEmbedder(PACKAGED_MODEL).export_onnx(cache)
    shutil.copytree(cache / name, index_dir / name)
    return name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, required=True, help="corpus size N")
    ap.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--type", default="", help="flat | ivf | auto (default: the settings)")
    ap.add_argument("--codec", default="", help="none | float16 | sq8 | pq (default: the settings)")
    ap.add_argument("--topics", type=int, default=None, help="0: uniform vectors (the worst case)")
    ap.add_argument(
        "--cold-ask",
        action="store_true",
        help="also build BM25, time 5 real `qabot ask` processes (hybrid) on the index "
        "and the commit of one more article",
    )
    ap.add_argument(
        "--noop-index",
        action="store_true",
        help="also write the seed files and BM25, and time a no-op `qabot index` with and "
        "without the seed signature cache",
    )
    ap.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp dir)")
    ap.add_argument("--query-process", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.query_process:
        query_process(Path(args.query_process[0]), Path(args.query_process[1]))
        return

    n = args.passages
    root = args.dir or Path(tempfile.mkdtemp(prefix="qabot-scale-"))
    index_dir = root / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    try:
        log(f"generating {n:,} synthetic passages …")
        corpus = corpus_vectors(n, DIM, topics=args.topics, per_article=PER_ARTICLE)
        queries = query_vectors(corpus, args.queries)
        log("building through qabot's store …")
        seeded = args.cold_ask or args.noop_index
        build_s, index_type = build(index_dir, corpus, args.type, args.codec, seeded)
        log(f"   {build_s:.1f} s, {index_type}")
        noop = noop_index(index_dir, args.type, args.codec) if args.noop_index else None
        np.save(root / "queries.npy", queries)
        log(f"asking {args.queries} questions in a fresh process …")
        out = ask_all(index_dir, root)
        log("exact top-10 for recall …")
        truth = exact_top_k(corpus, queries, K)
        recall = float(
            np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(out["found"], truth, strict=True)])
        )
        result = {
            "passages": n,
            "build_s": round(build_s, 2),
            "bytes_per_passage": round(disk_bytes(index_dir) / n, 1),
            "p50_ms": round(statistics.median(out["times"]), 2),
            "p95_ms": round(float(np.percentile(out["times"], 95)), 2),
            "recall_at_10": round(recall, 4),
            "query_rss_mib": round(out["rss_mib"], 1),
            "index_type": index_type,
        }
        base_ms = baseline(corpus, queries)
        asks = cold_ask(index_dir) if args.cold_ask else []
        extra: dict[str, float] = {}
        if args.cold_ask:
            if noop is None:
                warm_cache(index_dir, args.type, args.codec)  # a running deployment has it
            answered, indexed = add_one(index_dir, n, args.type, args.codec)
            extra = {"add_one_s": round(answered, 2), "add_one_index_s": round(indexed, 2),
                     "add_one_commit_s": round(ADD_COMMIT[0], 3)}
            log("adding single articles up to the most segments …")
            extra["segments"] = fill_segments(index_dir, n, args.type, args.codec)
            extra["p50_ms_segments"] = round(statistics.median(ask_all(index_dir, root)["times"]), 2)
            log("one more: its segment, then the merge …")
            _, extra["merge_s"] = add_one(index_dir, n, args.type, args.codec, "merge.txt", seed=99)
            extra["merge_s"] = round(extra["merge_s"], 2)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    assert tuple(result) == KEYS
    if args.json:
        if asks:
            extra["cold_ask_median_s"] = round(statistics.median(asks), 2)
        if noop is not None:
            extra["noop_index_s"] = round(noop[0], 2)
            extra["noop_index_nocache_s"] = round(noop[1], 2)
        print(json.dumps(result | extra))
        return
    print(f"\nqabot scale benchmark: {n:,} synthetic passages, {args.queries} questions, k={K}")
    for key in KEYS[1:]:
        print(f"  {key:<18} {result[key]}")
    print(
        f"  query process at the end: {out['anon_mib']:.0f} MiB private, {out['file_mib']:.0f} MiB "
        "of memory-mapped index pages (shared, reclaimable)"
    )
    print(
        f"  baseline: exact FAISS IndexFlatIP alone, same vectors: p50 {base_ms:.2f} ms "
        f"(qabot search() p50 {result['p50_ms']} ms)"
    )
    if extra:
        print(f"  add one article, run_index start -> a running reader answers with it: "
              f"{extra['add_one_s']:.2f} s (run_index alone {extra['add_one_index_s']:.2f} s, "
              f"embedding aside; the commit starting -> answered: {extra['add_one_commit_s']:.3f} s)")
        print(f"  at {extra['segments']:.0f} segments: p50 {extra['p50_ms_segments']} ms "
              f"(one segment: {result['p50_ms']} ms); one more article, then the merge: "
              f"{extra['merge_s']:.2f} s")
    if noop is not None:
        print(f"  no-op `qabot index` (run_index, {n // PER_ARTICLE:,} seed files unchanged): "
              f"{noop[0]:.2f} s with the signature cache; {noop[1]:.2f} s without (every file read)")
    if asks:
        print(
            f"  cold `qabot ask` (hybrid, real encoder): median {statistics.median(asks):.2f} s, "
            f"max {max(asks):.2f} s of {len(asks)}"
        )


if __name__ == "__main__":
    main()
