"""What sentence vectors cost at index time, next to embedding without them, in one run.

    .venv/bin/python benchmarks/sentvecs.py --index /tmp/news-26 [--sample 1200] [--rounds 3]
    .venv/bin/python benchmarks/sentvecs.py --index /tmp/news-26 --latency [--dev /tmp/news-dev]

On a sample of INDEX's stored passages (spread over the whole index), interleaved rounds of:
  - `encode`: the passage vectors alone, as indexing embedded before sentence vectors
  - `encode_pooled`: the same vectors and each sentence's vector pooled from the same run
plus what writing the part costs (sentvecs.build + save of the sample) and its bytes per passage,
and the share of the whole index's `sentences.npz` in the index's bytes. Best round of each;
passages per second. Needs an index built by this qabot (it has the encoder export).

`--latency`: respond() (k=5, the configured settings) on the news dev set's 102 quiz questions
and the 197 chat questions, as of their dates: as shipped, without the sentences' cosine
(weight 0), and without it with 3 passages an article competing for the answering sentence
(the answer layer before issue 22's second part), taking turns question by question on one warm
reader: p50 / p95 ms of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qabot import sentvecs, store  # noqa: E402
from qabot.embed import OnnxEmbedder  # noqa: E402


def latency(index: Path, dev: Path) -> None:
    import dataclasses
    import statistics

    from qabot.answer import AnswerOptions, respond
    from qabot.config import load_settings
    from qabot.evaluate import read_queries
    from qabot.reader import Retriever

    quiz, _ = read_queries(dev / "queries.jsonl")
    chat, _ = read_queries(ROOT / "benchmarks" / "chat_questions.jsonl")
    questions = [*quiz, *chat]
    tuning = dataclasses.replace(load_settings(None).search, k=5)
    on = AnswerOptions()
    off = dataclasses.replace(on, weights=dataclasses.replace(on.weights, cosine=0.0))
    three = dataclasses.replace(off, passages_per_article=3)
    retriever = Retriever(index)
    for q in questions[:20]:  # warm: encoder, tables, page cache
        respond(retriever, q.question, tuning, as_of=q.date, answering=on)
    runs = [("as shipped (cosine, 12 passages an article)", on), ("without the cosine", off),
            ("without it, 3 passages an article (before)", three)]
    took: dict[str, list[float]] = {name: [] for name, _ in runs}
    for i, q in enumerate(questions):
        for name, opts in runs[i % 3:] + runs[: i % 3]:  # each goes first a third of the time
            t = time.perf_counter()
            respond(retriever, q.question, tuning, as_of=q.date, answering=opts)
            took[name].append((time.perf_counter() - t) * 1000)
    print(f"\nrespond() on {len(questions)} dev questions (k=5, warm), load average {os.getloadavg()[0]:.1f}")
    print("| answer layer | p50 ms | p95 ms |")
    print("| --- | ---: | ---: |")
    for name, ms in took.items():
        print(f"| {name} | {statistics.median(ms):.1f} | {statistics.quantiles(ms, n=20)[-1]:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--sample", type=int, default=1200, help="passages [1200]")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds [3]")
    ap.add_argument("--latency", action="store_true", help="respond() with and without the cosine")
    ap.add_argument("--dev", type=Path, default=Path("/tmp/news-dev"), help="the dev set [/tmp/news-dev]")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.latency:
        latency(args.index, args.dev)
        return
    snap = store.load_snapshot(args.index)
    manifest = snap.manifest
    assert manifest.build.encoder, "the index has no ONNX export"
    every = snap.rows.ids
    ids = every[np.linspace(0, len(every) - 1, min(args.sample, len(every))).astype(int)]
    texts = [r.text for r in snap.catalog.passages(ids.tolist())]
    embedder = OnnxEmbedder(args.index / manifest.build.encoder)
    embedder.encode_pooled(texts[:64])  # opens the token session (~1 s, once per indexing run)
    best = {"encode": float("inf"), "encode_pooled": float("inf")}
    pooled: list[sentvecs.Pooled] = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        embedder.encode(texts)
        best["encode"] = min(best["encode"], time.perf_counter() - t)
        t = time.perf_counter()
        _, pooled = embedder.encode_pooled(texts)
        best["encode_pooled"] = min(best["encode_pooled"], time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        part = sentvecs.build([(i, sentvecs.Coded.from_pooled(p)) for i, p in zip(ids.tolist(), pooled,
                                                                                  strict=True)], embedder.dim)
        sentvecs.save(part, Path(tmp))
        write = time.perf_counter() - t
        size = (Path(tmp) / sentvecs.FILE).stat().st_size
    sentences = sum(len(p.spans) for p in pooled)
    print(f"Sentence vectors on {len(texts)} passages of {args.index} ({sentences} sentences, "
          f"{sentences / len(texts):.1f} a passage); best of {args.rounds} interleaved rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| step | seconds | passages/s | vs encode |")
    print("| --- | ---: | ---: | ---: |")
    base = best["encode"]
    for name, secs in (("encode (passage vectors only, before)", base),
                       ("encode_pooled (+ sentence vectors)", best["encode_pooled"]),
                       ("encode_pooled + writing the part", best["encode_pooled"] + write)):
        print(f"| {name} | {secs:.2f} | {len(texts) / secs:.1f} | {secs / base:.3f}× |")
    print(f"\nThe part: {size / len(texts):,.0f} bytes a passage ({(manifest.build.model.dim + 12)} a "
          f"sentence: int8 codes, a float32 scale, an int32 span)")
    files = [f for s in manifest.segments for f in (s.files_of("sentences") or ())]
    if files:
        whole = sum((args.index / f).stat().st_size for f in files)
        named = {f for s in manifest.segments for fs in s.parts for f in fs.paths}
        total = sum((args.index / f).stat().st_size for f in named)
        print(f"Whole index: sentences.npz {whole / 2**20:.1f} MiB of {total / 2**20:.1f} MiB of segment "
              f"files ({whole / max(manifest.passage_count, 1):,.0f} bytes a passage)")


if __name__ == "__main__":
    main()
