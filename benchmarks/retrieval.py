"""Retrieval quality and latency on SciFact (BEIR test split): dense, bm25 and hybrid side by side.

    .venv/bin/python benchmarks/retrieval.py                    # the table (builds the index once)
    .venv/bin/python benchmarks/retrieval.py --sweep            # + the settings that were tried
    .venv/bin/python benchmarks/retrieval.py --calibrate        # + confidence-floor score data

The index is built once into --index (default /tmp/scifact-index, several minutes with the real
model on 2 cores) and reused; `qabot index` only adds what changed, so later runs start at once.
Published nDCG@10 on this split: BM25 0.665, BM25 + cross-encoder 0.688 (BEIR), all-MiniLM-L6-v2
dense 0.645 (MTEB). Settings are tuned on the whole query set, never per query.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qabot import bm25, rank, store  # noqa: E402
from qabot.config import SearchOptions, load_settings  # noqa: E402
from qabot.evaluate import (  # noqa: E402
    Query,
    evaluate,
    ndcg_at,
    percentile,
    ranked_docs,
    read_queries,
    reciprocal_rank,
)
from qabot.indexer import run_index  # noqa: E402
from qabot.reader import Retriever  # noqa: E402
from qabot.retrieve import search  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "benchmarks" / "scifact"
MODES = ("dense", "bm25", "hybrid")


def log(msg: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[retrieval {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def table(rows: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of the headline metrics, one row per configuration."""
    cols = ("ndcg@10", "hit@10", "mrr@10", "hit@1", "p50_ms", "p95_ms")
    lines = [f"{'':<34}" + "".join(f"{c:>9}" for c in cols)]
    for name, r in rows.items():
        lines.append(f"{name:<34}" + "".join(
            f"{r[c]:>9.1f}" if c.endswith("_ms") else f"{r[c]:>9.4f}" for c in cols))
    return "\n".join(lines)


def with_lexical(index: Path, params: bm25.Params) -> Retriever:
    """The index with its BM25 part built with `params`, the way `qabot index` does it when
    [bm25] changes (run_index: the matrix rebuilt from the stored passages, nothing re-embedded).

    It runs on a copy beside the index whose files are hard links: a commit only ever adds a
    generation and replaces manifest.json by rename, so the original is never written to.
    """
    manifest = store.load_manifest(index)
    assert manifest is not None and manifest.build.seeds, f"no index with a seeds folder in {index}"
    copy = Path(tempfile.gettempdir()) / f"qabot-bm25-variant-{os.getpid()}"
    if not copy.exists():
        shutil.copytree(index, copy, copy_function=os.link, ignore=shutil.ignore_patterns(".lock"))
        atexit.register(shutil.rmtree, copy, True)
    base = load_settings(seeds=Path(manifest.build.seeds), index=copy, env={})
    variant = dataclasses.replace(base, bm25=params)
    report = run_index(variant, log=lambda msg: None)
    assert not report.passages_embedded, report.summary()  # only BM25 was rebuilt
    return Retriever.for_settings(variant)


def rrf(retriever: Retriever, queries: list[Query], k_rrf: int, depth: int = 100) -> dict[str, float]:
    """Reciprocal-rank fusion of the dense and bm25 article rankings, for comparison only."""
    ndcg, mrr = [], []
    for q in queries:
        fused: dict[str, float] = {}
        for mode in ("dense", "bm25"):
            hits = search(retriever, q.question, SearchOptions(k=depth, mode=mode), floor=False,
                          answers=False)
            for r, p in enumerate(hits, start=1):
                fused[p.doc_id[:-4]] = fused.get(p.doc_id[:-4], 0.0) + 1.0 / (k_rrf + r)
        ranked = [frozenset([d]) for d in sorted(fused, key=lambda d: -fused[d])]
        ndcg.append(ndcg_at(ranked, q.gold_docs))
        mrr.append(reciprocal_rank(ranked, q.gold_docs))
    return {"ndcg@10": statistics.mean(ndcg), "mrr@10": statistics.mean(mrr)}


def sweep(retriever: Retriever, queries: list[Query], base: bm25.Params) -> dict[str, Any]:
    # BM25 variants are searched on a hard-linked copy of the index (with_lexical)
    """Every setting tried, one at a time from the defaults; returns the figures."""
    out: dict[str, Any] = {"fusion_weight": {}, "rrf_k": {}, "bm25": {}}
    for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        r = evaluate(retriever, queries, SearchOptions(fusion_weight=w), answers=False)
        out["fusion_weight"][w] = r
        log(f"   hybrid fusion_weight={w}: nDCG@10 {r['ndcg@10']:.4f}")
    for k_rrf in (10, 60):
        out["rrf_k"][k_rrf] = r = rrf(retriever, queries, k_rrf)
        log(f"   RRF k={k_rrf}: nDCG@10 {r['ndcg@10']:.4f}")
    variants = {
        "k1=0.9 b=0.4": dataclasses.replace(base, k1=0.9, b=0.4),
        "k1=1.2 b=0.75": dataclasses.replace(base, k1=1.2, b=0.75),
        "k1=1.5 b=0.75": dataclasses.replace(base, k1=1.5, b=0.75),
        "k1=1.2 b=0.9": dataclasses.replace(base, k1=1.2, b=0.9),
        "no stemming": dataclasses.replace(base, stemmer=""),
        "no stopwords": dataclasses.replace(base, stopwords=""),
        "titles": dataclasses.replace(base, titles=True),
        "no titles": dataclasses.replace(base, titles=False),
    }
    for name, params in variants.items():
        if params == base:
            continue
        variant = with_lexical(retriever.index_dir, params)
        row = {m: evaluate(variant, queries, SearchOptions(mode=m), answers=False)
               for m in ("bm25", "hybrid")}
        out["bm25"][name] = row
        log(f"   {name}: bm25 {row['bm25']['ndcg@10']:.4f} hybrid {row['hybrid']['ndcg@10']:.4f}")
    return out


def calibrate(retriever: Retriever, queries: list[Query], mode: str) -> dict[str, list[float]]:
    """Top scores when the answer is in the corpus (gold ranked first) and when it isn't
    (the gold articles struck out, as if never indexed)."""
    found, missing = [], []
    for q in queries:
        hits = search(retriever, q.question, SearchOptions(k=10, mode=mode), floor=False, answers=False)
        if hits and ranked_docs(hits)[0] & q.gold_docs:
            found.append(hits[0].score)
        rest = [p for p, docs in zip(hits, ranked_docs(hits), strict=True) if not docs & q.gold_docs]
        if rest:
            missing.append(rest[0].score)
    return {"answer_in_corpus": found, "answer_removed": missing}


def ask_latency(retriever: Retriever, queries: list[Query], mode: str) -> dict[str, float]:
    """Milliseconds per search() with the defaults of `qabot ask`: k=5, answering sentences."""
    times = []
    for q in queries:
        started = time.perf_counter()
        search(retriever, q.question, SearchOptions(k=5, mode=mode), floor=False)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


OFF_TOPIC = (  # questions no SciFact abstract answers: the score of pure noise
    "Which road did Azerbaijan propose to help Armenian residents in Karabakh?",
    "Who won the FA Cup final at Wembley?",
    "What did the European Central Bank decide on rates?",
    "How many residents were evacuated from Grindavik?",
    "Who won the 2019 Nobel Prize in Literature?",
    "How do I bake sourdough bread?",
    "What is the capital of Australia?",
    "When does the next train to Berlin leave?",
    "Which team signed the new striker?",
    "Why did olive oil prices reach a record?",
)


def off_topic(retriever: Retriever, mode: str) -> list[float]:
    """Top scores of questions from another domain altogether."""
    return [
        hits[0].score
        for q in OFF_TOPIC
        if (hits := search(retriever, q, SearchOptions(k=1, mode=mode), floor=False, answers=False))
    ]


def news_calibration(scifact_index: Path) -> dict[str, dict[str, list[float]]]:
    """Top scores on the news fixtures: answerable questions (gold ranked first) and off-topic ones."""
    import os
    import shutil
    import tempfile

    fixture = ROOT / "tests" / "fixtures" / "retrieval"
    root = Path(tempfile.mkdtemp(prefix="qabot-news-"))
    shutil.copytree(fixture / "seeds", root / "seeds")
    (root / "idx").mkdir()
    for enc in scifact_index.glob("encoder-*"):  # the exported model: no torch, no re-export
        shutil.copytree(enc, root / "idx" / enc.name, copy_function=os.link)
    settings = load_settings(seeds=root / "seeds", index=root / "idx")
    run_index(settings, log=lambda m: None)
    retriever = Retriever(settings.index)
    queries, _ = read_queries(fixture / "queries.jsonl")
    out: dict[str, dict[str, list[float]]] = {}
    for mode in MODES:
        found, off = [], []
        for q in queries:
            hits = search(retriever, q.question, SearchOptions(k=1, mode=mode), floor=False, as_of=q.date,
                          answers=False)
            if not q.gold_docs:
                off.append(hits[0].score if hits else 0.0)
            elif hits and ranked_docs(hits)[0] & q.gold_docs:  # a listed duplicate counts
                found.append(hits[0].score)
        out[mode] = {"answer_in_corpus": found, "off_topic": off}
    shutil.rmtree(root, ignore_errors=True)
    return out


def recency_cost(retriever: Retriever, queries: list[Query], margins: list[float]) -> dict[float, float]:
    """nDCG@10 of hybrid when every abstract gets a random date, by recency margin: with dates
    unrelated to relevance, whatever the preference reorders is pure cost."""
    # A Retriever of its own, whose tables this rewrites and which is dropped afterwards
    retriever = Retriever(retriever.index_dir, retriever.model, nprobe=retriever.nprobe)
    snap = retriever.snapshot()
    tables = retriever.tables(snap)
    rng = np.random.default_rng(0)
    base = 738000  # 2021-08
    # one random day per article, on its every row (the prior) and for its date (tie-breaks)
    nums = np.unique(tables.doc)
    day_of = np.zeros(int(nums.max()) + 1 if len(nums) else 0, dtype=np.int64)
    day_of[nums] = base + rng.integers(0, 1000, len(nums))
    tables.day = day_of[tables.doc]
    tables.max_day = int(tables.day.max()) if len(tables.day) else 0
    tables.date = lambda num: dt.date.fromordinal(int(day_of[num]))  # type: ignore[method-assign]
    out = {
        m: evaluate(retriever, queries, SearchOptions(recency_margin=m), answers=False)["ndcg@10"]
        for m in margins
    }
    return out


def variants(text: str, rng: np.random.Generator) -> dict[str, str]:
    """Edited copies of an article, as re-publication and syndication produce them."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    sents = [s for s in " ".join(lines).split(". ") if s]
    i = int(rng.integers(0, len(sents)))
    out = {
        "same text": text,
        "footer added": text + "\nThis story was distributed by Nordic Wire. All rights reserved.",
        "headline rewritten": "UPDATED: "
        + " ".join(reversed(lines[0].split()))
        + "\n"
        + "\n".join(lines[1:]),
        "one sentence reworded": ". ".join(
            s if j != i else " ".join(reversed(s.split())) for j, s in enumerate(sents)
        ),
        "one sentence dropped": ". ".join(s for j, s in enumerate(sents) if j != i),
        "one sentence added": text + "\nOfficials said more details would follow later this week.",
    }
    out["two edits"] = out["one sentence dropped"] + "\nThis story was updated with new figures."
    return out


def duplicates(retriever: Retriever, corpus: Path, sample: int = 300) -> dict[str, list[float]]:
    """Shingle Jaccard of near-duplicate variants vs the most similar distinct abstract."""
    # A Retriever of its own, whose tables this rewrites and which is dropped afterwards
    retriever = Retriever(retriever.index_dir, retriever.model, nprobe=retriever.nprobe)
    snap = retriever.snapshot()
    tables = retriever.tables(snap)
    if not tables.exhaustive:
        raise SystemExit("--duplicates needs an exact (flat) index: it compares article vectors")
    rng = np.random.default_rng(0)
    nums = np.unique(tables.doc)
    picks = rng.choice(nums, size=min(sample, len(nums)), replace=False)
    # every live vector, in row order (exact: stored float32)
    matrix, matrix_doc = snap.vectors.vectors_of(tables.ids), tables.doc
    out: dict[str, list[float]] = {"distinct: nearest by meaning": []}
    for n in picks.tolist():
        doc = tables.articles([n])[n].doc_id
        text = (corpus / doc).read_text(encoding="utf-8")
        mine = rank.shingles(text)
        for name, variant in variants(text, rng).items():
            out.setdefault(name, []).append(rank.jaccard(mine, rank.shingles(variant)))
        # the nearest other abstract by mean passage vector: the hardest distinct pair
        rows = np.flatnonzero(matrix_doc == n)
        centre = matrix[rows].mean(axis=0)
        sims = matrix @ centre
        sims[matrix_doc == n] = -np.inf
        other = int(matrix_doc[int(np.argmax(sims))])
        mine, theirs = (frozenset(tables.fingerprint(d).tolist()) for d in (n, other))
        out["distinct: nearest by meaning"].append(rank.jaccard(mine, theirs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scifact", type=Path, default=SCIFACT)
    ap.add_argument("--index", type=Path, default=Path("/tmp/scifact-index"))
    ap.add_argument("--sweep", action="store_true", help="also try other settings")
    ap.add_argument("--calibrate", action="store_true", help="also print confidence score data")
    ap.add_argument("--recency", action="store_true", help="also measure the recency margin's cost")
    ap.add_argument("--duplicates", action="store_true", help="also print near-duplicate data")
    ap.add_argument("--json", type=Path, help="write every figure to this file")
    ap.add_argument("--ask-queries", type=int, default=50, help="claims timed on the full ask path")
    args = ap.parse_args()

    settings = load_settings(seeds=args.scifact / "corpus", index=args.index)
    log(f"indexing {settings.seeds} into {settings.index} (only what changed) …")
    report = run_index(settings, log=log)
    log(report.summary())
    queries, problems = read_queries(args.scifact / "queries.jsonl")
    assert not problems, problems
    retriever = Retriever(settings.index)
    search(
        retriever, "warm up", SearchOptions(mode="hybrid"), floor=False
    )  # load vectors, BM25, encoder before timing
    figures: dict[str, Any] = {"index": report.summary(), "queries": len(queries)}
    rows = {}
    for mode in MODES:
        rows[mode] = evaluate(retriever, queries, SearchOptions(mode=mode), answers=False)
        log(f"{mode}: nDCG@10 {rows[mode]['ndcg@10']:.4f}")
    figures["modes"] = rows
    print(
        f"SciFact, {len(queries)} claims, {report.passage_count} passages "
        f"({report.articles} abstracts); latency: ranking only, top 10\n" + table(rows)
    )
    ask = {mode: ask_latency(retriever, queries[: args.ask_queries], mode) for mode in MODES}
    figures["ask_latency"] = ask
    print(
        f"\nsearch() as `qabot ask` runs it (k=5, answering sentence picked), first "
        f"{args.ask_queries} claims: "
        + "; ".join(f"{m} p50 {v['p50_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms" for m, v in ask.items())
    )
    if args.sweep:
        log("sweep …")
        figures["sweep"] = sweep(retriever, queries, settings.bm25)
        print("\nSettings tried (one at a time from the defaults):")
        fw = {f"hybrid fusion_weight={w}": r for w, r in figures["sweep"]["fusion_weight"].items()}
        print(table(fw))
        for k_rrf, r in figures["sweep"]["rrf_k"].items():
            print(f"{f'hybrid RRF k={k_rrf} (comparison)':<34}{r['ndcg@10']:>9.4f}")
        for name, row in figures["sweep"]["bm25"].items():
            print(
                f"{'bm25 ' + name:<34}{row['bm25']['ndcg@10']:>9.4f}   hybrid {row['hybrid']['ndcg@10']:.4f}"
            )
    if args.calibrate:
        figures["calibration"] = {
            m: dict(calibrate(retriever, queries, m), off_topic=off_topic(retriever, m)) for m in MODES
        }
        print(
            "\nTop score: answer in corpus (gold ranked 1st), answer removed (gold struck out), "
            "off-topic questions"
        )
        figures["news_calibration"] = news = news_calibration(settings.index)
        for mode, c in news.items():
            for name, scores in c.items():
                print(
                    f"news {mode:<7} {name:<17} n={len(scores):<3} "
                    + " ".join(f"{v:.3f}" for v in sorted(scores))
                )
        for mode, c in figures["calibration"].items():
            for name, scores in c.items():
                q = np.percentile(scores, [5, 25, 50, 75, 95]) if scores else []
                print(
                    f"{mode:<7} {name:<17} n={len(scores):<4} p5/25/50/75/95 "
                    + " ".join(f"{v:.3f}" for v in q)
                )
    if args.recency:
        margins = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.08]
        figures["recency"] = cost = recency_cost(retriever, queries, margins)
        print("\nHybrid nDCG@10 with random article dates, by recency margin (the cost of the preference)")
        print("  ".join(f"{m}: {v:.4f}" for m, v in cost.items()))
    if args.duplicates:
        figures["duplicates"] = dup = duplicates(retriever, settings.seeds)
        print("\nWord-3-shingle Jaccard with the original (300 abstracts)")
        for name, values in dup.items():
            q = np.percentile(values, [0, 5, 50, 95, 100])
            print(f"  {name:<30} min/p5/p50/p95/max " + " ".join(f"{v:.3f}" for v in q))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
