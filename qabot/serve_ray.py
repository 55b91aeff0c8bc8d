"""`qabot serve --ray`: the HTTP API on Ray Serve, the index in shards (qabot/shards.py).

One Ray Serve deployment per shard (Serve's replicas of one deployment are interchangeable, so a
shard is a deployment of its own), each with `replicas` copies; a router deployment is the HTTP
ingress: api.create_app over a `ShardedBackend`, whose router fans each question out to the
shard deployments and merges. Shard i is pinned to the nodes that offer the custom resource
`qabot-shard-<i>` when the cluster has one (`ray start --resources '{"qabot-shard-0": 1}'`);
otherwise Ray places it. Every node reads the index folder at the same path (a shared or copied
folder); only the router reads manifest.json, and every shard is told which generation to load.
Imported only by `qabot serve --ray`: Ray Serve is the optional `serve-ray` extra.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import serve

from . import api, shards
from .answer import respond
from .config import SearchOptions
from .reader import newest_day

APP = "qabot"
RESOURCE = "qabot-shard-{}"

# Serve gives its HTTP proxy 5 s to come up and then kills it ("killed by `ray.kill` … never
# ran"): on two busy cores starting a Python worker took longer, and `qabot serve --ray` failed
# to start. A Ray the caller starts here (a local one, a test's cluster) gives it this long.
PROXY_READY_SECONDS = "60"


def patient_proxy() -> None:
    """Set Serve's proxy start-up timeout (PROXY_READY_SECONDS) for the Ray processes this process
    starts, unless the environment sets it already. Call it before starting Ray: Serve's
    controller reads it in its own process."""
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", PROXY_READY_SECONDS)


class ShardedBackend:
    """api.Backend over a shards.Router: one generation per question, as LocalBackend."""

    def __init__(self, router: shards.Router, options: SearchOptions) -> None:
        self.router = router
        self.options = options

    def ask(self, query: api.Query) -> api.Answered:
        """The reply `qabot ask` gives, its generation, and with `partial` its coverage."""
        options = replace(self.options, k=query.k or self.options.k, mode=query.mode or self.options.mode)
        with self.router.pinned(query.partial) as coverage:
            generation = self.router.generation().manifest.generation
            reply = respond(self.router, query.question, options, since=query.since, until=query.until,
                            as_of=query.as_of)
        said = None
        if query.partial:
            missing = [f"shard {i}: {coverage.reasons.get(i, 'left out')}" for i in coverage.missing]
            said = {"shards": coverage.shards, "answered": coverage.answered, "missing": missing}
        return api.Answered(generation, reply, said)

    def health(self) -> api.Health:
        """The current generation's counts, summed over the shards."""
        gen = self.router.generation()
        newest = newest_day(gen.days, dt.date.max)
        return api.Health(gen.manifest.generation, gen.articles, gen.manifest.passage_count, newest)


class RayTransport:
    """shards.Transport over Ray Serve deployment handles: all shards asked at once."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles
        self.shards = len(handles)

    def call(self, method: str, args: dict[int, Any], deadline: float) -> dict[int, Any]:
        pending = {i: getattr(self.handles[i], method).remote(arg) for i, arg in args.items()}
        out: dict[int, Any] = {}
        for i, response in pending.items():
            try:
                out[i] = response.result(timeout_s=max(0.01, deadline - time.monotonic()))
            except Exception as err:  # late, its node gone, or it failed: the router decides
                with contextlib.suppress(Exception):
                    response.cancel()
                out[i] = err
        return out


class ShardReplica:
    """A shard deployment's replica: shards.Shard behind Ray Serve."""

    def __init__(self, index_dir: str, nprobe: int) -> None:
        self.shard = shards.Shard(Path(index_dir), nprobe)

    def totals(self, part: shards.Part) -> shards.ShardTotals:
        return self.shard.totals(part)

    def candidates(self, ask: shards.Ask) -> shards.Candidates:
        return self.shard.candidates(ask)

    def passages(self, fetch: shards.Fetch) -> list[Any]:
        return self.shard.passages(fetch)

    def prints(self, fetch: shards.Fetch) -> dict[int, Any]:
        return self.shard.prints(fetch)

    def sentences(self, score: shards.Score) -> Any:
        return self.shard.sentences(score)

    def node(self) -> str:
        """The id of the Ray node this replica runs on (where a shard was placed)."""
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def memory(self) -> float:
        """This replica's resident memory, MiB (Linux; what a shard costs its node)."""
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@serve.ingress()
class RouterReplica:
    """The HTTP ingress: api.create_app over the router (the app is built once the handles exist)."""

    def __init__(self, index_dir: str, handles: list[Any], options: SearchOptions, token: str | None,
                 deadline: float, model: str | None, texts: bool = True) -> None:
        # One encoder thread: the replica asked Ray for half a CPU, and a second thread spinning
        # after each question slowed the shards scoring it beside the router by a third.
        router = shards.Router(Path(index_dir), RayTransport(handles), deadline=deadline, model=model,
                               texts=texts, threads=1)
        self.backend = ShardedBackend(router, options)
        self.token = token

    def __serve_build_asgi_app__(self) -> Any:
        return api.create_app(self.backend, self.token)


def application(index_dir: Path, count: int, replicas: int = 1, *, options: SearchOptions | None = None,
                token: str | None = None, deadline: float = 10.0, model: str | None = None,
                nprobe: int = 0, pinned: bool | None = None, texts: bool = True) -> Any:
    """The Serve application: `count` shard deployments and the router. Shards are pinned to
    nodes offering `qabot-shard-<i>` (`pinned`: None = when the cluster offers them). `texts`:
    the shown passages' texts come with the candidates (False: in a second round, as before)."""
    import ray

    offered = ray.cluster_resources() if ray.is_initialized() else {}
    handles = []
    for i in range(count):
        pin = pinned if pinned is not None else RESOURCE.format(i) in offered
        actor: dict[str, Any] = {"num_cpus": 0.5}
        if pin:
            actor["resources"] = {RESOURCE.format(i): 0.01}
        deployment = serve.deployment(name=f"shard{i}", num_replicas=replicas, ray_actor_options=actor,
                                      health_check_period_s=2, health_check_timeout_s=10,
                                      graceful_shutdown_timeout_s=1)(ShardReplica)
        handles.append(deployment.bind(str(index_dir), nprobe))
    router = serve.deployment(name="router", num_replicas=1, ray_actor_options={"num_cpus": 0.5},
                              max_ongoing_requests=64)(RouterReplica)
    return router.bind(str(index_dir), handles, options or SearchOptions(), token, deadline, model, texts)


def start(app: Any, host: str, port: int) -> str:
    """Run the application behind Serve's HTTP proxy on host:port; returns its URL."""
    # The proxy on the head node only: the router is the one entry, and local test clusters run
    # every node on one address, where a proxy per node would fight over the port.
    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port},
                logging_config={"log_level": logging.WARNING})
    serve.run(app, name=APP, route_prefix="/")
    return f"http://{host}:{port}"


@contextlib.contextmanager
def running(app: Any, host: str, port: int) -> Iterator[str]:
    """start(), and on leaving, the application and Serve shut down (Ray itself stays up)."""
    try:
        yield start(app, host, port)
    finally:
        serve.shutdown()
