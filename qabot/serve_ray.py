"""`qabot serve --ray`: the HTTP API with the index in shards (qabot/shards.py) on Ray Serve.

One Ray Serve application per shard (Serve's replicas of one deployment are interchangeable, so a
shard is a deployment of its own), each with `replicas` copies. The router is not a deployment:
it is the command's own process, serving api.create_app over a `ShardedBackend` as `qabot serve`
does, and reaching the shards through Serve's deployment handles. Serve's HTTP proxy would put a
hop of its own (~8 ms here) between every client and a router replica, for an entry that is one
process either way; Serve runs no proxy at all. Shard i is pinned to the nodes that offer the
custom resource `qabot-shard-<i>` when the cluster has one (`ray start --resources
'{"qabot-shard-0": 1}'`); otherwise Ray places it. Every node reads the index folder at the same
path (a shared or copied folder); only the router reads manifest.json, and every shard is told
which generation to load. Imported only by `qabot serve --ray`: Ray Serve is the optional
`serve-ray` extra.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
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

APP = "qabot-shard{}"  # shard i's Serve application; its deployment is "shard<i>"
RESOURCE = "qabot-shard-{}"


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


def direct(handle: Any) -> Any:
    """The handle sending its requests to the replica's own gRPC server rather than as Ray actor
    calls through the object store (Serve's interdeployment gRPC transport; every replica runs
    that server). Two shards' candidates came back ~3 ms sooner a question here (22.2–22.9
    against 25.0–28.1 ms at p50, docs/scaling.md). A Ray without the option keeps the actor calls."""
    try:
        return handle.options(_by_reference=False)
    except TypeError:
        return handle


class RayTransport:
    """shards.Transport over Ray Serve deployment handles: all shards asked at once."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = [direct(h) for h in handles]
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

    def pools(self, ask: shards.Ask) -> Any:
        return self.shard.pools(ask)

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


def deploy(index_dir: Path, count: int, replicas: int = 1, *, nprobe: int = 0,
           pinned: bool | None = None) -> list[Any]:
    """Start Serve without its HTTP proxy (the router serves HTTP) and deploy `count` shard
    applications, `replicas` copies each; their handles, shard by shard. Shards are pinned to
    nodes offering `qabot-shard-<i>` (`pinned`: None = when the cluster offers them)."""
    import ray
    from ray.serve.api import RunTarget

    serve.start(proxy_location="Disabled", logging_config={"log_level": logging.WARNING})
    offered = ray.cluster_resources() if ray.is_initialized() else {}
    targets = []
    for i in range(count):
        pin = pinned if pinned is not None else RESOURCE.format(i) in offered
        actor: dict[str, Any] = {"num_cpus": 0.5}
        if pin:
            actor["resources"] = {RESOURCE.format(i): 0.01}
        deployment = serve.deployment(name=f"shard{i}", num_replicas=replicas, ray_actor_options=actor,
                                      health_check_period_s=2, health_check_timeout_s=10,
                                      graceful_shutdown_timeout_s=1)(ShardReplica)
        targets.append(RunTarget(deployment.bind(str(index_dir), nprobe), name=APP.format(i),
                                 route_prefix=None))
    return list(serve.run_many(targets))


def undeploy(count: int) -> None:
    """Delete the `count` shard applications deploy() started, and nothing else: on a cluster
    that runs other Serve applications, they and Serve itself stay up."""
    for i in range(count):
        serve.delete(APP.format(i))


def handles(count: int) -> list[Any]:
    """The deployed shards' handles, shard by shard (deploy() returns the same)."""
    return [serve.get_deployment_handle(f"shard{i}", app_name=APP.format(i)) for i in range(count)]


def backend(index_dir: Path, shard_handles: list[Any], options: SearchOptions | None = None, *,
            deadline: float = 10.0, model: str | None = None, texts: bool = True) -> ShardedBackend:
    """The router over the shards, as api.create_app serves it. `texts`: the shown passages'
    texts come with the candidates (False: in a second round, as before)."""
    # The encoder's threads don't spin on after each question: on a machine that also runs
    # shards, spinning took the cores they were about to score the question on (the router's
    # replies took 46 against 40 ms through one shard on two cores; one thread spinning, as before,
    # cost as much, and two spinning 59 ms).
    router = shards.Router(Path(index_dir), RayTransport(shard_handles), deadline=deadline, model=model,
                           texts=texts, spin=False)
    return ShardedBackend(router, options or SearchOptions())


@contextlib.contextmanager
def running(index_dir: Path, count: int, host: str = "127.0.0.1", port: int = 0, *,
            options: SearchOptions | None = None, deadline: float = 10.0, token: str | None = None,
            model: str | None = None, pinned: bool | None = None) -> Iterator[str]:
    """The shards deployed and the router serving HTTP from a thread of this process (tests,
    benchmarks); its URL. On leaving, the server stops and the shards are deleted (Serve and Ray
    stay up, with whatever else they run)."""
    try:
        found = deploy(index_dir, count, pinned=pinned)
        sock = api.bind(host, port)
        app = api.create_app(backend(index_dir, found, options, deadline=deadline, model=model), token)
        with api.serving(app, sock) as url:
            yield url
    finally:
        undeploy(count)
