"""How a shard's scoring divides: rows held and `Shard.candidates()` time per shard, for 1..N shards.

    .venv/bin/python benchmarks/shards.py --index /tmp/news-dev-index --queries /tmp/news-dev/queries.jsonl

The shards run in this process (shards.InProcess, no Ray: the figures are the scoring, not the
hops) on --index, which is only read: each question's BM25 weights and vector are worked out as
the router works them out, then every shard's candidates() is timed alone, question by question,
for --rounds passes after one untimed pass. On an index of one segment (after a full merge)
every shard holds a run of it (docs/scaling.md, "Passages to shards").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import clean_env, log  # noqa: E402

from qabot import bm25, shards  # noqa: E402
from qabot.config import load_settings  # noqa: E402
from qabot.embed import model_id  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="A built index (only read).")
    parser.add_argument("--queries", type=Path, default=Path("/tmp/news-dev/queries.jsonl"),
                        help="JSONL with question and question_date per line.")
    parser.add_argument("--shards", type=int, default=3, help="Measure 1 to this many shards.")
    parser.add_argument("--rounds", type=int, default=1, help="Timed passes over the questions.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    lines = args.queries.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    settings = load_settings(index=args.index, env=clean_env())
    model = model_id(settings.model.name)
    report: dict[str, object] = {"index": str(args.index), "questions": len(rows),
                                 "load_average": os.getloadavg()}
    vectors = None
    for n in range(1, args.shards + 1):
        members = [shards.Shard(args.index, settings.vectors.nprobe) for _ in range(n)]
        router = shards.Router(args.index, shards.InProcess(members), model=model)
        gen = router.generation()
        if vectors is None:
            vectors = router.encoder(gen.manifest).encode([r["question"] for r in rows])
        params = gen.manifest.build.lexical
        times: list[list[float]] = [[] for _ in range(n)]
        for round_ in range(args.rounds + 1):
            for row, vector in zip(rows, vectors, strict=True):
                lexical = mean = None
                if gen.lexical is not None and params is not None:
                    stop = bm25.stopword_list(params.params.stopwords)
                    lexical = bm25.question(row["question"], gen.lexical, stop, params.params.stemmer)
                    mean = gen.lexical.mean_length
                day = row.get("question_date")
                as_of = dt.date.fromisoformat(day) if day else dt.date.today()
                ask = shards.Ask(gen.parts[0], row["question"], vector, lexical, mean, settings.search,
                                 None, None, as_of, shards.DEPTH, settings.search.per_article)
                for i, part in enumerate(gen.parts):
                    if not part.manifest.segments:
                        continue
                    t0 = time.perf_counter()
                    members[i].candidates(replace(ask, part=part))
                    if round_:
                        times[i].append((time.perf_counter() - t0) * 1000)
        held = [len(m.snapshot(p).rows.ids) if p.manifest.segments else 0
                for m, p in zip(members, gen.parts, strict=True)]
        p50 = [round(statistics.median(t), 2) if t else None for t in times]
        report[f"{n}_shards"] = {"passages": held, "candidates_p50_ms": p50}
        log(f"{n} shard(s): passages {held}, candidates() p50 ms {p50}")
    report["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{len(rows)} questions on {args.index}; load average before {report['load_average']}, "
              f"after {report['load_average_after']}")
        for n in range(1, args.shards + 1):
            row = report[f"{n}_shards"]
            assert isinstance(row, dict)
            print(f"{n} shard(s): passages {row['passages']}, candidates() p50 ms {row['candidates_p50_ms']}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
