"""How a shard's scoring divides: rows held and `Shard.candidates()` time per shard, for 1..N shards.

    .venv/bin/python benchmarks/shards.py --index /tmp/news-dev-index --queries /tmp/news-dev/queries.jsonl
    .venv/bin/python benchmarks/shards.py --index /tmp/news-dev-index --ray    # + one Serve hop

The shards run in this process (shards.InProcess, no Ray: the figures are the scoring, not the
hops) on --index, which is only read: each question's BM25 weights and vector are worked out as
the router works them out, then every shard's candidates() is timed alone, question by question,
for --rounds passes after one untimed pass. On an index of one segment (after a full merge)
every shard holds a run of it (docs/scaling.md, "Passages to shards").

--ray then deploys one shard holding the whole index (serve_ray.ShardReplica) on a private Ray
this script starts and shuts down (never `ray stop`), and asks it the same questions through a
Serve handle, as the router does, one at a time: the call's time inside the replica next to
the handle's round trip; then the same through a plain Ray actor of the same class, and the
same call in this process, the three taking turns question by question.
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import clean_env, log  # noqa: E402

from qabot import bm25, shards  # noqa: E402
from qabot.config import Settings, load_settings  # noqa: E402
from qabot.embed import model_id  # noqa: E402


def questions_asked(gen: shards.Generation, rows: list[dict[str, Any]], vectors: np.ndarray,
                    settings: Settings) -> list[shards.Ask]:
    """Each question as the router sends it (to the first part; replace `part` for another)."""
    params = gen.manifest.build.lexical
    out = []
    for row, vector in zip(rows, vectors, strict=True):
        lexical = mean = None
        if gen.lexical is not None and params is not None:
            stop = bm25.stopword_list(params.params.stopwords)
            lexical = bm25.question(row["question"], gen.lexical, stop, params.params.stemmer)
            mean = gen.lexical.mean_length
        day = row.get("question_date")
        as_of = dt.date.fromisoformat(day) if day else dt.date.today()
        out.append(shards.Ask(gen.parts[0], row["question"], vector, lexical, mean, settings.search,
                              None, None, as_of, shards.DEPTH, settings.search.per_article,
                              settings.search.k + shards.TEXTS_SPARE))
    return out


def over_serve(index: Path, asks: list[shards.Ask], rounds: int) -> dict[str, float]:
    """p50 ms of one shard's candidates(): in this process, inside its Serve replica and the
    Serve handle's round trip, inside a plain Ray actor of the same class and its round trip
    (module docstring)."""
    import ray
    from ray import serve

    from qabot.serve_ray import ShardReplica

    class Timed(ShardReplica):
        def timed(self, ask: shards.Ask) -> tuple[float, shards.Candidates]:
            t0 = time.perf_counter()
            found = self.shard.candidates(ask)
            return (time.perf_counter() - t0) * 1000, found

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    try:
        serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})
        deployment = serve.deployment(name="shard0", ray_actor_options={"num_cpus": 0.5})(Timed)
        handle = serve.run(deployment.bind(str(index), 0), name="bench-shard", route_prefix=None)
        actor: Any = ray.remote(num_cpus=0.5)(Timed).remote(str(index), 0)
        local = shards.Shard(index)
        times: dict[str, list[float]] = {k: [] for k in ("in_process", "inside_replica", "handle_round_trip",
                                                         "inside_actor", "actor_round_trip")}
        for round_ in range(rounds + 1):
            for ask in asks:  # the three take turns, question by question
                t0 = time.perf_counter()
                in_replica, _ = handle.timed.remote(ask).result(timeout_s=60)
                t1 = time.perf_counter()
                in_actor, _ = ray.get(actor.timed.remote(ask), timeout=60)
                t2 = time.perf_counter()
                local.candidates(ask)
                t3 = time.perf_counter()
                if round_:
                    for key, ms in (("inside_replica", in_replica), ("handle_round_trip", (t1 - t0) * 1000),
                                    ("inside_actor", in_actor), ("actor_round_trip", (t2 - t1) * 1000),
                                    ("in_process", (t3 - t2) * 1000)):
                        times[key].append(ms)
        return {f"{key}_ms": statistics.median(ms) for key, ms in times.items()}
    finally:
        serve.shutdown()
        ray.shutdown()  # the private Ray this process started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="A built index (only read).")
    parser.add_argument("--queries", type=Path, default=Path("/tmp/news-dev/queries.jsonl"),
                        help="JSONL with question and question_date per line.")
    parser.add_argument("--shards", type=int, default=3, help="Measure 1 to this many shards.")
    parser.add_argument("--rounds", type=int, default=1, help="Timed passes over the questions.")
    parser.add_argument("--ray", action="store_true", help="Also one shard behind a Serve handle.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    lines = args.queries.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    settings = load_settings(index=args.index, env=clean_env())
    model = model_id(settings.model.name)
    report: dict[str, Any] = {"index": str(args.index), "questions": len(rows),
                              "load_average": os.getloadavg()}
    vectors = None
    whole: list[shards.Ask] = []
    for n in range(1, args.shards + 1):
        members = [shards.Shard(args.index, settings.vectors.nprobe) for _ in range(n)]
        router = shards.Router(args.index, shards.InProcess(members), model=model)
        gen = router.generation()
        if vectors is None:
            vectors = router.encoder(gen.manifest).encode([r["question"] for r in rows])
        asks = questions_asked(gen, rows, vectors, settings)
        whole = whole or asks
        times: list[list[float]] = [[] for _ in range(n)]
        for round_ in range(args.rounds + 1):
            for ask in asks:
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
    if args.ray:
        log("one shard behind a Serve handle")
        report["serve"] = over_serve(args.index, whole, args.rounds)
    report["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{len(rows)} questions on {args.index}; load average before {report['load_average']}, "
          f"after {report['load_average_after']}")
    for n in range(1, args.shards + 1):
        row = report[f"{n}_shards"]
        print(f"{n} shard(s): passages {row['passages']}, candidates() p50 ms {row['candidates_p50_ms']}")
    if args.ray:
        served = report["serve"]
        print(f"1 shard: candidates() p50 {served['in_process_ms']:.2f} ms in this process; "
              f"{served['inside_replica_ms']:.2f} ms inside its Serve replica, "
              f"{served['handle_round_trip_ms']:.2f} ms through the handle; "
              f"{served['inside_actor_ms']:.2f} ms inside a plain Ray actor, "
              f"{served['actor_round_trip_ms']:.2f} ms through its actor handle")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
