"""`qabot serve --ray` on a cluster that runs other Serve applications: stopping takes down its
shards only (a Ray started by the command itself is tests/test_serve.py's)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests import shard_corpus
from tests.shard_corpus import AS_OF, local_json

pytest.importorskip("ray.serve")


def test_stopping_deletes_its_shards_and_leaves_the_clusters_other_applications(
        tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> None:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from qabot import serve_ray

    settings = shard_corpus.build(tmp_path_factory.mktemp("ray-neighbours"), encoder_cache)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    head = {"num_cpus": 2, "object_store_memory": 80 * 2**20, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, connect=True, head_node_args=head)
    try:
        serve.start(proxy_location="Disabled")

        class Neighbour:
            def __call__(self) -> str:
                return "still here"

        deployment = serve.deployment(ray_actor_options={"num_cpus": 0.1})(Neighbour)
        neighbour = serve.run(deployment.bind(), name="neighbour", route_prefix=None)
        question = shard_corpus.QUESTIONS[0]
        with serve_ray.running(settings.index, 1) as url:
            got = httpx.post(f"{url}/ask", json={"question": question, "as_of": AS_OF}, timeout=60)
            assert got.status_code == 200 and got.text == local_json(settings, question, "hybrid")
            assert set(serve.status().applications) == {"neighbour", "qabot-shard0"}
        assert set(serve.status().applications) == {"neighbour"}
        assert neighbour.remote().result(timeout_s=30) == "still here"
        serve_ray.undeploy(1)  # nothing of ours left: no error, the neighbour untouched
        assert set(serve.status().applications) == {"neighbour"}
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()  # only this cluster's processes: never `ray stop`
