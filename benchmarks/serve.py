"""Benchmark `qabot serve`: one question over HTTP against the same question answered in process.

Run from the repository root (needs the serve extra: pip install -e ".[serve]"):

    .venv/bin/python benchmarks/serve.py --index /tmp/news-25-index \\
        --queries /tmp/news-dev/queries.jsonl [--rounds 3] [--warmup 10] [--json]

In process: a Retriever on --index, `respond()` and `format.to_json()` (what `qabot ask --json`
does after loading). Over HTTP: the real `qabot serve --index INDEX --port 0` in its own process
(defaults: access log on), asked `POST /ask` by one keep-alive httpx client. Both answer the
same questions, one at a time, in the same order, each asked as of its `question_date` (as
`qabot eval` does). The two alternate, a pass over every question at a time (--rounds passes
each), so a neighbour's load on the shared CPU falls on both alike; question by question,
onnxruntime's threads, which spin a while after each question, would slow the other process.
Every HTTP body must equal the in-process JSON byte for byte.

Printed side by side: p50 / p95 / mean milliseconds per question, the ratio of the p50s (target:
HTTP ≤ 1.2× in process) and the server's resident memory. The index is only read.
Progress goes to stderr, the report to stdout (--json: one JSON object).

--ray adds `qabot serve --ray`'s setup (qabot/serve_ray.py: the shard applications on Ray Serve,
the router serving HTTP over their handles; here from a thread of this process) on a local Ray
cluster this script starts and shuts down (never `ray stop`): 1 shard and 2 shards on one node,
then 2 shards pinned to the two worker nodes of a 3-node local cluster; each asked over HTTP, one
question at a time, every body compared with the in-process JSON; the Ray hops are its p50 less
`qabot serve`'s. --before adds to each 2-shard row a second router over the same shards that
asks for the shown passages' texts in a second round trip (as the router did before they came
with the candidates): the two take turns, a pass over the questions each. Each shard holds an
even run of the passages (an index of one segment is cut between them); --split N first copies
the index into a temporary folder as N segments (the same articles and vectors, re-committed;
nothing embedded).

--synthetic N serves a synthetic index of N passages instead (built once into --synthetic-dir by
latency.build_synthetic: 384-d vectors shaped like news, Zipf-distributed words, ten years of
dates; the ONNX question encoder copied from --encoder-from), asked --count questions of five of
a passage's words, with no question date. The model's vector of such a question lands nowhere
in particular among the synthetic vectors, so the answers mean nothing; the work does not change
(the IVF probes, BM25 over the index's words, the walk and the answer layer), and every body is
still compared with the in-process one:

    .venv/bin/python benchmarks/serve.py --synthetic 1000000 --synthetic-dir /tmp/syn1m \\
        --encoder-from /tmp/news-dev-index --rounds 2 --warmup 5 --clients 0 --ray
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import clean_env, log, qabot_exe  # noqa: E402

from qabot import format as fmt  # noqa: E402
from qabot.answer import respond  # noqa: E402
from qabot.config import Settings, load_settings  # noqa: E402
from qabot.embed import model_id  # noqa: E402
from qabot.reader import Retriever  # noqa: E402

TARGET = 1.2  # HTTP p50 at most this many times the in-process p50


def read_questions(path: Path) -> list[tuple[str, dt.date | None]]:
    """(question, its day) of each line of a queries JSONL file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            day = row.get("question_date") or row.get("date")
            out.append((row["question"], dt.date.fromisoformat(day) if day else None))
    return out


def start_server(index: Path, log_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`qabot serve` on a free port; its process and URL once it listens."""
    with log_file.open("w") as out:
        proc = subprocess.Popen([str(qabot_exe()), "serve", "--index", str(index), "--port", "0"],
                                stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    deadline = time.monotonic() + 120
    while not (found := re.search(r" on (http://\S+), docs at /docs", log_file.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"qabot serve did not start:\n{log_file.read_text()}")
        time.sleep(0.1)
    return proc, found.group(1)


def ask_with(http: httpx.Client) -> Answer:
    """POST /ask through this client: the body's text."""
    def over_http(question: str, day: dt.date | None) -> str:
        body: dict[str, Any] = {"question": question}
        if day is not None:
            body["as_of"] = day.isoformat()
        response = http.post("/ask", json=body)
        response.raise_for_status()
        return response.text

    return over_http


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


Answer = Callable[[str, dt.date | None], str]


def timed(answer: Answer, into: list[float], question: str,
          day: dt.date | None) -> str:
    """answer(question, day), its milliseconds appended to `into`."""
    t0 = time.perf_counter()
    out = answer(question, day)
    into.append((time.perf_counter() - t0) * 1000)
    return out


def under_load(answerers: list[Answer], questions: list[tuple[str, dt.date | None]],
               ) -> tuple[list[float], float]:
    """Every question once, shared out among one thread per answerer, all asking at once:
    (each question's milliseconds, wall seconds)."""
    times: list[float] = []
    go = threading.Barrier(len(answerers) + 1)

    def client(n: int, answer: Answer) -> None:
        go.wait()
        for question, day in questions[n :: len(answerers)]:
            timed(answer, times, question, day)

    threads = [threading.Thread(target=client, args=(n, a)) for n, a in enumerate(answerers)]
    for thread in threads:
        thread.start()
    go.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    return times, time.perf_counter() - t0


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"p50": statistics.median(ordered), "p95": ordered[max(0, round(0.95 * len(ordered)) - 1)],
            "mean": statistics.fmean(ordered)}


def split_copy(index: Path, dest: Path, parts: int) -> Path:
    """A copy of `index` whose articles lie in `parts` segments: the later ones re-committed,
    with their stored vectors, as new segments (Writer.add: what `qabot index` does for new
    articles). Same texts and vectors, so the same answers; nothing is embedded."""
    import shutil

    from qabot import catalog, store
    from qabot.config import PathSettings

    shutil.copytree(index, dest)
    settings = Settings(paths=PathSettings(seeds=dest / "seeds", index=dest))
    snap = store.load_snapshot(dest)
    articles = sorted(snap.catalog.articles(), key=lambda a: a.ids[0])
    for n in range(1, parts):
        with store.open_writer(settings, log=lambda msg: None) as writer:
            moving = articles[n * len(articles) // parts : (n + 1) * len(articles) // parts]
            next_id = max(int(i) for a in articles for i in a.ids) + 1 + n * 10_000_000
            changes = catalog.Changes(removed=[a.doc_id for a in moving])
            old_ids: list[int] = []
            for art in moving:
                recs = snap.catalog.passages(list(art.ids))
                new = [catalog.PassageRecord(next_id + j, r.doc_id, r.start, r.end, r.text)
                       for j, r in enumerate(recs)]
                next_id += len(new)
                old_ids += list(art.ids)
                changes.articles.append((catalog.ArticleRecord(art.doc_id, art.hash, art.date, art.title,
                                                               tuple(r.id for r in new)), new))
            vecs = snap.vectors.vectors_of(np.array(old_ids, dtype=np.int64))
            writer.add(writer.manifest.build, changes, vecs)  # type: ignore[union-attr]
    return dest


def ray_rows(index: Path, questions: list[tuple[str, dt.date | None]], expected: dict[tuple[str, str], str],
             rounds: int, warmup: int, settings: Settings, before: bool = False) -> dict[str, Any]:
    """p50/p95 over HTTP of the Ray configurations (module docstring), memory per shard."""
    import logging

    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from qabot import api, serve_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    node: dict[str, Any] = {"object_store_memory": 100 * 2**20}
    out: dict[str, Any] = {}
    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={**node, "num_cpus": 2, "include_dashboard": False})
    try:
        logging.getLogger("ray").setLevel(logging.ERROR)
        for name, count, nodes in (("ray_1_shard", 1, 0), ("ray_2_shards", 2, 0),
                                   ("ray_2_shards_3_nodes", 2, 2)):
            while len(cluster.worker_nodes) < nodes:
                cluster.add_node(**node, num_cpus=1,
                                 resources={serve_ray.RESOURCE.format(len(cluster.worker_nodes)): 1})
            # (row name, texts with the candidates): with --before, a second router over the same
            # shards asks for the shown passages' texts in a second round trip.
            variants = [(name, True)] + ([(f"{name}_texts_apart", False)] if before and count > 1 else [])
            log(f"{name}: deploying {count} shard(s), {len(variants)} router(s)")
            t0 = time.perf_counter()
            handles = serve_ray.deploy(index, count, pinned=nodes > 0, nprobe=settings.vectors.nprobe)
            deployed = time.perf_counter() - t0
            try:
                with contextlib.ExitStack() as stack:
                    asks: dict[str, Answer] = {}
                    for row, texts in variants:
                        # The in-process reference's settings: "identical" compares like with like.
                        backend = serve_ray.backend(index, handles, settings.search,
                                                    model=model_id(settings.model.name), texts=texts)
                        url = stack.enter_context(api.serving(api.create_app(backend, None),
                                                              api.bind("127.0.0.1", 0)))
                        asks[row] = ask_with(stack.enter_context(httpx.Client(base_url=url, timeout=60)))
                    for over_http in asks.values():
                        for question, day in questions[:warmup]:
                            over_http(question, day)
                    ms: dict[str, list[float]] = {row: [] for row in asks}
                    same = dict.fromkeys(asks, 0)
                    for round_ in range(rounds):
                        # A pass of each, taking turns which goes first, so load that comes and goes
                        # falls on both alike.
                        for row in (list(asks) if round_ % 2 == 0 else list(asks)[::-1]):
                            for q, day in questions:
                                same[row] += timed(asks[row], ms[row], q, day) == expected[(q, str(day))]
                memory = [round(h.memory.remote().result(timeout_s=30), 1) for h in handles]
                places = len({h.node.remote().result(timeout_s=30) for h in handles})
                for row in asks:
                    out[row] = summary(ms[row]) | {"identical": same[row], "asked": len(ms[row]),
                                                   "shard_rss_mib": memory, "shard_nodes": places,
                                                   "deploy_s": round(deployed, 1)}
                    log(f"{row}: p50 {out[row]['p50']:.1f} ms, identical {same[row]}/{len(ms[row])}")
            finally:
                serve.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()  # this cluster's processes only
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="A built index (only read).")
    parser.add_argument("--queries", type=Path, default=Path("/tmp/news-dev/queries.jsonl"),
                        help="JSONL with question and question_date per line.")
    parser.add_argument("--rounds", type=int, default=3, help="Times each question is asked each way.")
    parser.add_argument("--warmup", type=int, default=10, help="Questions asked each way first, not timed.")
    parser.add_argument("--clients", type=int, default=8,
                        help="Then every question once more from this many clients at once, each way "
                             "(0: skip).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--ray", action="store_true", help="Also Ray Serve: 1 shard, 2 shards, 2 shards "
                                                           "on a 3-node local cluster (module docstring).")
    parser.add_argument("--before", action="store_true",
                        help="With --ray, each 2-shard row also as before: the shown passages' texts in a "
                             "second round trip, not with the candidates.")
    parser.add_argument("--split", type=int, default=0,
                        help="Serve a temporary copy of --index re-committed as this many segments.")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="Serve a synthetic index of N passages instead (latency.build_synthetic: "
                             "vectors shaped like news, Zipf words), asked --count questions of five of "
                             "a passage's words; needs --synthetic-dir and --encoder-from.")
    parser.add_argument("--synthetic-dir", type=Path, help="Build the synthetic index here, and reuse it.")
    parser.add_argument("--encoder-from", type=Path,
                        help="With --synthetic: an index whose ONNX question encoder the synthetic one "
                             "gets (its vectors are not the model's, but a question is encoded as ever).")
    parser.add_argument("--count", type=int, default=102, help="With --synthetic: how many questions.")
    args = parser.parse_args(argv)
    if args.synthetic:
        if not args.synthetic_dir or not args.encoder_from:
            parser.error("--synthetic needs --synthetic-dir and --encoder-from")
        from latency import build_synthetic, synthetic_questions

        args.index = build_synthetic(args.synthetic, args.synthetic_dir, args.encoder_from)
        texts, _ = synthetic_questions(args.index, args.count)
        args.queries = args.synthetic_dir / "questions.jsonl"
        args.queries.write_text("".join(json.dumps({"question": t}) + "\n" for t in texts), encoding="utf-8")
    elif args.index is None:
        parser.error("give --index, or --synthetic N")
    scratch = tempfile.TemporaryDirectory(prefix="qabot-bench-split-")
    if args.split > 1:
        log(f"copying {args.index} as {args.split} segments")
        args.index = split_copy(args.index, Path(scratch.name) / "index", args.split)

    questions = read_questions(args.queries)
    settings = load_settings(index=args.index, env=clean_env())
    retriever = Retriever.for_settings(settings)
    log(f"{len(questions)} questions from {args.queries}, index {args.index}")

    def in_process(question: str, day: dt.date | None) -> str:
        return fmt.to_json(respond(retriever, question, settings.search, as_of=day))

    with tempfile.TemporaryDirectory(prefix="qabot-bench-serve-") as tmp:
        proc, url = start_server(args.index, Path(tmp) / "serve.log")
        try:
            with httpx.Client(base_url=url, timeout=60) as http:

                over_http = ask_with(http)
                for question, day in questions[: args.warmup]:
                    in_process(question, day)
                    over_http(question, day)
                times: dict[str, list[float]] = {"in_process": [], "http": []}
                same = 0
                for round_ in range(args.rounds):
                    log(f"round {round_ + 1}/{args.rounds}")
                    # A pass of each, not question by question (the docstring says why).
                    local = [timed(in_process, times["in_process"], q, day) for q, day in questions]
                    remote = [timed(over_http, times["http"], q, day) for q, day in questions]
                    same += sum(a == b for a, b in zip(local, remote, strict=True))
                expected = {(q, str(day)): body for (q, day), body in zip(questions, local, strict=True)}
                loaded: dict[str, tuple[list[float], float]] = {}
                if args.clients:
                    log(f"{args.clients} clients at once")
                    loaded["in_process"] = under_load([in_process] * args.clients, questions)
                    clients = [httpx.Client(base_url=url, timeout=120) for _ in range(args.clients)]
                    loaded["http"] = under_load([ask_with(c) for c in clients], questions)
                    for c in clients:
                        c.close()
                memory = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    rays = ray_rows(args.index, questions, expected, args.rounds, args.warmup, settings, args.before) \
        if args.ray else {}
    scratch.cleanup()
    asked = len(times["http"])
    report: dict[str, Any] = {
        "index": str(args.index), "questions": len(questions), "rounds": args.rounds, "asked": asked,
        "in_process_ms": summary(times["in_process"]), "http_ms": summary(times["http"]),
        "identical": same, "server_rss_mib": round(memory, 1),
    }
    for key, (ms, seconds) in loaded.items():
        report[f"{key}_{args.clients}_clients"] = summary(ms) | {"per_s": len(ms) / seconds}
    report.update(rays)
    ratio = report["http_ms"]["p50"] / report["in_process_ms"]["p50"]
    report["p50_ratio"] = round(ratio, 3)
    report["target_met"] = ratio <= TARGET
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{asked} questions ({len(questions)} × {args.rounds} rounds), one at a time, on {args.index}")
        print(f"{'':<22}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
        for name, key in (("respond() in process", "in_process_ms"), ("qabot serve, HTTP", "http_ms")):
            row = report[key]
            print(f"{name:<22}{row['p50']:>9.1f}{row['p95']:>9.1f}{row['mean']:>9.1f}")
        print(f"HTTP p50 / in-process p50: {ratio:.2f}× (target ≤ {TARGET}×: "
              f"{'met' if ratio <= TARGET else 'NOT met'})")
        if loaded:
            print(f"\n{len(questions)} questions, {args.clients} clients asking at once")
            print(f"{'':<22}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'per s':>9}")
            for name, key in (("respond(), threads", "in_process"), ("qabot serve, HTTP", "http")):
                row = report[f"{key}_{args.clients}_clients"]
                print(f"{name:<22}{row['p50']:>9.1f}{row['p95']:>9.1f}{row['mean']:>9.1f}{row['per_s']:>9.1f}")
        print(f"identical JSON: {same}/{asked}; server RSS {memory:.0f} MiB")
        if rays:
            print(f"\nRay Serve over HTTP, one question at a time ({args.rounds} rounds)")
            print(f"{'':<28}{'p50 ms':>9}{'p95 ms':>9}{'hops ms':>9}{'same':>9}  shard RSS MiB")
            for name, row in rays.items():
                hops = row["p50"] - report["http_ms"]["p50"]
                print(f"{name:<28}{row['p50']:>9.1f}{row['p95']:>9.1f}{hops:>9.1f}"
                      f"{row['identical']:>5}/{row['asked']:<4}{row['shard_rss_mib']}")
    identical = same == asked and all(r["identical"] == r["asked"] for r in rays.values())
    return 0 if identical else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
