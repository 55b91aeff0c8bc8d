"""`qabot serve --ray`: the index in two shards on a three-node local Ray cluster, over HTTP.

One cluster for the module (a head and two workers; each worker offers one shard's custom
resource, so shard i runs on worker i): sharded replies equal the one-process ones in every
mode; a commit reaches the shards, and so does a full merge into one segment, which the two
shards then split; a worker removed gives 503 naming its shard, or with
partial=true the other shard's results and the coverage; a worker offering the resource again
brings the answers back, without a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from qabot import format as fmt
from qabot import shards
from qabot.answer import respond
from qabot.config import SearchOptions, Settings
from qabot.reader import Retriever
from tests import shard_corpus
from tests.shard_corpus import AS_OF, local_json

pytest.importorskip("ray.serve")

GENERATION = "x-qabot-generation"
WORKER: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 80 * 2**20}


@dataclass
class Served:
    url: str
    settings: Settings
    cluster: Any
    workers: list[Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Iterator[Served]:
    """The fixture corpus served in two shards, each pinned to its worker node."""
    import ray
    from ray.cluster_utils import Cluster

    from qabot import serve_ray

    settings = shard_corpus.build(tmp_path_factory.mktemp("ray-sharded"), encoder_cache)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # connect=True: the Cluster starts this process's driver with the head's address and token.
    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={**WORKER, "include_dashboard": False})
    try:
        workers = [cluster.add_node(**WORKER, resources={serve_ray.RESOURCE.format(i): 1}) for i in range(2)]
        with serve_ray.running(settings.index, 2, deadline=3.0) as url:
            yield Served(url, settings, cluster, workers)
    finally:
        ray.shutdown()
        cluster.shutdown()  # only this cluster's processes: never `ray stop`


def ask(url: str, question: str, **fields: Any) -> httpx.Response:
    return httpx.post(f"{url}/ask", json={"question": question, "as_of": AS_OF, **fields}, timeout=60)


def test_each_shard_runs_on_its_own_node_and_serve_runs_no_proxy(served: Served) -> None:
    from ray import serve

    from qabot import serve_ray

    handles = serve_ray.handles(2)
    placed = [h.node.remote().result(timeout_s=30) for h in handles]
    assert placed == [w.node_id for w in served.workers]
    # The router serves HTTP itself: no Serve proxy between it and its clients.
    assert not serve.status().proxies and set(serve.status().applications) == {"qabot-shard0", "qabot-shard1"}


def test_sharded_replies_equal_one_process_in_every_mode(served: Served) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        for question in shard_corpus.QUESTIONS:
            got = ask(served.url, question, mode=mode)
            assert got.status_code == 200, got.text
            assert got.text == local_json(served.settings, question, mode), (mode, question)
    health = httpx.get(f"{served.url}/health", timeout=30).json()
    manifest = json.loads((served.settings.index / "manifest.json").read_text())
    assert health["generation"] == manifest["generation"] and health["passages"] == manifest["passage_count"]


def test_a_commit_reaches_every_shard_without_a_restart(served: Served) -> None:
    from qabot.indexer import run_index

    question = "How many orange-bellied parrots returned to Melaleuca?"
    before = ask(served.url, question)
    (served.settings.seeds / "parrots.txt").write_text(
        " date 2024-03-01 Rangers in Tasmania counted 412 orange-bellied parrots returning to Melaleuca "
        "this spring, the highest tally in a decade.\n", encoding="utf-8")
    run_index(served.settings, log=lambda msg: None)
    after = ask(served.url, question)
    assert int(after.headers[GENERATION]) == int(before.headers[GENERATION]) + 1
    assert after.json()["passages"][0]["doc_id"] == "parrots.txt"
    assert after.text == local_json(served.settings, question, "hybrid")


def test_one_segment_after_a_full_merge_is_served_by_both_shards(served: Served) -> None:
    from qabot import serve_ray, store

    with store.open_writer(served.settings, log=lambda msg: None) as writer:
        writer.merge()
    manifest = store.load_manifest(served.settings.index)
    assert manifest is not None and len(manifest.segments) == 1
    for mode in ("hybrid", "dense", "bm25"):
        for question in shard_corpus.QUESTIONS[:4]:
            got = ask(served.url, question, mode=mode)
            assert got.status_code == 200, got.text
            assert int(got.headers[GENERATION]) == manifest.generation
            assert got.text == local_json(served.settings, question, mode), (mode, question)
    handles = serve_ray.handles(2)
    held = [h.totals.remote(p).result(timeout_s=30).passages
            for h, p in zip(handles, shards.plan(manifest, 2), strict=True)]
    assert all(held) and sum(held) == manifest.passage_count, held  # neither shard idle


class Unreachable(shards.Shard):
    def candidates(self, ask: shards.Ask) -> shards.Candidates:
        raise TimeoutError("unreachable")


def test_a_node_lost_is_named_or_left_out_then_back_without_a_restart(served: Served) -> None:
    from qabot import serve_ray

    question = shard_corpus.QUESTIONS[1]
    served.cluster.remove_node(served.workers[1], allow_graceful=False)
    deadline = time.monotonic() + 30  # its replica's process notices its node is gone within moments
    while (refused := ask(served.url, question)).status_code == 200:
        assert time.monotonic() < deadline, "shard 1 still answers with its node removed"
        time.sleep(0.5)
    assert refused.status_code == 503, refused.text
    assert "shard 1 of 2" in refused.json()["error"]
    # With partial, shard 0's results, merged as a router whose shard 1 fails merges them.
    alone = shards.Router(served.settings.index, shards.InProcess([shards.Shard(served.settings.index),
                                                                  Unreachable(served.settings.index)]))
    found = 0
    for q in shard_corpus.QUESTIONS[:3]:  # each waits out shard 1's deadline
        partial = ask(served.url, q, partial=True)
        assert partial.status_code == 200, partial.text
        body = partial.json()
        coverage = body.pop("coverage")
        assert coverage["answered"] == 1 and coverage["shards"] == 2
        assert coverage["missing"][0].startswith("shard 1")
        with alone.pinned(partial=True):
            want = respond(alone, q, as_of=dt.date.fromisoformat(AS_OF))
        assert body == fmt.reply_dict(want), q
        found += len(body["passages"])
    assert found  # shard 0 holds answers to some of them
    served.workers[1] = served.cluster.add_node(**WORKER, resources={serve_ray.RESOURCE.format(1): 1})
    deadline = time.monotonic() + 90
    while (back := ask(served.url, question)).status_code != 200:
        assert back.status_code == 503, back.text
        assert time.monotonic() < deadline, "the shard did not come back on the new node"
        time.sleep(1)
    assert back.text == local_json(served.settings, question, "hybrid")


def test_the_replica_takes_every_call_the_router_makes_on_an_approximate_index(
    tmp_path: Path, encoder_cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What Serve runs (ShardReplica), in this process: the router's calls on an IVF index with
    pools smaller than it, the pools round included, and one process's replies."""
    from collections import Counter

    from qabot import retrieve, serve_ray, store
    from qabot.vectors import Layout

    settings = shard_corpus.build(tmp_path, encoder_cache)
    with store.open_writer(settings, log=lambda msg: None) as writer:
        writer.merge(layout=Layout(type="ivf", nlist=2))
    monkeypatch.setattr(retrieve, "CANDIDATES", 4)
    calls: Counter[str] = Counter()

    class Counting(shards.InProcess):
        def call(self, method: str, args: dict[int, Any], deadline: float) -> dict[int, Any]:
            calls[method] += 1
            return super().call(method, args, deadline)

    replicas = [serve_ray.ShardReplica(str(settings.index), 0) for _ in range(2)]
    router = shards.Router(settings.index, Counting(replicas))  # type: ignore[arg-type]  # same methods
    local = Retriever.for_settings(settings)
    day = dt.date.fromisoformat(AS_OF)
    for question in shard_corpus.QUESTIONS:
        for mode in ("hybrid", "dense", "bm25"):
            options = replace(SearchOptions(), mode=mode, k=2)
            assert fmt.to_json(respond(router, question, options, as_of=day)) == \
                fmt.to_json(respond(local, question, options, as_of=day)), (mode, question)
    assert calls["pools"] >= 3 * len(shard_corpus.QUESTIONS)  # every question, every mode
