"""Recall of the IVF layouts on real embeddings: an index qabot built, and real questions.

    .venv/bin/python benchmarks/ann_real.py --index /tmp/scifact-index \
        --queries ../shared/benchmarks/scifact/queries.jsonl
    .venv/bin/python benchmarks/ann_real.py ... --nlist 0 --codec sq8   # what compression alone costs

Synthetic vectors (benchmarks/synthetic.py) are easier for an approximate index than real ones:
their neighbourhoods are cleaner. So the nprobe rule (vectors.nprobe_for) is set from this:
the index's own vectors (exact, read back from a float32 index), its own question encoder, and
for each nlist and nprobe, recall@10 of vectors.search() against brute force — for the real
questions and for 300 stored passages used as questions. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qabot import store, vectors  # noqa: E402
from qabot.embed import OnnxEmbedder  # noqa: E402


def stored_vectors(index_dir: Path) -> tuple[np.ndarray, str]:
    """Every live vector of the index (all its segments) and its encoder folder."""
    snap = store.load_snapshot(index_dir)
    assert snap.manifest.build.encoder, f"{index_dir} has no ONNX encoder"
    return snap.vectors.vectors_of(snap.rows.ids), snap.manifest.build.encoder


def recall(index: object, layout: vectors.Layout, queries: np.ndarray, truth: np.ndarray,
           nprobe: int) -> float:
    found = [vectors.search(index, layout, q, 10, nprobe=nprobe)[1] for q in queries]
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True, help="JSONL with a \"question\" per line")
    ap.add_argument("--nlist", type=int, nargs="+", default=[64, 128, 256, 512],
                    help="0 measures the flat index (with --codec: what compression alone costs)")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--codec", default="none")
    args = ap.parse_args()

    x, encoder = stored_vectors(args.index)
    with args.queries.open(encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for line in f if line.strip()]
    sets = {"questions": OnnxEmbedder(args.index / encoder).encode(questions),
            "passages": x[np.random.default_rng(0).choice(len(x), 300, replace=False)]}
    truth = {name: np.argsort(-(q @ x.T), axis=1)[:, :10] for name, q in sets.items()}
    print(f"{len(x):,} vectors, {len(questions)} questions, codec {args.codec}; recall@10 vs exact")
    print(f"{'nlist':>6} {'queries':>10} " + "".join(f"{'nprobe ' + str(p):>11}" for p in args.nprobe))
    for nlist in args.nlist:
        # nlist 0: the flat (exhaustive) index, where only the codec can cost recall
        layout = (vectors.Layout("ivf", args.codec, nlist, len(x)) if nlist
                  else vectors.Layout("flat", args.codec))
        index = vectors.new_index(layout, x.shape[1], x)
        vectors.add(index, np.arange(len(x), dtype=np.int64), x)
        for name, queries in sets.items():
            probes = [p for p in args.nprobe if p <= nlist] if nlist else [0]
            row = [recall(index, layout, queries, truth[name], p) for p in probes]
            print(f"{nlist:>6} {name:>10} " + "".join(f"{r:>11.3f}" for r in row), flush=True)


if __name__ == "__main__":
    main()
